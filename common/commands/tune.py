"""A hyper-parameter study in one command (python run.py tune COMPETITION), built on Optuna.

The search space is data (configs/search/<name>.yaml). Every trial is an ordinary run of the pipeline, in its
own run folder labelled tune-<study>-t<N>, so compare, blend, report and submit work on trials unchanged. The
study lives in an Optuna database (by default study.db in submissions/<competition>/tune/<study>/) and the same
command continues it. Each saved unit reports the mean accuracy of the trial's units so far, and a median pruner
stops trials that trail after the first units (their run folders get status pruned). At the end: a table of
trials (CSV and markdown), Optuna's plots, an HTML page, and the best trial's keys as a preset.
"""

from __future__ import annotations

import fcntl
import html
import json
import math
import re
import shlex
import shutil
import textwrap
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import sqlalchemy.exc
import yaml
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from common import runs
from common.data.files import judged_half_names, load_dataset
from common.data.trainset import HOLDOUT_SET, prepare_train_set
from common.execution.pipeline import RunOptions, run_competition
from common.ground.atomic import atomic_path
from common.ground.config import CONFIG_DIR, FIELD_TYPES, Config, chosen_keys, coerce, read_yaml, user_layers
from common.ground.errors import UserError
from common.ground.spec import CompetitionSpec, get_spec
from common.runs.metrics import accuracy
from common.runs.units import UnitKey, UnitOutput
from common.training.models import check_model_keys

SEARCH_DIR = CONFIG_DIR / "search"
PRESETS_DIR = CONFIG_DIR / "presets"
OBJECTIVES = ("oof", "holdout")
DEFAULT_TRIALS = 20  # when neither --trials nor --timeout bounds the study
HEARTBEAT_SECONDS = 10  # Optuna's heartbeat: a RUNNING trial silent for GRACE_SECONDS died with its process
GRACE_SECONDS = 60
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
RANGE_KEYS = {"low", "high", "log", "step"}
UNSEARCHABLE = {"holdout": "every trial must hold out the same rows"}
STATE_ORDER = {"complete": 0, "pruned": 1, "running": 2, "waiting": 3, "fail": 4}
DIG_MNIST = "dig_mnist"  # Kannada's judged set (kannada/__init__.py, judged_sets)
DIG_PICK, DIG_REPORT = judged_half_names(DIG_MNIST)  # Kannada: one half of Dig-MNIST picks, the other reports


# ---------------------------------------------------------------------------
# The search space: configs/search/<name>.yaml
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One searched config key: a range (low, high, optional log or step) or a list of choices."""

    key: str
    low: Any = None
    high: Any = None
    log: bool = False
    step: Any = None
    choices: tuple = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.key, list(self.choices))
        if FIELD_TYPES[self.key] is int:
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    @property
    def extremes(self) -> tuple:
        """The values that bound what a trial may get: every choice, or both ends of the range."""
        return self.choices or (self.low, self.high)

    def record(self) -> dict[str, Any]:
        return {name: list(v) if name == "choices" else v for name, v in asdict(self).items() if v not in (None, ())}


@dataclass(frozen=True)
class Space:
    name: str
    path: Path
    params: tuple[Param, ...]
    fixed: dict[str, Any]  # config keys set for every trial (under the command line's key=value)


def space_file(competition: str, choice: str | None) -> Path:
    """--space NAME (configs/search/NAME.yaml) or a path; the competition's own space by default."""
    if choice and (choice.endswith((".yaml", ".yml")) or "/" in choice):
        if not Path(choice).is_file():
            raise UserError(f"--space {choice}: file not found")
        return Path(choice)
    path = SEARCH_DIR / f"{choice or competition}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SEARCH_DIR.glob("*.yaml"))) or "none"
        raise UserError(f"unknown search space {choice or competition!r}: expected one of {known}, or a YAML file")
    return path


