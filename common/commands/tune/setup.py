"""What `python run.py tune` asked for, checked before anything is written: the request, and the setup every
trial shares (the base config, the space, where the study lives)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import runs
from common.commands.tune.space import Space, read_space, space_file
from common.data.files import judged_half_names, load_dataset
from common.data.trainset import HOLDOUT_SET, prepare_train_set
from common.ground.checks import check_run_config
from common.ground.config import Config
from common.ground.config_files import chosen_keys, load_config
from common.ground.errors import UserError
from common.ground.model_keys import check_model_keys
from common.ground.spec import CompetitionSpec, get_spec
from common.runs import OOF
from common.runs.metrics import expected_signal

SUBMITTED = "submitted"  # the objective of the submitted models' own score (common/runs/metrics.py)
OBJECTIVES = (SUBMITTED, "oof", "holdout")
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class StudyRequest:
    """What `python run.py tune` was given; run.py parses it, this module checks it."""

    competition: str
    overrides: list[str] = field(default_factory=list)  # key=value under every trial's searched keys
    space: str | None = None  # a name in configs/search/ or a path; the competition's own by default
    study: str | None = None  # default: <competition>-<space>
    storage: str | None = None  # any database URL Optuna takes; default: SQLite in the study folder
    objective: str = SUBMITTED
    judged_weight: float = 0.0  # score = (1 - W) * objective + W * accuracy on the judged set's picking half
    trials: int | None = None  # trials this command adds
    timeout: float | None = None  # minutes; no trial starts after it
    scheduler: str | None = None
    preset: str | None = None
    config: str | None = None
    data_dir: str | None = None
    out: Path | None = None
    argv: list[str] = field(default_factory=list)  # the command line, for the records
    save_preset: bool = False  # also write the best trial's preset into configs/presets/


@dataclass(frozen=True)
class Setup:
    """A checked request: every trial's base config, the space, and where the study lives."""

    request: StudyRequest
    spec: CompetitionSpec
    base: Config
    space: Space
    name: str
    root: Path

    @property
    def folder(self) -> Path:
        return self.root / self.spec.name / "tune" / self.name

    @property
    def signal(self) -> str:
        """What judges the models every trial submits (the base config's; common/runs/metrics.py)."""
        return expected_signal(self.spec, self.base)

    @property
    def picked(self) -> str:
        """The score trials are picked on, as the trials' user attributes name it: `oof`, `holdout`, or the judged
        set's picking half. With the objective `submitted`, the one that judges the submitted models; for a judged
        set's reporting half (Kannada's Dig-MNIST) its picking half, of the same models, so that the reporting
        half still reports."""
        objective = self.request.objective
        if objective != SUBMITTED:
            return objective
        judged = {judged_half_names(name)[1]: judged_half_names(name)[0] for name in self.spec.judged_sets}
        return {OOF: "oof", HOLDOUT_SET: "holdout"}.get(self.signal) or judged[self.signal]

    @property
    def reporting(self) -> str | None:
        """The score no trial is picked on, which reports the best one honestly (None without one)."""
        picked = self.picked
        if picked == "holdout":
            return "oof"
        halves = [judged_half_names(name) for name in self.spec.judged_sets]
        report = next((report for pick, report in halves if pick == picked), None)
        return report or ("holdout" if self.base.holdout else None)

    @property
    def judged_halves(self) -> tuple[str, str] | None:
        """(picks, only reports): the halves of the judged set that --judged-weight weighs in; None without it."""
        judged = judged_set(self.spec)
        return judged_half_names(judged) if judged and self.request.judged_weight else None

    @property
    def objective_text(self) -> str:
        """The objective as the score column names it."""
        if self.request.objective == SUBMITTED:
            return f"submitted models: {self.picked}"
        return self.request.objective

    @property
    def score_column(self) -> str:
        weight = self.request.judged_weight
        if not self.judged_halves:
            return f"score ({self.objective_text})"
        return f"score ({1 - weight:.3g} {self.objective_text} + {weight:.3g} {self.judged_halves[0]})"

    @property
    def columns(self) -> dict[str, str]:
        """The trial's scores shown beside its score: user attribute -> column name."""
        shown = {}
        if self.judged_halves:
            pick, report = self.judged_halves
            shown = {self.picked: self.picked, pick: pick, report: f"{report} (reports)"}
        if self.reporting:
            shown[self.reporting] = f"{self.reporting} (reports)"
        return shown

    def label(self, number: int) -> str:
        return f"{runs.TRIAL_PREFIX}{self.name}-t{number}"

    def command(self) -> str:
        return shlex.join(["python", "run.py", *self.request.argv])

    def trial_argv(self, params: dict[str, Any]) -> list[str]:
        """The train command that reproduces a trial, as its run.json records it."""
        r = self.request
        flags = [("--preset", r.preset), ("--config", r.config), ("--data-dir", r.data_dir), ("--out", r.out)]
        flags += [("--scheduler", r.scheduler)]
        values = [f"{k}={v}" for k, v in self.space.fixed.items()] + r.overrides
        values += [f"{k}={v}" for k, v in params.items()]
        return [self.spec.name, *[str(part) for flag in flags if flag[1] for part in flag], *values]


