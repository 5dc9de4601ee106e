"""The training set of a run: which rows it folds and trains on, and how folds.csv's rows map back to images.

Rows are numbered as train.csv's; an extra_train set's rows are numbered on after them (column `origin`).
This module is the one place that knows that numbering: it writes it (`prepare_train_set`, `folds_table`)
and reads it back (`folds_rows`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from common.data.files import Dataset, Table
from common.data.folds import holdout_split, make_folds, stratified_subset
from common.ground.checks import check_extra_train
from common.ground.config import Config
from common.ground.errors import UserError
from common.ground.spec import IMAGE_SHAPE

NO_FOLD = -1  # folds.csv's fold of a row that no fold model holds out (a run without fold models: folds 0)
HOLDOUT_SET = "train_holdout"  # the report name of the rows `holdout` keeps out of training


@dataclass(frozen=True)
class TrainSet:
    """The rows trained on (all of train.csv, or a stratified subset, plus any extra_train set) and their folds."""

    rows: np.ndarray  # indices into train.csv; an extra_train set's rows are numbered on after train.csv's
    images: np.ndarray
    labels: np.ndarray
    folds: np.ndarray
    origin: np.ndarray  # "train" or the extra set's name, per row

    def from_train_csv(self) -> np.ndarray:
        return self.origin == "train"


def prepare_train_set(data: Dataset, cfg: Config) -> tuple[Dataset, TrainSet]:
    """The rows to fold and train on, and the dataset whose extra sets the ensemble scores.

    `holdout` moves a fixed stratified share of train.csv out of training into the scored sets (HOLDOUT_SET).
    `extra_train` moves an extra set the other way: it is folded on its own (so every fold holds its share
    and the folds of train.csv stay those of a run without it) and scored out of fold like train.csv.
    """
    labels = data.train.labels
    rows, held = holdout_split(labels, cfg.holdout) if cfg.holdout else (np.arange(len(labels)), None)
    pool, rows = rows, rows[stratified_subset(labels[rows], cfg.max_train_rows, cfg.seed)]
    check_subset_folds(labels[pool], labels[rows], cfg)
    folds = row_folds(labels[rows], cfg)
    train = TrainSet(rows, data.train.images[rows], labels[rows], folds, np.full(len(rows), "train"))
    extras = dict(data.extras)
    if held is not None:
        extras[HOLDOUT_SET] = Table(data.train.images[held], labels[held])
    if cfg.extra_train:
        check_extra_train(data.spec, cfg)
        train = with_extra_rows(train, cfg, cfg.extra_train, extras.pop(cfg.extra_train), len(labels))
    return replace(data, extras=extras), train


def check_subset_folds(pool: np.ndarray, kept: np.ndarray, cfg: Config) -> None:
    """The labels a subset (max_train_rows) `kept` of `pool` must hold a row of each in every fold: Config checked
    the count against the classes, the data decides how many of each label a subset gets."""
    if not cfg.folds or not 0 < cfg.max_train_rows < len(pool):  # no subset: make_folds says what the data lacks
        return
    counts = np.bincount(pool)
    kept_counts = np.bincount(kept, minlength=len(counts))
    rarest = int(np.argmin(np.where(counts > 0, kept_counts, len(kept) + 1)))
    if kept_counts[rarest] < cfg.folds:
        least = math.ceil(cfg.folds * len(pool) / counts[rarest])
        raise UserError(
            f"config: max_train_rows {cfg.max_train_rows} leaves label {rarest} {kept_counts[rarest]} rows, fewer"
            f" than the {cfg.folds} folds (one row of each label per fold); the least is max_train_rows={least}"
            " (0 = every row)"
        )


def holdout_table(data: Dataset, fraction: float) -> Table:
    """The rows of train.csv that `holdout=fraction` keeps out of training (HOLDOUT_SET): the same for every run
    with that fraction, whatever its seed, folds or max_train_rows."""
    _, held = holdout_split(data.train.labels, fraction)
    return Table(data.train.images[held], data.train.labels[held])


def row_folds(labels: np.ndarray, cfg: Config) -> np.ndarray:
    """Each row's fold; NO_FOLD for every row of a run without fold models (folds 0)."""
    return make_folds(labels, cfg.folds, cfg.seed) if cfg.folds else np.full(len(labels), NO_FOLD, np.int64)


def with_extra_rows(train: TrainSet, cfg: Config, name: str, table: Table, first_row: int) -> TrainSet:
    folds = row_folds(table.labels, cfg)
    return TrainSet(
        np.concatenate([train.rows, first_row + np.arange(len(table.labels))]),
        np.concatenate([train.images, table.images]),
        np.concatenate([train.labels, table.labels]),
        np.concatenate([train.folds, folds]),
        np.concatenate([train.origin, np.full(len(table.labels), name)]),
    )


def folds_table(train: TrainSet) -> pd.DataFrame:
    """folds.csv: row (index into train.csv, then on into an extra_train set), label, fold, origin."""
    return pd.DataFrame({"row": train.rows, "label": train.labels, "fold": train.folds, "origin": train.origin})


def folds_rows(data: Dataset, folds: pd.DataFrame, source: Path) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of a run's folds.csv rows: train.csv's, and an extra_train set's, numbered on after
    train.csv's (column `origin`). UserError naming `source` when these are not the files the run used."""
    rows = folds["row"].to_numpy()
    origin = folds["origin"].to_numpy() if "origin" in folds else np.full(len(rows), "train")
    images, labels = np.zeros((len(rows), *IMAGE_SHAPE), np.uint8), np.zeros(len(rows), np.int64)
    for name in np.unique(origin):
        table = data.train if name == "train" else data.extras.get(name)
        if table is None:
            raise UserError(f"{source}: rows from {name!r}, a set {data.spec.name} does not have")
        mine = origin == name
        index = rows[mine] - (0 if name == "train" else len(data.train.labels))
        if len(index) and (index.min() < 0 or index.max() >= len(table.labels)):
            raise UserError(
                f"{source}: row {rows[mine].max()} is past the {len(table.labels)} rows of {name} "
                "(are these the files the run used?)"
            )
        images[mine], labels[mine] = table.images[index], table.labels[index]
    wrong = np.flatnonzero(labels != folds["label"].to_numpy())
    if len(wrong):
        raise UserError(f"{source}: line {wrong[0] + 2}: label differs from the competition's files (other files?)")
    return images, labels
