"""A run folder as every command reads it: `Run` (run.json and config.yaml typed, every other file by method)."""

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
from common.ground.config import Config
from common.ground.errors import UserError
from common.runs.layout import (
    CONFIG_YAML,
    FOLDS_CSV,
    METRICS_JSON,
    MODEL_KERAS,
    REPORT_HTML,
    RUN_JSON,
    SUBMISSION_CSV,
    TRAIN_LOG,
    RunKind,
    RunStatus,
    UnitKey,
    array_name,
    ensemble_keys,
    unit_dir,
    unit_files,
    unit_keys,
)
from common.runs.record import BlendConfig, Metrics, RunConfig, RunRecord, decode_config
from common.runs.units import mean_of_units, submitted_shape
from common.runs.writing import read_record


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

    def unit_dir(self, key: UnitKey) -> Path:
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
        mean = mean_of_units(self.folder, name, keys)
        if mean is None:
            what = "a blend has no units of its own" if self.is_blend else f"it has no {group} models predicting it"
            raise UserError(f"run {self.run_id}: no {name} predictions of its {group} models ({what})")
        return mean

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
        # A rank needs the whole set: one image, or Kaggle's hidden test set, has none.
        if self.is_blend and self.blend.rank:
            raise UserError(
                f"blend {self.run_id} averages ranks over each set's rows (--rank), which its sources' models cannot"
                " do image by image: to predict or write a notebook, blend the runs without --rank"
            )
        return self.weighted_runs()

    def weighted_runs(self) -> list[Member]:
        """members() without its refusal of a rank blend (whose weights are its ranks'): what reads the runs
        beneath rather than running their models image by image."""
        if not self.is_blend:
            return [Member(self, 1.0)]
        weights: dict[Path, tuple[Run, float]] = {}
        for source, weight in zip(self.sources(), self.blend.weights, strict=True):
            for member in source.weighted_runs():
                run, total = weights.get(member.run.folder, (member.run, 0.0))
                weights[member.run.folder] = run, total + weight * member.weight
        return [Member(run, weight) for run, weight in weights.values()]

    def trained_runs(self) -> list[Run]:
        """The trained runs whose models make this run's ensemble (itself, or a blend's followed down)."""
        return [member.run for member in self.weighted_runs()]

    def first_trained(self) -> Run:
        """The trained run itself; for a blend, its first source's (followed down), whose settings it shares."""
        return self.sources()[0].first_trained() if self.is_blend else self

    # --- the ensemble's files -----------------------------------------------------------------------------

    def metrics(self) -> Metrics | None:
        """metrics.json, typed; None before the run has finished once."""
        path = self.folder / METRICS_JSON
        return Metrics.from_dict(json.loads(path.read_text()), path) if path.is_file() else None

    def submitted_text(self, metrics: Metrics | None = None) -> str:
        """'1 full-data model (40 epochs, width 16): 0.90430 on dig_mnist_report': what the run submits and its
        own score (`metrics`: the run's, when already read)."""
        metrics = metrics or self.metrics()
        if metrics is None:
            return "not scored yet (the run has not finished)"
        epochs, widths = ("/".join(map(str, values)) for values in self.submitted_shape())
        plural = "" if epochs == "1" else "s"
        return f"{metrics.submitted.models} ({epochs} epoch{plural}, width {widths}): {metrics.submitted.phrase}"

    def submitted_shape(self) -> tuple[list[int], list[int]]:
        """The epochs and widths of the models the run submits (a full-data model's are full_epochs and
        full_width); a blend's, over its members."""
        if not self.is_blend:
            return submitted_shape(self.cfg)
        shapes = [run.submitted_shape() for run in self.trained_runs()]
        return sorted({e for epochs, _ in shapes for e in epochs}), sorted({w for _, widths in shapes for w in widths})

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
