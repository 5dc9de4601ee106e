"""The run folder: the contract between training, compare, blend and submit.

submissions/<competition>/<run_id>/ holds run.json (status, command, versions, timings), config.yaml,
folds.csv, units/f<K>-s<S>/ (each unit's probabilities, history and model), the ensemble's oof.npy and
test.npy, metrics.json and submission.csv. Every file is written under a temporary name and renamed.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from common.data.files import Dataset
from common.data.trainset import folds_rows
from common.ground.atomic import atomic_path, atomic_write_bytes
from common.ground.config import Config
from common.ground.errors import UserError
from common.ground.paths import PROJECT_ROOT

__all__ = ["atomic_write_bytes"]  # re-exported: the run-folder writers use runs.atomic_write_bytes

DEFAULT_ROOT = PROJECT_ROOT / "submissions"


# The run folder's own files: every reader and writer names them through these.
RUN_JSON = "run.json"
CONFIG_YAML = "config.yaml"
FOLDS_CSV = "folds.csv"
METRICS_JSON = "metrics.json"
SUBMISSION_CSV = "submission.csv"

TRIAL_PREFIX = "tune-"  # labels of a study's trials: runs like any other, but never a competition's "latest"
UNITS = "units"  # each unit's folder is units/f<fold>-s<seed index>/


def unit_dir(folder: Path, key: tuple[int, int]) -> Path:
    return folder / UNITS / f"f{key[0]}-s{key[1]}"


def unit_files(folder: Path, name: str, fold: int | None = None) -> list[Path]:
    """The file `name` of every unit that has one (of fold `fold` only, when given), in unit order."""
    pattern = f"f{'*' if fold is None else fold}-s*/{name}"
    return sorted((folder / UNITS).glob(pattern))


def write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=_jsonable) + "\n").encode())


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_array(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, ".npy") as temporary:
        np.save(temporary, array)


def new_run_id(label: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{label}-{secrets.token_hex(2)}"


def create_run_dir(root: Path, competition: str, label: str) -> Path:
    """A new, empty run folder; mkdir without exist_ok, so two runs never share one."""
    while True:
        folder = root / competition / new_run_id(label)
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = ["keras", "tensorflow", "jax", "jaxlib", "torch", "numpy", "pandas", "scikit-learn", "albumentations"]
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return {"python": platform.python_version(), **found}


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def start_run(
    folder: Path, config: dict[str, Any], argv: list[str], hardware: str | None = None, label: str = ""
) -> dict[str, Any]:
    """Writes run.json (status running) and config.yaml; returns the run record to update later."""
    record = {
        "run_id": folder.name,
        "label": label,
        "competition": folder.parent.name,
        "status": "running",
        "command": " ".join(["python", "run.py", *argv]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "hardware": [hardware] if hardware else [],
        "versions": package_versions(),
        "git_commit": git_commit(),
        "argv": sys.argv,
    }
    write_config(folder, config)
    write_json(folder / RUN_JSON, record)
    return record


def write_config(folder: Path, config: dict[str, Any]) -> None:
    atomic_write_bytes(folder / CONFIG_YAML, yaml.safe_dump(config, sort_keys=False).encode())


def write_folds(folder: Path, table: pd.DataFrame) -> None:
    """folds.csv: row, label, fold (and origin): what lines runs up row by row for every command."""
    atomic_write_bytes(folder / FOLDS_CSV, table.to_csv(index=False).encode())


def note_hardware(folder: Path, description: str) -> None:
    """Adds what this process trains on to run.json's `hardware` list (a resumed run may change machine)."""
    known = json.loads((folder / RUN_JSON).read_text()).get("hardware", [])
    if description not in known:
        update_record(folder, hardware=[*known, description])


def update_record(folder: Path, **changes: Any) -> dict[str, Any]:
    """Read-modify-write of run.json, so that no caller holds a stale copy."""
    record = json.loads((folder / RUN_JSON).read_text()) | changes
    write_json(folder / RUN_JSON, record)
    return record


def reopen_run(folder: Path, argv: list[str]) -> None:
    """Notes in run.json that the run was continued (resume or merge)."""
    record = json.loads((folder / RUN_JSON).read_text())
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    continued = record.get("continued", []) + [{"at": stamp, "command": " ".join(["python", "run.py", *argv])}]
    update_record(folder, continued=continued)


def grow_run(folder: Path, config: dict[str, Any]) -> None:
    """A run given more units (more seeds): its new config.yaml, and running again until they are trained (the
    ensemble files of the smaller run stay until then, and are rewritten when the run finishes)."""
    write_config(folder, config)
    update_record(folder, status="running")


def finish_run(folder: Path, seconds: float) -> None:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    update_record(folder, status="finished", finished=stamp, wall_seconds=round(seconds, 1))


