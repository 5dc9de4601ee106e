"""Several runs' OOF predictions lined up row by row (folds.csv's `row`), for compare and blend."""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np
import pandas as pd

from common.ground.errors import UserError
from common.runs import OOF, Run


@dataclass(frozen=True)
class AlignedOOF:
    """The train rows every run scored, sorted by row, with each run's fold and OOF probabilities there."""

    rows: np.ndarray  # (n,) indices into train.csv
    labels: np.ndarray  # (n,)
    folds: np.ndarray  # (n_runs, n) each run's fold of each row
    probabilities: list[np.ndarray]  # per run, (n, 10)
    scored: list[int]  # rows each run scored in all


def read_oof(run: Run) -> tuple[pd.DataFrame, np.ndarray]:
    """folds.csv and oof.npy of a finished run, checked to describe the same rows."""
    run.require_finished(": it has no OOF predictions yet")
    folds, oof = run.folds(), run.array(OOF)
    if len(folds) != len(oof):
        raise UserError(f"{run.folder}: folds.csv has {len(folds)} rows but oof.npy {len(oof)}; they must match")
    if folds["row"].duplicated().any():
        duplicate = folds["row"][folds["row"].duplicated()].iloc[0]
        raise UserError(f"{run.folds_file}: train row {duplicate} is listed twice")
    return folds, oof


def aligned_oof(runs: list[Run]) -> AlignedOOF:
    """Aligns the runs' OOF rows by folds.csv's `row`; only rows every run scored are kept."""
    tables = [read_oof(run) for run in runs]
    rows = reduce(np.intersect1d, [folds["row"].to_numpy() for folds, _ in tables])
    if len(rows) == 0:
        raise UserError(f"runs {', '.join(r.run_id for r in runs)} have no train row in common (see folds.csv)")
    at = [pd.Index(folds["row"]).get_indexer(rows) for folds, _ in tables]
    labels = np.stack([folds["label"].to_numpy()[i] for (folds, _), i in zip(tables, at, strict=True)])
    disagree = np.flatnonzero((labels != labels[0]).any(axis=0))
    if len(disagree):
        raise UserError(
            f"the runs give train row {rows[disagree[0]]} different labels in folds.csv: they used different data"
        )
    return AlignedOOF(
        rows=rows,
        labels=labels[0],
        folds=np.stack([folds["fold"].to_numpy()[i] for (folds, _), i in zip(tables, at, strict=True)]),
        probabilities=[oof[i] for (_, oof), i in zip(tables, at, strict=True)],
        scored=[len(folds) for folds, _ in tables],
    )
