"""The run folder: the contract between training, compare, blend, report, submit, kernel and predict.

submissions/<competition>/<run_id>/ holds run.json, config.yaml, folds.csv, units/<unit>/ (each model's
probabilities, history and model), the ensemble's oof.npy and test.npy, metrics.json and submission.csv
(common/runs/layout.py names them all). A trained run has units; a blend averages other runs and has none.
`Run` is how every command reads a folder; common/runs/writing.py is how one is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from common.data.files import Dataset
from common.data.trainset import folds_rows
from common.ground.atomic import atomic_write_bytes
from common.ground.config import Config
from common.ground.errors import UserError
from common.ground.paths import PROJECT_ROOT
from common.runs.layout import (
    ALL_GROUPS,
    BLEND_LABEL,
    CONFIG_YAML,
    ENSEMBLE_GROUPS,
    FIGURES,
    FOLD_GROUP,
    FOLDS_CSV,
    FULL_GROUP,
    HISTORY_CSV,
    METRICS_JSON,
    MODEL_KERAS,
    OOF,
    PER_CLASS_CSV,
    REPORT_HTML,
    RUN_JSON,
    SUBMISSION_CSV,
    TENSORBOARD,
    TEST,
    TRAIN_LOG,
    TRIAL_PREFIX,
    UNIT_JSON,
    UNITS,
    VALID,
    RunKind,
    RunStatus,
    UnitKey,
    array_name,
    as_key,
    ensemble_keys,
    figure_name,
    unit_dir,
    unit_files,
    unit_keys,
)
from common.runs.record import BlendConfig, RunConfig, RunRecord, decode_config
from common.runs.writing import (
    create_run_dir,
    finish_run,
    git_commit,
    grow_run,
    mark_stopped,
    new_run_id,
    note_hardware,
    package_versions,
    read_record,
    reopen_run,
    save_array,
    start_run,
    update_record,
    write_config,
    write_folds,
    write_json,
)

__all__ = [  # the run-folder names and writers, re-exported: callers import them from common.runs
    "ALL_GROUPS",
    "BLEND_LABEL",
    "ENSEMBLE_GROUPS",
    "FOLD_GROUP",
    "FULL_GROUP",
    "BlendConfig",
    "CONFIG_YAML",
    "FIGURES",
    "FOLDS_CSV",
    "HISTORY_CSV",
    "METRICS_JSON",
    "MODEL_KERAS",
    "OOF",
    "PER_CLASS_CSV",
    "REPORT_HTML",
    "RUN_JSON",
    "RunConfig",
    "RunKind",
    "RunRecord",
    "RunStatus",
    "SUBMISSION_CSV",
    "TENSORBOARD",
    "TEST",
    "TRAIN_LOG",
    "TRIAL_PREFIX",
    "UNITS",
    "UNIT_JSON",
    "UnitKey",
    "VALID",
    "array_name",
    "as_key",
    "atomic_write_bytes",
    "ensemble_keys",
    "create_run_dir",
    "figure_name",
    "finish_run",
    "git_commit",
    "grow_run",
    "mark_stopped",
    "new_run_id",
    "note_hardware",
    "package_versions",
    "read_record",
    "reopen_run",
    "save_array",
    "start_run",
    "unit_dir",
    "unit_files",
    "unit_keys",
    "update_record",
    "write_config",
    "write_folds",
    "write_json",
]

DEFAULT_ROOT = PROJECT_ROOT / "submissions"


@dataclass(frozen=True)
class Member:
    """A trained run's share of an ensemble: the mean of its saved models (each over `tta` shifted views),
    times `weight`. A trained run is one member of weight 1; a blend is its sources' members, weighted."""

    run: Run
    weight: float

    @property
    def model_files(self) -> list[Path]:
        return self.run.model_files()

    @property
    def tta(self) -> int:
        return self.run.cfg.tta


