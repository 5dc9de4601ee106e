"""Writing a run folder: creating it, its run.json from start to finish, its config.yaml and folds.csv.

Every file is written under a temporary name and renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from common.data.sources import DataFile
from common.ground.atomic import atomic_path, atomic_write_bytes
from common.ground.paths import PROJECT_ROOT
from common.runs.layout import CONFIG_YAML, FOLDS_CSV, RUN_JSON, RunKind, RunStatus
from common.runs.record import RunConfig, RunRecord, config_dict


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


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")  # orders runs that finish within a second


def start_run(
    folder: Path,
    config: RunConfig | dict[str, Any],
    argv: list[str],
    hardware: str | None = None,
    label: str = "",
    kind: RunKind = RunKind.TRAINED,
    data_files: Sequence[DataFile] = (),
) -> RunRecord:
    """Writes run.json (status running) and config.yaml; returns the record. `label`: the preset, 'blend' or a
    trial's; `data_files`: the competition files it read."""
    record = RunRecord(
        run_id=folder.name,
        competition=folder.parent.name,
        label=label,
        kind=kind,
        status=RunStatus.RUNNING,
        command=" ".join(["python", "run.py", *argv]),
        started=now(),
        machine=f"{platform.machine()}, {os.cpu_count()} cores",
        hardware=[hardware] if hardware else [],
        versions=package_versions(),
        git_commit=git_commit(),
        argv=sys.argv,
        data_files=tuple(data_files),
    )
    write_config(folder, config)
    write_json(folder / RUN_JSON, record.to_dict())
    return record


def write_config(folder: Path, config: RunConfig | dict[str, Any]) -> None:
    atomic_write_bytes(folder / CONFIG_YAML, yaml.safe_dump(config_dict(config), sort_keys=False).encode())


def write_folds(folder: Path, table: pd.DataFrame) -> None:
    """folds.csv: row, label, fold (and origin): what lines runs up row by row for every command."""
    atomic_write_bytes(folder / FOLDS_CSV, table.to_csv(index=False).encode())


def read_record(folder: Path) -> RunRecord:
    return RunRecord.from_dict(json.loads((folder / RUN_JSON).read_text()), folder)


def update_record(folder: Path, **changes: Any) -> RunRecord:
    """Read-modify-write of run.json (fields of RunRecord, by name), so that no caller holds a stale copy.
    Keys the record does not know are kept as they were."""
    data = json.loads((folder / RUN_JSON).read_text()) | changes
    record = RunRecord.from_dict(data, folder)
    write_json(folder / RUN_JSON, record.to_dict())
    return record


def note_hardware(folder: Path, description: str) -> None:
    """Adds what this process trains on to run.json's `hardware` list (a resumed run may change machine)."""
    known = read_record(folder).hardware
    if description not in known:
        update_record(folder, hardware=[*known, description])


def reopen_run(folder: Path, argv: list[str]) -> None:
    """Notes in run.json that the run was continued (resume or merge)."""
    continued = [*read_record(folder).continued, {"at": now(), "command": " ".join(["python", "run.py", *argv])}]
    update_record(folder, continued=continued)


def grow_run(folder: Path, config: RunConfig | dict[str, Any]) -> None:
    """A run given more units (more seeds): its new config.yaml, and running again until they are trained (the
    ensemble files of the smaller run stay until then, and are rewritten when the run finishes)."""
    write_config(folder, config)
    update_record(folder, status=RunStatus.RUNNING)


def finish_run(folder: Path, seconds: float) -> None:
    update_record(folder, status=RunStatus.FINISHED, finished=now(), wall_seconds=round(seconds, 1))


def mark_stopped(folder: Path, status: RunStatus) -> None:
    """A study's trial that stopped early: pruned or failed (its folder and finished units stay)."""
    if status not in (RunStatus.PRUNED, RunStatus.FAILED):
        raise ValueError(f"a stopped run is pruned or failed, not {status}")
    update_record(folder, status=status)