def read_space(path: Path) -> Space:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise UserError(f"{path}: invalid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config key: {{low, high}} or {{choices}}")
    fixed = data.pop("fixed", None) or {}
    if not isinstance(fixed, dict):
        raise UserError(f"{path}: fixed: expected a mapping of config key: value")
    fixed = {str(key): coerce(str(key), value, f"{path}: fixed") for key, value in fixed.items()}
    params = tuple(parse_param(str(key), entry, str(path)) for key, entry in data.items())
    if not params:
        raise UserError(f"{path}: no config key to search")
    both = sorted(set(fixed) & {param.key for param in params})
    if both:
        raise UserError(f"{path}: {both[0]} is both fixed and searched")
    return Space(path.stem, path, params, fixed)


def parse_param(key: str, entry: Any, source: str) -> Param:
    if key not in FIELD_TYPES:
        raise UserError(f"{source}: unknown config key {key!r} (known: {', '.join(FIELD_TYPES)})")
    if key in UNSEARCHABLE:
        raise UserError(f"{source}: {key} cannot be searched: {UNSEARCHABLE[key]}")
    if isinstance(entry, dict) and set(entry) == {"choices"}:
        return parse_choices(key, entry["choices"], source)
    if isinstance(entry, dict) and {"low", "high"} <= set(entry) <= RANGE_KEYS:
        return parse_range(key, entry, source)
    raise UserError(f"{source}: {key}: expected {{low: A, high: B}} (log: true or step: S) or {{choices: [...]}}")


def parse_choices(key: str, choices: Any, source: str) -> Param:
    if not isinstance(choices, list) or not choices:
        raise UserError(f"{source}: {key}: choices must be a non-empty list")
    values = tuple(coerce(key, value, f"{source}: {key}") for value in choices)
    if len(set(values)) < len(values):
        raise UserError(f"{source}: {key}: a choice is repeated in {list(values)}")
    return Param(key, choices=values)


def parse_range(key: str, entry: dict[str, Any], source: str) -> Param:
    wanted = FIELD_TYPES[key]
    if wanted not in (int, float):
        raise UserError(f"{source}: {key} is a {wanted.__name__}: give choices, not a range")
    low, high = (coerce(key, entry[end], f"{source}: {key}.{end}") for end in ("low", "high"))
    log, step = entry.get("log", False), entry.get("step")
    step = None if step is None else coerce(key, step, f"{source}: {key}.step")
    if not isinstance(log, bool):
        raise UserError(f"{source}: {key}.log must be true or false, got {log!r}")
    if low >= high:
        raise UserError(f"{source}: {key}: low {low} must be below high {high}")
    if log and low <= 0:
        raise UserError(f"{source}: {key}: a log range needs low > 0, got {low}")
    if step is not None and (log or step <= 0):
        raise UserError(f"{source}: {key}: step must be positive and cannot go with log")
    return Param(key, low, high, log, step)


# ---------------------------------------------------------------------------
# What the command line asked for, checked before anything is written
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyRequest:
    """What `python run.py tune` was given; run.py parses it, this module checks it."""

    competition: str
    overrides: list[str] = field(default_factory=list)  # key=value under every trial's searched keys
    space: str | None = None  # a name in configs/search/ or a path; the competition's own by default
    study: str | None = None  # default: <competition>-<space>
    storage: str | None = None  # any database URL Optuna takes; default: SQLite in the study folder
    objective: str = "oof"
    dig_weight: float = 0.0  # kannada: score = (1 - W) * objective + W * accuracy on Dig-MNIST's picking half
    trials: int | None = None  # trials this command adds
    timeout: float | None = None  # minutes; no trial starts after it
    scheduler: str | None = None
    preset: str | None = None
    config: str | None = None
    data_dir: str | None = None
    out: Path | None = None
    argv: list[str] = field(default_factory=list)  # the command line, for the records


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
    def reporting(self) -> str | None:
        """The score no trial is picked on, which reports the best one honestly (None without a holdout)."""
        if self.request.objective == "holdout":
            return "oof"
        return "holdout" if self.base.holdout else None

    @property
    def score_column(self) -> str:
        weight, objective = self.request.dig_weight, self.request.objective
        if not weight:
            return f"score ({objective})"
        return f"score ({1 - weight:.3g} {objective} + {weight:.3g} {DIG_PICK})"

    @property
    def columns(self) -> dict[str, str]:
        """The trial's scores shown beside its score: user attribute -> column name."""
        objective = self.request.objective
        shown = {objective: objective, DIG_PICK: DIG_PICK, DIG_REPORT: f"{DIG_REPORT} (reports)"}
        shown = shown if self.request.dig_weight else {}
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
    layers = user_layers(request.preset, request.config, request.overrides)
    values = read_yaml(CONFIG_DIR / f"{competition}.yaml")
    for layer in [*layers[:-1], space.fixed, layers[-1]]:
        values |= layer
    return Config(**values)


