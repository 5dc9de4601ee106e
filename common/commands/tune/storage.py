"""Where a study lives: its Optuna database (SQLite in the study folder, or any --storage URL), the lock that
tells whether another process runs it, and the trials a killed study left running."""

from __future__ import annotations

import fcntl
import json
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from common import runs
from common.commands.tune.setup import Setup
from common.ground.errors import UserError

HEARTBEAT_SECONDS = 10  # Optuna's heartbeat: a RUNNING trial silent for GRACE_SECONDS died with its process
GRACE_SECONDS = 60
STUDY_DB = "study.db"
STUDY_LOCK = "study.lock"


def make_pruner() -> optuna.pruners.BasePruner:
    """Median pruning on the mean accuracy of a trial's units so far, from its second unit, once 2 trials ran."""
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def open_storage(setup: Setup) -> optuna.storages.RDBStorage:
    url = setup.request.storage or f"sqlite:///{setup.folder / STUDY_DB}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
                heartbeat_stale_trial_callback=lambda _, trial: mark_trial_runs(
                    setup, trial.number, runs.RunStatus.FAILED
                ),
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
    if stored is not None and "dig_weight" in stored:  # studies started before the weight took the judged set's name
        stored = {("judged_weight" if key == "dig_weight" else key): value for key, value in stored.items()}
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
        "judged_weight": setup.request.judged_weight,
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
    with open(folder / STUDY_LOCK, "a") as handle:
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
            mark_trial_runs(setup, trial.number, runs.RunStatus.FAILED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # calls the storage's callback: mark_trial_runs


def mark_trial_runs(setup: Setup, number: int, status: runs.RunStatus) -> None:
    """The status (pruned, failed) of a trial's unfinished run folder, found by its label."""
    for run in runs.list_runs(setup.root, setup.spec.name):
        if run.label == setup.label(number) and not run.finished:
            runs.mark_stopped(run.folder, status)
