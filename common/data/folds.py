"""Stratified folds from a recorded seed, so every run of a competition lines up row by row."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from common.ground.errors import UserError, first_line


def make_folds(labels: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """The fold (0..n_folds-1) of each row, stratified by label."""
    counts = np.bincount(labels)
    rarest = int(np.argmin(np.where(counts > 0, counts, len(labels) + 1))) if len(labels) else 0
    smallest = int(counts[rarest]) if len(labels) else 0
    if n_folds < 2 or n_folds > smallest:
        raise UserError(
            f"folds must be between 2 and {smallest} (label {rarest}, the rarest, has {smallest} training rows), "
            f"got {n_folds}"
        )
    folds = np.empty(len(labels), np.int64)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        folds[held_out] = fold
    return folds


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted row indices of a stratified subset of `size` rows (all rows when size is 0 or too large)."""
    if size <= 0 or size >= len(labels):
        return np.arange(len(labels))
    try:
        keep, _ = train_test_split(np.arange(len(labels)), train_size=size, stratify=labels, random_state=seed)
    except ValueError as error:  # a side of the split too small to hold every label
        raise UserError(
            f"max_train_rows {size}: no stratified subset of {size} of {len(labels)} rows ({first_line(error)});"
            " 0 takes every row"
        ) from None
    return np.sort(keep)


HOLDOUT_SEED = 0  # the holdout never depends on a run's seed, so runs and benchmarks hold out the same rows


def holdout_split(labels: np.ndarray, fraction: float, seed: int = HOLDOUT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Sorted row indices (kept, held out): one stratified split of `fraction` of the rows, the same every time
    for a seed (HOLDOUT_SEED: the config key `holdout`'s rows)."""
    rows = np.arange(len(labels))
    try:
        kept, held = train_test_split(rows, test_size=fraction, stratify=labels, random_state=seed)
    except ValueError as error:  # too few rows of some label for a stratified split
        raise UserError(f"cannot hold out {fraction} of {len(labels)} rows by label: {error}") from None
    return np.sort(kept), np.sort(held)


def same_folds(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two folds tables (columns row, fold: as in a run's folds.csv) assign the same rows to the same folds."""
    return len(a) == len(b) and all(np.array_equal(a[column], b[column]) for column in ("row", "fold"))
