"""One unit of work (a fold and a seed): train it, save it the moment it finishes, load it back.

A unit is complete when its unit.json exists: it is written last, after every other file was renamed
into place, so a run killed at any moment leaves each unit either complete or ignorable.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from common import runs
from common.config import Config
from common.data import Dataset, Table
from common.errors import UserError
from common.folds import holdout_split, make_folds, stratified_subset

UnitKey = tuple[int, int]  # (fold, seed index)


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
    rows = rows[stratified_subset(labels[rows], cfg.max_train_rows, cfg.seed)]
    folds = make_folds(labels[rows], cfg.folds, cfg.seed)
    train = TrainSet(rows, data.train.images[rows], labels[rows], folds, np.full(len(rows), "train"))
    extras = dict(data.extras)
    if held is not None:
        extras[HOLDOUT_SET] = Table(data.train.images[held], labels[held])
    if cfg.extra_train:
        if cfg.extra_train not in data.extras:
            known = ", ".join(data.extras) or "none"
            raise UserError(
                f"config: extra_train {cfg.extra_train!r} is not an extra set of {data.spec.name} ({known})"
            )
        train = with_extra_rows(train, cfg, cfg.extra_train, extras.pop(cfg.extra_train), len(labels))
    return replace(data, extras=extras), train


def with_extra_rows(train: TrainSet, cfg: Config, name: str, table: Table, first_row: int) -> TrainSet:
    folds = make_folds(table.labels, cfg.folds, cfg.seed)
    return TrainSet(
        np.concatenate([train.rows, first_row + np.arange(len(table.labels))]),
        np.concatenate([train.images, table.images]),
        np.concatenate([train.labels, table.labels]),
        np.concatenate([train.folds, folds]),
        np.concatenate([train.origin, np.full(len(table.labels), name)]),
    )


def all_units(cfg: Config) -> list[UnitKey]:
    return [(fold, seed_index) for fold in range(cfg.folds) for seed_index in range(cfg.seeds)]


def unit_seed(cfg: Config, key: UnitKey) -> int:
    fold, seed_index = key
    return cfg.seed + 10_000 * seed_index + fold


@dataclass(frozen=True)
class UnitOutput:
    probabilities: dict[str, np.ndarray]  # "valid" (the held-out fold), "test", and each extra set
    history: pd.DataFrame
    seconds: float
    model_bytes: bytes | None = None  # the .keras file; None when not saved or loaded back
    record: dict = field(default_factory=dict)  # unit.json's other facts: where it trained, time per phase


def fit_unit(cfg: Config, key: UnitKey, train: TrainSet, data: Dataset, hardware, progress=None) -> UnitOutput:
    """Trains the unit's model on the other folds and predicts its fold, the test set and extra sets."""
    from common.pseudo import pseudo_labels
    from common.train import train_unit  # imported late: TensorFlow takes seconds to load
    from common.transfer import source_model_file

    held_out = train.folds == key[0]
    pseudo_images, pseudo_labelled = pseudo_labels(cfg, key[0], data.test.images)
    if len(pseudo_labelled):
        logging.getLogger("digits").info("fold %d seed %d: %d pseudo-labelled test images", *key, len(pseudo_labelled))
    model, result = train_unit(
        cfg,
        unit_seed(cfg, key),
        (
            np.concatenate([train.images[~held_out], pseudo_images]),
            np.concatenate([train.labels[~held_out], pseudo_labelled]),
        ),
        (train.images[held_out], train.labels[held_out]),
        {"test": data.test.images} | {name: table.images for name, table in data.extras.items()},
        hardware,
        progress,
        source_model_file(cfg, key),
    )
    record = {
        **hardware.to_dict(),
        "epoch_seconds": round(result.epoch_seconds, 2),
        "predict_seconds": round(result.predict_seconds, 2),
        "images_trained": result.images_trained,
    }
    saved = model_bytes(model) if cfg.save_models else None
    return UnitOutput(result.probabilities, result.history, result.seconds, saved, record)


def model_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.read_bytes()


def unit_dir(folder: Path, key: UnitKey) -> Path:
    return folder / "units" / f"f{key[0]}-s{key[1]}"


def save_unit(folder: Path, key: UnitKey, output: UnitOutput) -> None:
    """Each file written atomically; unit.json last, so its presence means the unit is complete."""
    target = unit_dir(folder, key)
    for name, probabilities in output.probabilities.items():
        runs.save_array(target / f"{name}.npy", probabilities)
    runs.atomic_write_bytes(target / "history.csv", output.history.to_csv(index=False).encode())
    if output.model_bytes is not None:
        runs.atomic_write_bytes(target / "model.keras", output.model_bytes)
    record = {"seconds": round(output.seconds, 1), "sets": sorted(output.probabilities), **output.record}
    runs.write_json(target / "unit.json", record)


def is_complete(folder: Path, key: UnitKey) -> bool:
    return (unit_dir(folder, key) / "unit.json").is_file()


def load_unit(folder: Path, key: UnitKey) -> UnitOutput:
    source = unit_dir(folder, key)
    record = json.loads((source / "unit.json").read_text())
    probabilities = {name: np.load(source / f"{name}.npy") for name in record["sets"]}
    facts = {k: v for k, v in record.items() if k not in ("seconds", "sets")}
    return UnitOutput(probabilities, pd.read_csv(source / "history.csv"), record["seconds"], None, facts)