def prepare(request: StudyRequest) -> Setup:
    """Every check a study needs, before any folder or database exists."""
    spec = get_spec(request.competition)
    space = read_space(space_file(spec.name, request.space))
    base = base_config(spec.name, request, space)
    check_space(space, base, request)
    check_run_config(spec, base)  # rows enough for the folds, the extra sets, a score: before the data loads
    check_objective(spec, base, space, request)
    prepare_train_set(load_dataset(spec, request.data_dir), base)  # missing or bad files: before the study
    name = request.study or f"{spec.name}-{space.name}"
    if not STUDY_NAME.fullmatch(name):
        raise UserError(f"--study {name!r}: use letters, digits, '.', '_' and '-' (it names a folder)")
    if request.trials is not None and request.trials < 1:
        raise UserError(f"--trials must be at least 1, got {request.trials}")
    if request.timeout is not None and request.timeout <= 0:
        raise UserError(f"--timeout must be a positive number of minutes, got {request.timeout}")
    return Setup(request, spec, base, space, name, request.out or runs.DEFAULT_ROOT)


def base_config(competition: str, request: StudyRequest, space: Space) -> Config:
    """The competition's defaults, the preset, --config, the space's fixed keys, then key=value."""
    return load_config(competition, request.preset, request.config, request.overrides, fixed=space.fixed)[0]


def check_space(space: Space, base: Config, request: StudyRequest) -> None:
    """Every value a trial may get makes a valid config, and the model reads every searched shape key."""
    for param in space.params:
        for value in param.extremes:
            try:
                Config(**(base.to_dict() | {param.key: value}))
            except UserError as error:
                raise UserError(f"{space.path}: {param.key}={value!r}: {error}") from None
    chosen = (
        chosen_keys(request.config, request.overrides, get_spec(request.competition).name)
        | set(space.fixed)
        | {p.key for p in space.params}
    )
    models = next((param.choices for param in space.params if param.key == "model"), (base.model,))
    for model in models:
        check_model_keys(model, chosen)


def judged_set(spec: CompetitionSpec) -> str | None:
    """The extra set whose picking half --judged-weight weighs into the score: the competition's first judged
    set (its spec's judged_sets), or None."""
    return spec.judged_sets[0] if spec.judged_sets else None


def check_objective(spec: CompetitionSpec, base: Config, space: Space, request: StudyRequest) -> None:
    if request.objective not in OBJECTIVES:
        raise UserError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {request.objective!r}")
    if request.objective == "holdout" and not base.holdout:
        raise UserError("--objective holdout needs a holdout: set holdout=0.1 (or in the space's fixed keys)")
    signal = expected_signal(spec, base)
    if request.objective == SUBMITTED and not signal:
        raise UserError(
            "tune --objective submitted: nothing scores the models these trials submit (full-data models give no"
            " OOF): set holdout=0.1, or pick on --objective oof"
        )
    if not 0 <= request.judged_weight <= 1:
        raise UserError(f"--judged-weight must be between 0 and 1, got {request.judged_weight}")
    if not request.judged_weight:
        return
    if request.objective == SUBMITTED and signal not in (OOF, HOLDOUT_SET):
        pick = judged_half_names(judged_set(spec))[0]
        raise UserError(
            f"--judged-weight: with --objective submitted, the trials are picked on {pick} already (their"
            f" submitted models are judged on {signal}); weigh it into --objective oof or holdout instead"
        )
    judged = judged_set(spec)
    if judged is None:
        raise UserError(
            f"--judged-weight: {spec.name} has no judged set (an extra labelled set split into a half that picks "
            "and a half that reports)"
        )
    searched = next((param.extremes for param in space.params if param.key == "extra_train"), ())
    if base.extra_train == judged or judged in searched:
        raise UserError(
            f"--judged-weight: the trials would train on {spec.extra_sets[judged]} (extra_train), "
            "so it would score nothing"
        )
