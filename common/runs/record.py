"""What run.json, config.yaml and metrics.json hold, typed: RunRecord, a trained run's Config or a blend's
BlendConfig, and Metrics.

run.json holds the folder's format (layout.RUN_FORMAT): a folder of another format is refused with one line. A
run.json key this code does not know is kept as found.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.data.sources import DataFile
from common.ground.config import Config
from common.ground.errors import UserError
from common.runs.layout import (
    BLEND_LABEL,
    CONFIG_YAML,
    FULL_GROUP,
    OOF,
    RUN_FORMAT,
    RUN_JSON,
    RunKind,
    RunStatus,
    UnitKey,
)


@dataclass(frozen=True)
class RunRecord:
    """run.json: who started the run, how, where it trained, and how it stands."""

    run_id: str
    competition: str
    format: int = RUN_FORMAT  # the run folder's layout; readers refuse another
    label: str = ""  # the preset, 'blend', or a study's trial label
    kind: RunKind = RunKind.TRAINED
    status: RunStatus = RunStatus.RUNNING
    command: str = ""  # python run.py ...
    started: str = ""  # ISO time, UTC
    finished: str = ""
    wall_seconds: float | None = None
    machine: str = ""
    hardware: list[str] = field(default_factory=list)  # every machine it trained on (a resumed run may change)
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    argv: list[str] = field(default_factory=list)
    continued: list[dict[str, str]] = field(default_factory=list)  # each resume or merge: at, command
    init_from: dict[str, str] = field(default_factory=dict)  # with init_from: unit -> the model.keras it started from
    data_files: tuple[DataFile, ...] = ()  # the competition files it read: path, size, SHA-256
    other: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, written back as found

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> RunRecord:
        """run.json's dict, checked to be of this version's format."""
        if (found := data.get("format")) != RUN_FORMAT:
            raise UserError(
                f"{folder / RUN_JSON}: a run folder of format {'none' if found is None else found}; this version reads"
                f" format {RUN_FORMAT} (use the version that wrote it, or train the run again)"
            )
        known = {f.name for f in dataclasses.fields(cls)} - {"other"}
        values = {key: value for key, value in data.items() if key in known and value is not None}
        values["status"] = RunStatus.decode(values.get("status"))
        values["kind"] = RunKind(values["kind"])
        values["data_files"] = tuple(DataFile.from_dict(entry) for entry in values.get("data_files", ()))
        other = {key: value for key, value in data.items() if key not in known}
        return cls(**values, other=other)

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "other"}
        values["data_files"] = [entry.to_dict() for entry in self.data_files]
        return values | self.other


@dataclass(frozen=True)
class BlendConfig:
    """A blend's config.yaml: the runs it averages (ids beside it, in the same competition folder), their
    weights (summing to 1), the run whose folds its folds.csv keeps, whether it averages each class's rank over a
    set's rows rather than probabilities, and the set its weights were fitted on ("" when they were given)."""

    sources: tuple[str, ...]
    weights: tuple[float, ...]
    folds_from: str
    rank: bool = False
    fitted_on: str = ""

    def __post_init__(self) -> None:
        if len(self.sources) < 2 or len(self.sources) != len(self.weights):
            raise UserError(f"blend config: {len(self.sources)} sources, {len(self.weights)} weights")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": RunKind.BLEND.value,
            "sources": list(self.sources),
            "weights": [float(w) for w in self.weights],
            "folds_from": self.folds_from,
            "rank": self.rank,
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlendConfig:
        sources = data.get("sources", [])
        weights = tuple(float(w) for w in data.get("weights", []))
        rank, fitted_on = bool(data.get("rank", False)), str(data.get("fitted_on") or "")
        return cls(tuple(sources), weights, data.get("folds_from", ""), rank, fitted_on)


RunConfig = Config | BlendConfig


def is_blend_config(data: dict[str, Any]) -> bool:
    return data.get("kind") == RunKind.BLEND.value


