"""Units in a run folder (a fold and a seed each, or a full-data model and its seed): saved the moment they finish, loaded back.

A unit is complete when its unit.json exists: it is written last, after every other file was renamed
into place, so a run killed at any moment leaves each unit either complete or ignorable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.ground.atomic import atomic_write_bytes
from common.ground.config import Config
from common.runs.layout import (
    HISTORY_CSV,
    MODEL_KERAS,
    UNIT_JSON,
    UnitKey,
    array_name,
    ensemble_keys,
    unit_dir,
    unit_keys,
)
from common.runs.writing import save_array, write_json

__all__ = [
    "UnitKey",
    "UnitOutput",
    "all_units",
    "is_complete",
    "load_unit",
    "mean_of_units",
    "save_unit",
    "unit_config",
]

TIMINGS = ("epoch_seconds", "predict_seconds", "images_trained")  # unit.json keys of UnitOutput's own fields


def all_units(cfg: Config) -> list[UnitKey]:
    """The models a config asks for, in key order: every fold with every seed index, then the full-data models."""
    folds = [UnitKey(fold, seed) for fold in range(cfg.folds) for seed in range(cfg.seeds)]
    return folds + [UnitKey(None, seed) for seed in range(cfg.full_models)]


def unit_config(cfg: Config, key: UnitKey) -> Config:
    """The config a unit trains with: the run's, but a full-data model's schedule spans full_epochs and its width
    is full_width."""
    return cfg if key.holds_out else replace(cfg, epochs=cfg.full_data_epochs, width=cfg.full_data_width)


def submitted_keys(cfg: Config) -> list[UnitKey]:
    """The units a config's submission averages (config `ensemble`), in key order."""
    return ensemble_keys(all_units(cfg), cfg.ensemble)


def submitted_shape(cfg: Config) -> tuple[list[int], list[int]]:
    """The epochs and the widths of the models a config submits (each distinct value once, smallest first)."""
    configs = [unit_config(cfg, key) for key in submitted_keys(cfg)]
    return sorted({c.epochs for c in configs}), sorted({c.width for c in configs})


@dataclass(frozen=True)
class UnitOutput:
    """One trained model's results: what training returns and a unit folder holds."""

    probabilities: dict[str, np.ndarray]  # "valid" (the held-out fold; none for a full-data model), "test", extras
    history: pd.DataFrame  # per epoch
    seconds: float  # the whole unit
    model_bytes: bytes | None = None  # the .keras file; None when not saved or loaded back
    record: dict[str, Any] = field(default_factory=dict)  # where it trained: backend, device, precision
    epoch_seconds: float | None = None  # inside the training epochs
    predict_seconds: float | None = None  # predicting every set (test-time views and compilation included)
    images_trained: int | None = None  # batches x batch size x epochs run

    @property
    def backend(self) -> str:
        return self.record["backend"]

    @property
    def device(self) -> str:
        return self.record.get("device_name", "an unrecorded device")

    @property
    def hardware(self) -> str:
        return self.record.get("hardware", "not recorded")


def save_unit(folder: Path, key: UnitKey, output: UnitOutput) -> None:
    """Each file written atomically; unit.json last, so its presence means the unit is complete."""
    target = unit_dir(folder, key)
    for name, probabilities in output.probabilities.items():
        save_array(target / array_name(name), probabilities)
    atomic_write_bytes(target / HISTORY_CSV, output.history.to_csv(index=False).encode())
    if output.model_bytes is not None:
        atomic_write_bytes(target / MODEL_KERAS, output.model_bytes)
    timings = {name: value for name in TIMINGS if (value := getattr(output, name)) is not None}
    timings = {name: value if name == "images_trained" else round(value, 2) for name, value in timings.items()}
    record = {"seconds": round(output.seconds, 1), "sets": sorted(output.probabilities), **output.record, **timings}
    write_json(target / UNIT_JSON, record)


def is_complete(folder: Path, key: UnitKey) -> bool:
    return (unit_dir(folder, key) / UNIT_JSON).is_file()


def read_unit_record(folder: Path, key: UnitKey) -> dict[str, Any]:
    """unit.json as written: seconds, sets, timings and where the unit trained."""
    return json.loads((unit_dir(folder, key) / UNIT_JSON).read_text())


def load_unit(folder: Path, key: UnitKey) -> UnitOutput:
    source = unit_dir(folder, key)
    record = read_unit_record(folder, key)
    probabilities = {name: np.load(source / array_name(name)) for name in record["sets"]}
    timings = {name: record[name] for name in TIMINGS if name in record}
    facts = {k: v for k, v in record.items() if k not in ("seconds", "sets", *TIMINGS)}
    history = pd.read_csv(source / HISTORY_CSV)
    return UnitOutput(probabilities, history, record["seconds"], None, facts, **timings)


def mean_of_units(folder: Path, name: str, keys: list[UnitKey]) -> np.ndarray | None:
    """Array `name` (the test set, an extra set) averaged over the units `keys` of the run in `folder`, in key
    order: the one way an ensemble is formed from saved units. None when `keys` is empty or one of them lacks it."""
    files = [unit_dir(folder, key) / array_name(name) for key in sorted(keys)]
    if not files or not all(path.is_file() for path in files):
        return None
    return np.mean([np.load(path) for path in files], axis=0)


def unit_backends(folder: Path) -> list[str]:
    """The backends a run's complete units trained on, sorted."""
    keys = [key for key in unit_keys(folder) if is_complete(folder, key)]
    return sorted({read_unit_record(folder, key)["backend"] for key in keys})