def check_space(space: Space, base: Config, request: StudyRequest) -> None:
    """Every value a trial may get makes a valid config, and the model reads every searched shape key."""
    for param in space.params:
        for value in param.extremes:
            try:
                Config(**(base.to_dict() | {param.key: value}))
            except UserError as error:
                raise UserError(f"{space.path}: {param.key}={value!r}: {error}") from None
    chosen = chosen_keys(request.config, request.overrides) | set(space.fixed) | {p.key for p in space.params}
    models = next((param.choices for param in space.params if param.key == "model"), (base.model,))
    for model in models:
        check_model_keys(model, chosen)


def check_objective(spec: CompetitionSpec, base: Config, space: Space, request: StudyRequest) -> None:
    if request.objective not in OBJECTIVES:
        raise UserError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {request.objective!r}")
    if request.objective == "holdout" and not base.holdout:
        raise UserError("--objective holdout needs a holdout: set holdout=0.1 (or in the space's fixed keys)")
    if not 0 <= request.dig_weight <= 1:
        raise UserError(f"--dig-weight must be between 0 and 1, got {request.dig_weight}")
    if not request.dig_weight:
        return
    if DIG_MNIST not in spec.judged_sets:
        raise UserError(f"--dig-weight: {spec.name} has no Dig-MNIST set (kannada has)")
    searched = next((param.extremes for param in space.params if param.key == "extra_train"), ())
    if base.extra_train == DIG_MNIST or DIG_MNIST in searched:
        raise UserError("--dig-weight: the trials would train on Dig-MNIST (extra_train), so it would score nothing")


# ---------------------------------------------------------------------------
# The study: its folder, database, stale trials
# ---------------------------------------------------------------------------


def make_pruner() -> optuna.pruners.BasePruner:
    """Median pruning on the mean accuracy of a trial's units so far, from its second unit, once 2 trials ran."""
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def open_storage(setup: Setup) -> optuna.storages.RDBStorage:
    url = setup.request.storage or f"sqlite:///{setup.folder / 'study.db'}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
                heartbeat_stale_trial_callback=lambda _, trial: mark_trial_runs(setup, trial.number, "failed"),
            )
    except (ImportError, ValueError, sqlalchemy.exc.SQLAlchemyError) as error:
        raise UserError(f"--storage {url}: cannot open it ({str(error).splitlines()[0]})") from None


@contextmanager
def opened_study(setup: Setup) -> Iterator[optuna.Study]:
    """The study, new or continued; trials a killed study left running are failed first. Its folder is created
    once the checks passed, and removed again when this command created it and an error ends the study before
    any trial completed (a database that cannot be opened, a config the first trial refuses)."""
    storage = open_storage(setup) if setup.request.storage else None  # a bad URL: nothing written
    created = next((p for p in [*reversed(setup.folder.parents), setup.folder] if not p.exists()), None)
    setup.folder.mkdir(parents=True, exist_ok=True)
    study = None
    try:
        study = load_study(setup, storage or open_storage(setup))
        with study_lock(setup.folder) as alone:
            fail_stale_trials(study, setup, alone and not setup.request.storage)
            yield study
    except Exception:
        if created and not (study and study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))):
            shutil.rmtree(created, ignore_errors=True)
        raise


