"""Several runs' predictions lined up, for compare and blend: OOF row by row (folds.csv's `row`), and the extra
sets (the holdout among them) that every run predicted."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import reduce

import numpy as np
import pandas as pd

from common.data.files import Dataset
from common.data.trainset import HOLDOUT_SET, holdout_table
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
    if not run.has_array(OOF):
        raise UserError(f"run {run.run_id} has no OOF predictions (no fold models): compare it on its extra sets")
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


def has_oof(runs: list[Run]) -> bool:
    """Whether every run has OOF predictions (a run without fold models has none)."""
    return all(run.has_array(OOF) for run in runs)


def holdout_share(run: Run) -> float:
    """The share of train.csv the run held out (`holdout`); a blend's is its first trained member's."""
    return run.first_trained().cfg.holdout


def shared_sets(runs: list[Run], data: Dataset) -> Dataset:
    """`data` with the extra sets every run predicted, and the holdout (HOLDOUT_SET) when every run held out
    the same share of train.csv, so the very same rows."""
    extras = {name: table for name, table in data.extras.items() if all(run.has_array(name) for run in runs)}
    shares = {holdout_share(run) for run in runs}
    share = shares.pop() if len(shares) == 1 else 0.0
    if share and all(run.has_array(HOLDOUT_SET) for run in runs):
        extras[HOLDOUT_SET] = holdout_table(data, share)
    return replace(data, extras=extras)
