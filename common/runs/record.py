"""What run.json and config.yaml hold, typed: RunRecord, and a trained run's Config or a blend's BlendConfig.

Both read old files too: a key this code does not know is kept (run.json) or left out (config.yaml), a key that
is missing gets its default, so folders written by earlier versions stay readable by every command.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.ground.config import Config
from common.ground.errors import UserError
from common.runs.layout import CONFIG_YAML, RunKind, RunStatus


@dataclass(frozen=True)
class RunRecord:
    """run.json: who started the run, how, where it trained, and how it stands."""

    run_id: str
    competition: str
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
    other: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, written back as found

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> RunRecord:
        """run.json's dict; the folder gives what old records lack (id, competition, label from the id)."""
        known = {f.name for f in dataclasses.fields(cls)} - {"other"}
        values = {key: value for key, value in data.items() if key in known and value is not None}
        values.setdefault("run_id", folder.name)
        values.setdefault("competition", folder.parent.name)
        values["label"] = values.get("label") or label_from_run_id(values["run_id"])
        values["status"] = RunStatus.decode(values.get("status"))
        kind = values.get("kind")
        values["kind"] = RunKind(kind) if kind in set(RunKind) else RunKind.of_label(values["label"])
        hardware = values.get("hardware", [])
        values["hardware"] = [hardware] if isinstance(hardware, str) else list(hardware)  # old runs: one string
        other = {key: value for key, value in data.items() if key not in known}
        return cls(**values, other=other)

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "other"}
        return values | self.other


def label_from_run_id(run_id: str) -> str:
    """<date>-<time>-<label>-<suffix>: the label of a run recorded before run.json kept it."""
    parts = run_id.split("-")
    return "-".join(parts[2:-1]) if len(parts) >= 4 else ""


@dataclass(frozen=True)
class BlendConfig:
    """A blend's config.yaml: the runs it averages (ids beside it, in the same competition folder), their
    weights (summing to 1) and the run whose folds its folds.csv keeps."""

    sources: tuple[str, ...]
    weights: tuple[float, ...]
    folds_from: str

    def __post_init__(self) -> None:
        if len(self.sources) < 2 or len(self.sources) != len(self.weights):
            raise UserError(f"blend config: {len(self.sources)} sources, {len(self.weights)} weights")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": RunKind.BLEND.value,
            "sources": list(self.sources),
            "weights": [float(w) for w in self.weights],
            "folds_from": self.folds_from,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlendConfig:
        """Also the first blends' form, {blend_of, weights, folds_from}."""
        sources = data.get("sources", data.get("blend_of", []))
        return cls(tuple(sources), tuple(float(w) for w in data.get("weights", [])), data.get("folds_from", ""))


RunConfig = Config | BlendConfig


def is_blend_config(data: dict[str, Any]) -> bool:
    return data.get("kind") == RunKind.BLEND.value or "blend_of" in data


def decode_config(data: dict[str, Any] | None, folder: Path) -> RunConfig:
    """config.yaml as the typed config it was written from; keys of an older version are left out."""
    data = data or {}
    if not isinstance(data, dict):
        raise UserError(f"{folder / CONFIG_YAML}: expected a mapping of config keys")
    if is_blend_config(data):
        return BlendConfig.from_dict(data)
    known = {f.name for f in dataclasses.fields(Config)}
    return Config(**{key: value for key, value in data.items() if key in known})


def config_dict(config: RunConfig | dict[str, Any]) -> dict[str, Any]:
    """What config.yaml holds for `config` (a dict is written as it is)."""
    return dict(config) if isinstance(config, dict) else config.to_dict()