def load_study(setup: Setup, storage: optuna.storages.RDBStorage) -> optuna.Study:
    study = optuna.create_study(
        storage=storage, study_name=setup.name, direction="maximize", load_if_exists=True, pruner=make_pruner()
    )
    record, stored = setup_record(setup), study.user_attrs.get("setup")
    if stored is None:
        study.set_user_attr("setup", record)
    elif stored != record:
        raise UserError(
            f"study {setup.name} was started with another {setup_difference(stored, record)}: "
            "give the same settings to continue it, or --study NAME for a new study"
        )
    study.sampler = optuna.samplers.TPESampler(seed=setup.base.seed + len(study.trials))  # no repeat on resume
    return study


def setup_record(setup: Setup) -> dict[str, Any]:
    """What makes trials comparable: kept in the study, refused when a continuing command differs."""
    record = {
        "competition": setup.spec.name,
        "space": [param.record() for param in setup.space.params],
        "objective": setup.request.objective,
        "dig_weight": setup.request.dig_weight,
        "config": setup.base.to_dict(),
    }
    return json.loads(json.dumps(record))  # as the study stores it (tuples as lists), so the two compare


def setup_difference(stored: dict[str, Any], record: dict[str, Any]) -> str:
    if stored.get("config") != record["config"]:
        key = next(k for k in record["config"] if stored.get("config", {}).get(k) != record["config"][k])
        return f"config ({key}: {stored.get('config', {}).get(key)!r} then, {record['config'][key]!r} now)"
    key = next(k for k in record if stored.get(k) != record[k])
    return "search space" if key == "space" else f"{key} ({stored.get(key)!r} then, {record[key]!r} now)"