# ---------------------------------------------------------------------------
# Reading run folders (compare, blend, submit and report only read these)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A run folder as the read-only commands see it."""

    folder: Path
    record: dict[str, Any]  # run.json
    config: dict[str, Any]  # config.yaml

    @property
    def run_id(self) -> str:
        return self.folder.name

    @property
    def competition(self) -> str:
        """From run.json; a folder copied out of submissions/<competition>/ keeps it there."""
        return self.record.get("competition", self.folder.parent.name)

    @property
    def label(self) -> str:
        """The preset (or 'blend', or a study's trial) the run was started with."""
        if self.record.get("label"):
            return self.record["label"]
        parts = self.run_id.split("-")  # runs from before run.json kept it: <date>-<time>-<label>-<suffix>
        return "-".join(parts[2:-1]) if len(parts) >= 4 else ""

    @property
    def is_trial(self) -> bool:
        return self.label.startswith(TRIAL_PREFIX)

    @property
    def finished(self) -> bool:
        return self.record.get("status") == "finished"

    def unit_dir(self, key: tuple[int, int]) -> Path:
        return unit_dir(self.folder, key)

    def unit_files(self, name: str, fold: int | None = None) -> list[Path]:
        return unit_files(self.folder, name, fold)

    @property
    def cfg(self) -> Config:
        """config.yaml as the typed Config it was resolved from."""
        return Config(**self.config)

    def training_images(self, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """The images and labels of folds.csv's rows, in order (train.csv's and any extra_train set's), checked
        against the competition's files."""
        return folds_rows(data, self.folds(), self.folds_file)

    def model_files(self) -> list[Path]:
        """Every unit's model.keras, in unit order; UserError when the run saved none."""
        files = self.unit_files("model.keras")
        if not files:
            raise UserError(f"{self.folder}: no saved models (was it trained with save_models=false?)")
        return files

    def require_finished(self, purpose: str = "") -> Run:
        """This run when it is finished; one error wording otherwise, whichever command asks."""
        if not self.finished:
            status = self.record.get("status", "unknown")
            raise UserError(f"run {self.run_id} is not finished (status {status}){purpose}")
        return self

    def metrics(self) -> dict[str, Any]:
        path = self.folder / METRICS_JSON
        return json.loads(path.read_text()) if path.is_file() else {}

    def folds(self) -> pd.DataFrame:
        """Columns row (index into train.csv), label, fold (and origin, in runs since extra_train)."""
        return pd.read_csv(self.folds_file)

    @property
    def folds_file(self) -> Path:
        return self.folder / FOLDS_CSV

    @property
    def submission_file(self) -> Path:
        return self.folder / SUBMISSION_CSV

    def has_array(self, name: str) -> bool:
        return (self.folder / f"{name}.npy").is_file()

    def array(self, name: str) -> np.ndarray:
        """oof, test, or an extra set's name: the ensemble's probabilities."""
        path = self.folder / f"{name}.npy"
        if not path.is_file():
            raise UserError(f"{path}: not found (is run {self.run_id} finished?)")
        return np.load(path)


def is_run_folder(path: Path) -> bool:
    return (path / RUN_JSON).is_file()


def load_run(folder: Path) -> Run:
    try:
        record = json.loads((folder / RUN_JSON).read_text())
        config = yaml.safe_load((folder / CONFIG_YAML).read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"{folder}: not a readable run folder ({error})") from None
    return Run(folder, record, config)


def list_runs(root: Path, competition: str) -> list[Run]:
    """Every run folder of the competition, oldest first (run ids start with their UTC time)."""
    base = root / competition
    folders = sorted(p for p in base.iterdir() if is_run_folder(p)) if base.is_dir() else []
    return [load_run(p) for p in folders]


def find_run(root: Path, competition: str, run_id: str | None) -> Run:
    """A run by id (or unique prefix); None or 'latest' means the newest finished run."""
    all_runs = list_runs(root, competition)
    if run_id in (None, "latest"):
        finished = [r for r in all_runs if r.finished and not r.is_trial]  # a study's trial is never "latest"
        if not finished:
            raise UserError(f"no finished run of {competition} under {root / competition}")
        return finished[-1]
    matches = [r for r in all_runs if r.run_id == run_id] or [r for r in all_runs if r.run_id.startswith(run_id)]
    if len(matches) != 1:
        known = ", ".join(r.run_id for r in all_runs[-5:]) or "none"
        problem = "no run" if not matches else f"{len(matches)} runs"
        raise UserError(f"{problem} of {competition} matches {run_id!r} (latest: {known})")
    return matches[0]


def finished_run(root: Path, competition: str, run_id: str | None) -> Run:
    """find_run, refusing a run that is not finished."""
    return find_run(root, competition, run_id).require_finished()
