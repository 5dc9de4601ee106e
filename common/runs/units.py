"""Units in a run folder (a fold and a seed each): saved the moment they finish, loaded back.

A unit is complete when its unit.json exists: it is written last, after every other file was renamed
into place, so a run killed at any moment leaves each unit either complete or ignorable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from common import runs
from common.ground.config import Config
from common.runs import unit_dir

UnitKey = tuple[int, int]  # (fold, seed index)


def all_units(cfg: Config) -> list[UnitKey]:
    return [(fold, seed_index) for fold in range(cfg.folds) for seed_index in range(cfg.seeds)]


@dataclass(frozen=True)
class UnitOutput:
    probabilities: dict[str, np.ndarray]  # "valid" (the held-out fold), "test", and each extra set
    history: pd.DataFrame
    seconds: float
    model_bytes: bytes | None = None  # the .keras file; None when not saved or loaded back
    record: dict = field(default_factory=dict)  # unit.json's other facts: where it trained, time per phase


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
