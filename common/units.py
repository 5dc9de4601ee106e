"""One unit of work (a fold and a seed): train it, save it the moment it finishes, load it back.

A unit is complete when its unit.json exists: it is written last, after every other file was renamed
into place, so a run killed at any moment leaves each unit either complete or ignorable.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from common import runs
from common.config import Config
from common.data import Dataset
from common.folds import make_folds, stratified_subset

UnitKey = tuple[int, int]  # (fold, seed index)


@dataclass(frozen=True)
class TrainSet:
    """The rows trained on (all of train.csv, or a stratified subset) and their folds."""

    rows: np.ndarray  # indices into train.csv
    images: np.ndarray
    labels: np.ndarray
    folds: np.ndarray


def prepare_train_set(data: Dataset, cfg: Config) -> TrainSet:
    rows = stratified_subset(data.train.labels, cfg.max_train_rows, cfg.seed)
    labels = data.train.labels[rows]
    return TrainSet(rows, data.train.images[rows], labels, make_folds(labels, cfg.folds, cfg.seed))


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


def fit_unit(cfg: Config, key: UnitKey, train: TrainSet, data: Dataset, hardware, progress=None) -> UnitOutput:
    """Trains the unit's model on the other folds and predicts its fold, the test set and extra sets."""
    from common.train import train_unit  # imported late: TensorFlow takes seconds to load
    from common.transfer import source_model_file

    held_out = train.folds == key[0]
    model, result = train_unit(
        cfg,
        unit_seed(cfg, key),
        (train.images[~held_out], train.labels[~held_out]),
        (train.images[held_out], train.labels[held_out]),
        {"test": data.test.images} | {name: table.images for name, table in data.extras.items()},
        hardware,
        progress,
        source_model_file(cfg, key),
    )
    return replace(result, model_bytes=model_bytes(model)) if cfg.save_models else result


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
    runs.write_json(target / "unit.json", {"seconds": round(output.seconds, 1), "sets": sorted(output.probabilities)})


def is_complete(folder: Path, key: UnitKey) -> bool:
    return (unit_dir(folder, key) / "unit.json").is_file()


def load_unit(folder: Path, key: UnitKey) -> UnitOutput:
    source = unit_dir(folder, key)
    record = json.loads((source / "unit.json").read_text())
    probabilities = {name: np.load(source / f"{name}.npy") for name in record["sets"]}
    return UnitOutput(probabilities, pd.read_csv(source / "history.csv"), record["seconds"])