def decode_config(data: dict[str, Any] | None, folder: Path) -> RunConfig:
    """config.yaml as the typed config it was written from."""
    data = data or {}
    if not isinstance(data, dict):
        raise UserError(f"{folder / CONFIG_YAML}: expected a mapping of config keys")
    if is_blend_config(data):
        return BlendConfig.from_dict(data)
    return Config(**data)


def config_dict(config: RunConfig | dict[str, Any]) -> dict[str, Any]:
    """What config.yaml holds for `config` (a dict is written as it is)."""
    return dict(config) if isinstance(config, dict) else config.to_dict()


@dataclass(frozen=True)
class Submitted:
    """The models a run submits (the units its test.npy averages, config `ensemble`) and their own score, on the
    one signal that can judge them (common/runs/metrics.py:judging_signal)."""

    group: str  # folds, full or all (Config.ensemble); a blend's: blend
    units: list[str]  # their unit folders' names (a blend's: <source run id>/<unit>)
    signal: str  # what scores them: oof, the holdout's or a judged set's reporting half's name; "" when nothing can
    accuracy: float | None  # None when nothing can

    @property
    def models(self) -> str:
        """'5 fold models', '1 full-data model', '5 fold models and 1 full-data model'; a blend's '6 models of 2
        runs, weighted'."""
        if self.group == BLEND_LABEL:
            runs = len({unit.split("/")[0] for unit in self.units})
            return f"{len(self.units)} models of {runs} runs, weighted"
        full = sum(UnitKey.parse(unit).group == FULL_GROUP for unit in self.units)
        counts = [(len(self.units) - full, "fold"), (full, "full-data")]
        return " and ".join(f"{n} {kind} model{'s' if n != 1 else ''}" for n, kind in counts if n)

    @property
    def judged_by(self) -> str:
        """The signal as tables name it."""
        return "OOF" if self.signal == OOF else self.signal or "nothing"

    @property
    def phrase(self) -> str:
        """'0.90430 on dig_mnist_report', or why there is no score."""
        if self.accuracy is None:
            return "no score: no held-out row judges them (OOF scores fold models only; set holdout=0.1)"
        return f"{self.accuracy:.5f} on {self.judged_by}"


@dataclass(frozen=True)
class Metrics:
    """metrics.json: a finished run's scores, the submitted models' own first. A run without fold models has no
    OOF, fold, seed or per-class scores; a blend has its inputs' scores on the same rows."""

    submitted: Submitted
    n_train_rows: int
    oof_accuracy: float | None = None  # train.csv's rows only, with extra_train
    extra_accuracy: dict[str, float] = field(default_factory=dict)  # by the submitted models
    extra_accuracy_by_group: dict[str, dict[str, float]] = field(default_factory=dict)  # set -> group -> accuracy
    oof_extra_accuracy: dict[str, float] = field(default_factory=dict)  # an extra_train set's own OOF
    units: dict[str, dict[str, Any]] = field(default_factory=dict)  # unit name -> fold, seed_index, accuracy, seconds
    folds: dict[str, dict[str, Any]] = field(default_factory=dict)  # fold -> accuracy, seconds
    seeds: dict[str, float] = field(default_factory=dict)  # seed index -> OOF of that seed's models
    per_class: list[dict[str, Any]] = field(default_factory=list)  # OOF precision, recall, F1, support
    ensemble_gain: float | None = None  # on the holdout: the fold ensemble over one fold model
    leaderboard_estimate: float | None = None  # OOF plus that gain
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # a blend's: run id -> weight and scores
    weights_fit: dict[str, Any] = field(default_factory=dict)  # a fitted blend's: the set, optimiser, fold weights

    @property
    def score(self) -> float | None:
        """The one figure runs are ranked by: the submitted models' own score."""
        return self.submitted.accuracy

    @property
    def scored_on(self) -> str:
        """The sets the submitted models were scored on apart from OOF ('train_holdout and sklearn_test'), or
        'nothing': what scores a run without fold models."""
        names = list(self.extra_accuracy)
        return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names) or "nothing"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path) -> Metrics:
        try:
            return cls(**(data | {"submitted": Submitted(**data["submitted"])}))
        except (KeyError, TypeError) as error:
            raise UserError(f"{path}: not a metrics record this version writes ({error})") from None