@contextmanager
def study_lock(folder: Path) -> Iterator[bool]:
    """Held (shared) while this process runs the study; yields True when no other process holds it, so that
    every trial still RUNNING in the study's own database was left by a killed process."""
    with open(folder / "study.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
        fcntl.flock(handle, fcntl.LOCK_SH)
        yield alone


def fail_stale_trials(study: optuna.Study, setup: Setup, alone: bool) -> None:
    """Trials a killed study left RUNNING become FAIL, and their run folders failed: all of them when nobody
    else runs this study's own database; otherwise those whose heartbeat stopped (a shared --storage)."""
    if alone:
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study.tell(trial.number, state=TrialState.FAIL)
            mark_trial_runs(setup, trial.number, "failed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # calls the storage's callback: mark_trial_runs


def mark_trial_runs(setup: Setup, number: int, status: str) -> None:
    """The status (pruned, failed) of a trial's unfinished run folder, found by its label."""
    for run in runs.list_runs(setup.root, setup.spec.name):
        if run.label == setup.label(number) and not run.finished:
            runs.update_record(run.folder, status=status)


# ---------------------------------------------------------------------------
# Trials: each an ordinary run
# ---------------------------------------------------------------------------


class UnitReporter:
    """RunOptions.on_unit for a trial: reports the mean accuracy of its units so far; prunes when told to."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.scores: list[float] = []

    def __call__(self, folder: Path, key: UnitKey, output: UnitOutput) -> None:
        folds = runs.load_run(folder).folds()
        labels = folds["label"].to_numpy()[folds["fold"].to_numpy() == key[0]]
        self.scores.append(accuracy(labels, output.probabilities["valid"]))
        if len(self.scores) == 1:
            self.trial.set_user_attr("run_id", folder.name)
        self.trial.report(float(np.mean(self.scores)), step=len(self.scores) - 1)
        if self.trial.should_prune():
            mean = float(np.mean(self.scores))
            raise optuna.TrialPruned(f"mean unit accuracy {mean:.5f} after {len(self.scores)} unit(s)")


def objective(setup: Setup, trial: optuna.Trial) -> float:
    params = {param.key: param.suggest(trial) for param in setup.space.params}
    r = setup.request
    options = RunOptions(r.data_dir, setup.root, scheduler=r.scheduler, on_unit=UnitReporter(trial))
    try:
        folder = run_competition(
            setup.spec, replace(setup.base, **params), setup.label(trial.number), setup.trial_argv(params), options
        )
    except optuna.TrialPruned:
        mark_trial_runs(setup, trial.number, "pruned")
        raise
    except BaseException:
        mark_trial_runs(setup, trial.number, "failed")
        raise
    scores = trial_scores(setup, runs.load_run(folder).metrics())
    for name, value in {**scores, "run_id": folder.name}.items():
        trial.set_user_attr(name, value)
    return scores["score"]


def trial_scores(setup: Setup, metrics: dict[str, Any]) -> dict[str, float]:
    extra = metrics.get("extra_accuracy", {})
    found = {"oof": metrics["oof_accuracy"], "holdout": extra.get(HOLDOUT_SET)}
    found |= {name: extra.get(name) for name in (DIG_PICK, DIG_REPORT)}  # picks; only reports
    scores = {name: float(value) for name, value in found.items() if value is not None}
    weight = setup.request.dig_weight
    scores["score"] = (1 - weight) * scores[setup.request.objective] + weight * scores.get(DIG_PICK, 0.0)
    return scores


def run_trials(study: optuna.Study, setup: Setup) -> None:
    """--trials more trials (or until --timeout), with a progress bar over trials."""
    r = setup.request
    n_trials = r.trials if r.trials or r.timeout else DEFAULT_TRIALS
    with tqdm(total=n_trials, desc=f"study {setup.name}", unit="trial") as bar:

        def done(_: optuna.Study, trial: FrozenTrial) -> None:
            bar.update(1)
            bar.write(trial_line(setup, trial))

        study.optimize(
            lambda trial: objective(setup, trial),
            n_trials=n_trials,
            timeout=r.timeout * 60 if r.timeout else None,
            callbacks=[done],
        )


def trial_line(setup: Setup, trial: FrozenTrial) -> str:
    head = f"trial {trial.number} {trial.state.name.lower()}"
    if trial.state != TrialState.COMPLETE:
        return f"{head}: run {trial.user_attrs.get('run_id', '-')}"
    shown = ", ".join(f"{column} {trial.user_attrs[name]:.5f}" for name, column in setup.columns.items())
    return f"{head}: {setup.score_column} {trial.value:.5f}{f', {shown}' if shown else ''}, run {trial.user_attrs['run_id']}"


# ---------------------------------------------------------------------------
# What a study leaves: table, plots, page, preset
# ---------------------------------------------------------------------------


def trials_table(study: optuna.Study, setup: Setup) -> pd.DataFrame:
    """One row per trial, best first: complete trials by score, then pruned, running and failed ones."""
    run_ids = {run.label: run.run_id for run in runs.list_runs(setup.root, setup.spec.name)}
    rows = []
    for trial in study.get_trials(deepcopy=False):
        complete = trial.state == TrialState.COMPLETE
        row = {"trial": trial.number, "state": trial.state.name.lower()}
        row[setup.score_column] = trial.value if complete else math.nan
        row |= {column: trial.user_attrs.get(name, math.nan) for name, column in setup.columns.items()}
        row |= {param.key: trial.params.get(param.key) for param in setup.space.params}
        row["run_id"] = trial.user_attrs.get("run_id") or run_ids.get(setup.label(trial.number), "")
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["_order"] = table["state"].map(STATE_ORDER)
    table = table.sort_values(["_order", setup.score_column, "trial"], ascending=[True, False, True], kind="stable")
    return table.drop(columns="_order").reset_index(drop=True)


@dataclass(frozen=True)
class SelectionGap:
    """How much the best trial's picked score flatters it, against the score nobody picked on."""

    trial: int
    picked: float
    reported: float
    mean_gap: float
    n: int

    def sentence(self, objective: str, reporting: str) -> str:
        return (
            f"The best of {self.n} complete trials flatters by selection: trial {self.trial} was picked on "
            f"{objective} {self.picked:.5f}; its {reporting}, which no trial was picked on, is {self.reported:.5f} "
            f"(gap {self.picked - self.reported:+.5f}, against a mean gap of {self.mean_gap:+.5f} over all "
            f"{self.n} complete trials). Expect the {reporting}, not the {objective}."
        )


def selection_gap(study: optuna.Study, setup: Setup) -> SelectionGap | None:
    objective, reporting = setup.request.objective, setup.reporting
    if not reporting:
        return None
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if reporting in t.user_attrs]
    if not done:
        return None
    best = max(done, key=lambda trial: trial.value)
    gaps = [trial.user_attrs[objective] - trial.user_attrs[reporting] for trial in done]
    picked, reported = best.user_attrs[objective], best.user_attrs[reporting]
    return SelectionGap(best.number, picked, reported, float(np.mean(gaps)), len(done))


def shown_table(table: pd.DataFrame, setup: Setup) -> pd.DataFrame:
    """Scores to 5 decimals, parameters to 4 significant digits, '-' where there is nothing."""
    scores = {setup.score_column, *setup.columns.values()}

    def cell(column: str, value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
            return "-"
        if isinstance(value, float):
            return f"{value:.5f}" if column in scores else f"{value:.4g}"
        return str(value)

    return pd.DataFrame({column: [cell(column, v) for v in table[column]] for column in table.columns})


def summary(study: optuna.Study, setup: Setup) -> str:
    states = pd.Series([t.state.name.lower() for t in study.get_trials(deepcopy=False)]).value_counts()
    counts = ", ".join(f"{n} {state}" for state, n in states.items()) or "none yet"
    honest = (
        f"{setup.reporting} reports (no trial is picked on it)"
        if setup.reporting
        else "nothing reports apart from the objective (set holdout=0.1 to see how much the best trial flatters)"
    )
    return f"`{setup.command()}`: {len(study.trials)} trials ({counts}); the study picks on {setup.score_column}, {honest}."


def markdown(study: optuna.Study, setup: Setup, table: pd.DataFrame, gap: SelectionGap | None) -> str:
    lines = [f"# Study {setup.name} ({setup.spec.name})", "", summary(study, setup), ""]
    if not table.empty:
        lines += [shown_table(table, setup).to_markdown(index=False, disable_numparse=True), ""]
    if gap:
        lines += [gap.sentence(setup.request.objective, setup.reporting), ""]
    return "\n".join(lines)


def save_plots(study: optuna.Study, setup: Setup) -> list[Path]:
    """Optuna's matplotlib plots as PNG: history; slices once a trial completed; importances from 2 on."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from optuna.visualization import matplotlib as plots

    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    wanted = {"history": plots.plot_optimization_history} if study.trials else {}
    wanted |= {"slices": plots.plot_slice} if complete else {}
    wanted |= {"importances": plots.plot_param_importances} if complete >= 2 and len(setup.space.params) >= 2 else {}
    saved = []
    for name, draw in wanted.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)  # a history with no complete trial has no legend
            figure = np.ravel(draw(study, target_name=setup.score_column))[0].figure
        path = setup.folder / f"{name}.png"
        with atomic_path(path, ".png") as temporary:
            figure.savefig(temporary, dpi=100, bbox_inches="tight")
        plt.close(figure)
        saved.append(path)
    return saved


def write_page(study: optuna.Study, setup: Setup, table: pd.DataFrame, gap: SelectionGap | None, images) -> Path:
    """study.html beside the study: the summary, the table and the plots."""
    parts = [
        f"<h1>Study {html.escape(setup.name)} ({setup.spec.name})</h1>",
        f"<p>{html.escape(summary(study, setup))}</p>",
    ]
    parts += [shown_table(table, setup).to_html(index=False)] if not table.empty else []
    parts += [f"<p>{html.escape(gap.sentence(setup.request.objective, setup.reporting))}</p>"] if gap else []
    parts += [f'<h2>{path.stem}</h2><img src="{path.name}" alt="{path.stem}">' for path in images]
    style = "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:2px 6px}"
    page = (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>Study {html.escape(setup.name)}</title>'
        f"<style>{style}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
    path = setup.folder / "study.html"
    runs.atomic_write_bytes(path, page.encode())
    return path


def write_preset(study: optuna.Study, setup: Setup, gap: SelectionGap | None) -> list[Path]:
    """The best trial's keys that differ from configs/<competition>.yaml, ready for --preset tune-<study>."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    best = max(complete, key=lambda trial: trial.value)
    defaults = Config(**read_yaml(CONFIG_DIR / f"{setup.spec.name}.yaml")).to_dict()
    chosen = {k: v for k, v in (setup.base.to_dict() | best.params).items() if defaults[k] != v and k != "threads"}
    text = preset_header(setup, best, len(complete), gap, chosen) + yaml.safe_dump(chosen, sort_keys=False)
    paths = [setup.folder / f"tune-{setup.name}.yaml", PRESETS_DIR / f"tune-{setup.name}.yaml"]
    for path in paths:
        runs.atomic_write_bytes(path, text.encode())
    return paths


def preset_header(setup: Setup, best: FrozenTrial, n: int, gap: SelectionGap | None, chosen: dict) -> str:
    """The preset's comment: what the trial measured, the command that found it, how to use it."""
    measured = "".join(f", {column} {best.user_attrs[name]:.5f}" for name, column in setup.columns.items())
    honest = (
        gap.sentence(setup.request.objective, setup.reporting)
        if gap
        else "No holdout reported it: the best of several trials flatters by selection."
    )
    lines = [
        f"The best of {n} complete trials of study {setup.name}: trial {best.number}, run {best.user_attrs['run_id']}.",
        f"Measured: {setup.score_column} {best.value:.5f}{measured}.",
        honest,
        f"Written by: {setup.command()}",
        f"The keys that differ from configs/{setup.spec.name}.yaml; use: python run.py {setup.spec.name} "
        f"--preset tune-{setup.name}",
    ]
    if chosen.get("holdout"):
        lines.append("holdout keeps rows of train.csv out of training: drop it for a final run on every row.")
    lines[2:3] = textwrap.wrap(honest, 110)  # the commands stay whole, one line each
    return "".join(f"# {line}\n" for line in lines)


def write_outputs(study: optuna.Study, setup: Setup) -> Path:
    """The table (printed, trials.csv, trials.md), plots, study.html and the preset; returns the page."""
    table, gap = trials_table(study, setup), selection_gap(study, setup)
    text = markdown(study, setup, table, gap)
    runs.atomic_write_bytes(setup.folder / "trials.csv", table.to_csv(index=False).encode())
    runs.atomic_write_bytes(setup.folder / "trials.md", text.encode())
    images = save_plots(study, setup)
    page = write_page(study, setup, table, gap, images)
    presets = write_preset(study, setup, gap)
    print(f"\n{text}\nstudy folder: {setup.folder}\npage:         {page}")
    if presets:
        print(f"preset:       {presets[1]} (python run.py {setup.spec.name} --preset {presets[1].stem})")
    return page


def run_study(request: StudyRequest) -> Path:
    """Checks everything, opens (or continues) the study, runs its trials and writes what it leaves."""
    setup = prepare(request)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with opened_study(setup) as study:
        try:
            run_trials(study, setup)
        except KeyboardInterrupt:
            write_outputs(study, setup)  # the study so far; the same command continues it
            raise
        return write_outputs(study, setup)
