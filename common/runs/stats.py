"""Paired significance: McNemar's exact test of two classifiers scored on the same rows, Wilson intervals.

`compare` (run against run, on the OOF rows both scored) and the benchmark harness (recipe against the
reference, on the fixed holdout) both call a margin with p >= ALPHA a tie.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

ALPHA = 0.05


@dataclass(frozen=True)
class McNemarResult:
    n: int  # rows compared
    only_a: int  # rows only A got right
    only_b: int  # rows only B got right
    p_value: float  # two-sided exact binomial test on the discordant rows
    acc_a: float
    acc_b: float
    ci_a: tuple[float, float]  # 95% Wilson interval
    ci_b: tuple[float, float]

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA


def wilson_interval(correct: int, n: int) -> tuple[float, float]:
    interval = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemarResult:
    """McNemar's exact test of two classifiers scored on the same rows (True where a row was right)."""
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if correct_a.shape != correct_b.shape or correct_a.size == 0:
        raise ValueError("mcnemar needs two equally long, non-empty arrays")
    only_a = int((correct_a & ~correct_b).sum())
    only_b = int((correct_b & ~correct_a).sum())
    # No discordant row: the two are right on exactly the same rows, nothing to tell apart.
    p_value = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    n = correct_a.size
    return McNemarResult(
        n=n,
        only_a=only_a,
        only_b=only_b,
        p_value=float(p_value),
        acc_a=float(correct_a.mean()),
        acc_b=float(correct_b.mean()),
        ci_a=wilson_interval(int(correct_a.sum()), n),
        ci_b=wilson_interval(int(correct_b.sum()), n),
    )