@dataclass(frozen=True)
class Run:
    """A run folder as the commands read it: run.json and config.yaml typed, every other file by method."""

    folder: Path
    record: RunRecord
    config: RunConfig  # a trained run's Config, or a blend's BlendConfig

    # --- what run.json says -------------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.folder.name

    @property
    def competition(self) -> str:
        """From run.json; a folder copied out of submissions/<competition>/ keeps it there."""
        return self.record.competition

    @property
    def label(self) -> str:
        """The preset (or 'blend', or a study's trial) the run was started with."""
        return self.record.label

    @property
    def kind(self) -> RunKind:
        return RunKind.BLEND if isinstance(self.config, BlendConfig) else self.record.kind

    @property
    def status(self) -> RunStatus:
        return self.record.status

    @property
    def is_trial(self) -> bool:
        return self.kind is RunKind.TRIAL

    @property
    def is_blend(self) -> bool:
        return self.kind is RunKind.BLEND

    @property
    def finished(self) -> bool:
        return self.status is RunStatus.FINISHED

    def require_finished(self, purpose: str = "") -> Run:
        """This run when it is finished; one error wording otherwise, whichever command asks."""
        if not self.finished:
            raise UserError(f"run {self.run_id} is not finished (status {self.status}){purpose}")
        return self

    # --- what config.yaml says ----------------------------------------------------------------------------

    @property
    def cfg(self) -> Config:
        """A trained run's config, typed; one line for a blend, which trained nothing."""
        if isinstance(self.config, BlendConfig):
            raise UserError(
                f"run {self.run_id} is a blend of {len(self.config.sources)} runs ({', '.join(self.config.sources)}):"
                " it has no training config or units of its own"
            )
        return self.config

    @property
    def blend(self) -> BlendConfig:
        if not isinstance(self.config, BlendConfig):
            raise UserError(f"run {self.run_id} is a trained run, not a blend")
        return self.config

    @property
    def settings(self) -> dict[str, Any]:
        """The config's values by key, for tables that show how runs differ."""
        return self.config.to_dict()

    @property
    def shape(self) -> str:
        """'folds x seeds' of a trained run (and '+N full' with full-data models), 'blend of N' of a blend."""
        if isinstance(self.config, BlendConfig):
            return f"blend of {len(self.config.sources)}"
        cfg = self.config
        folds = f"{cfg.folds}x{cfg.seeds}" if cfg.folds else ""
        full = f"{cfg.full_models} full" if cfg.full_models else ""
        return " + ".join(part for part in (folds, full) if part)

    # --- units and models ---------------------------------------------------------------------------------

    def unit_dir(self, key: UnitKey | tuple[int | None, int]) -> Path:
        return unit_dir(self.folder, key)

    def unit_keys(self) -> list[UnitKey]:
        return unit_keys(self.folder)

    def unit_files(self, name: str, fold: int | None = None) -> list[Path]:
        return unit_files(self.folder, name, fold)

    def ensemble_keys(self) -> list[UnitKey]:
        """The units whose mean is the run's test.npy and submission (config `ensemble`), in unit order."""
        return ensemble_keys(self.unit_keys(), self.cfg.ensemble)

    def group_array(self, name: str, group: str) -> np.ndarray:
        """An extra set's (or the test set's) probabilities averaged over one group of the run's units (`folds`,
        `full` or `all`, the values of `ensemble`) rather than over its submitted ensemble."""
        keys = [] if self.is_blend else ensemble_keys(self.unit_keys(), group)
        files = [self.unit_dir(key) / array_name(name) for key in keys]
        if not files or not all(path.is_file() for path in files):
            what = "a blend has no units of its own" if self.is_blend else f"it has no {group} models predicting it"
            raise UserError(f"run {self.run_id}: no {name} predictions of its {group} models ({what})")
        return np.mean([np.load(path) for path in files], axis=0)

    def model_files(self) -> list[Path]:
        """The model.keras of every unit of the run's ensemble (Run.ensemble_keys), in unit order; UserError when
        the run saved none (a blend: its members')."""
        if self.is_blend:
            raise UserError(f"run {self.run_id} is a blend: its models are its sources' (see Run.members)")
        chosen = [self.unit_dir(key) / MODEL_KERAS for key in self.ensemble_keys()]
        files = [path for path in chosen if path.is_file()]
        if not files:
            raise UserError(f"{self.folder}: no saved models (was it trained with save_models=false?)")
        return files

    def sources(self) -> list[Run]:
        """A blend's source runs, found beside it in the competition's folder, finished."""
        found = []
        for run_id in self.blend.sources:
            folder = self.folder.parent / run_id
            if not is_run_folder(folder):
                raise UserError(f"blend {self.run_id}: its source run {run_id} is not in {self.folder.parent}")
            found.append(load_run(folder).require_finished(f": blend {self.run_id} needs it"))
        return found

    def members(self) -> list[Member]:
        """The trained runs whose models make this run's ensemble, with their weights (summing to 1): a blend
        of blends is followed down, and a run reached twice gets the sum of its weights."""
        if not self.is_blend:
            return [Member(self, 1.0)]
        weights: dict[Path, tuple[Run, float]] = {}
        for source, weight in zip(self.sources(), self.blend.weights, strict=True):
            for member in source.members():
                run, total = weights.get(member.run.folder, (member.run, 0.0))
                weights[member.run.folder] = run, total + weight * member.weight
        return [Member(run, weight) for run, weight in weights.values()]

    # --- the ensemble's files -----------------------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        path = self.folder / METRICS_JSON
        return json.loads(path.read_text()) if path.is_file() else {}

    def folds(self) -> pd.DataFrame:
        """Columns row (index into train.csv), label, fold (and origin, in runs since extra_train)."""
        return pd.read_csv(self.folds_file)

    def training_images(self, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """The images and labels of folds.csv's rows, in order (train.csv's and any extra_train set's), checked
        against the competition's files."""
        return folds_rows(data, self.folds(), self.folds_file)

    @property
    def folds_file(self) -> Path:
        return self.folder / FOLDS_CSV

    @property
    def config_file(self) -> Path:
        return self.folder / CONFIG_YAML

    @property
    def submission_file(self) -> Path:
        return self.folder / SUBMISSION_CSV

    @property
    def competition_submission_file(self) -> Path | None:
        """submissions/<competition>/submission.csv, which this run's submission.csv replaces when it finishes;
        None for a study's trial, which leaves the competition's latest alone."""
        return None if self.is_trial else self.folder.parent / SUBMISSION_CSV

    @property
    def report_file(self) -> Path:
        return self.folder / REPORT_HTML

    @property
    def log_file(self) -> Path:
        return self.folder / TRAIN_LOG

    def array_file(self, name: str) -> Path:
        return self.folder / array_name(name)

    def has_array(self, name: str) -> bool:
        return self.array_file(name).is_file()

    def array(self, name: str) -> np.ndarray:
        """oof, test, or an extra set's name: the ensemble's probabilities."""
        path = self.array_file(name)
        if not path.is_file():
            raise UserError(f"{path}: not found (is run {self.run_id} finished?)")
        return np.load(path)


def is_run_folder(path: Path) -> bool:
    return (path / RUN_JSON).is_file()


def load_run(folder: Path) -> Run:
    try:
        record = read_record(folder)
        config = decode_config(yaml.safe_load((folder / CONFIG_YAML).read_text()), folder)
    except (OSError, ValueError, TypeError) as error:
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


def runs_under(root: Path) -> list[Run]:
    """Every run folder of every competition under `root`, oldest first."""
    competitions = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return sorted((run for name in competitions for run in list_runs(root, name)), key=lambda run: run.run_id)


def unfinished_runs(root: Path, competition: str) -> list[Run]:
    """The runs still running (or killed while they were), oldest first: what `--resume latest` picks from."""
    return [run for run in list_runs(root, competition) if run.status is RunStatus.RUNNING]
