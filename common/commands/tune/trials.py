"""A study's trials: each an ordinary run of the pipeline, reporting its units' mean accuracy to Optuna's pruner
as they finish, scored from its metrics when it ends."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from common import runs
from common.commands.tune.setup import Setup
from common.commands.tune.storage import mark_trial_runs
from common.data.trainset import HOLDOUT_SET
from common.execution.pipeline import RunOptions, run_competition
from common.ground.errors import UserError
from common.runs.metrics import accuracy
from common.runs.units import UnitKey, UnitOutput

DEFAULT_TRIALS = 20  # when neither --trials nor --timeout bounds the study


class UnitReporter:
    """RunOptions.on_unit for a trial: reports the mean accuracy of its units so far; prunes when told to."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.scores: list[float] = []

    def __call__(self, folder: Path, key: UnitKey, output: UnitOutput) -> None:
        if not key.holds_out:  # a full-data model holds no rows out to be scored on
            return
        folds = runs.load_run(folder).folds()
        labels = folds["label"].to_numpy()[folds["fold"].to_numpy() == key.fold]
        self.scores.append(accuracy(labels, output.probabilities[runs.VALID]))
        if len(self.scores) == 1:
            self.trial.set_user_attr("run_id", folder.name)
        self.trial.report(float(np.mean(self.scores)), step=len(self.scores) - 1)
        if self.trial.should_prune():
            mean = float(np.mean(self.scores))
            raise optuna.TrialPruned(f"mean unit accuracy {mean:.5f} after {len(self.scores)} unit(s)")


def objective(setup: Setup, trial: optuna.Trial) -> float:
    params = {param.key: param.suggest(trial) for param in setup.space.params}
    r = setup.request
    options = RunOptions(
        r.data_dir, setup.root, scheduler=r.scheduler, kind=runs.RunKind.TRIAL, on_unit=UnitReporter(trial)
    )
    try:
        folder = run_competition(
            setup.spec, replace(setup.base, **params), setup.label(trial.number), setup.trial_argv(params), options
        )
    except optuna.TrialPruned:
        mark_trial_runs(setup, trial.number, runs.RunStatus.PRUNED)
        raise
    except BaseException:
        mark_trial_runs(setup, trial.number, runs.RunStatus.FAILED)
        raise
    scores = trial_scores(setup, runs.load_run(folder).metrics())
    for name, value in {**scores, "run_id": folder.name}.items():
        trial.set_user_attr(name, value)
    return scores["score"]


def trial_scores(setup: Setup, metrics: runs.Metrics) -> dict[str, float]:
    """The trial's objective (Setup.picked), its reporting scores and the judged set's halves where the study uses
    them (--judged-weight weighs the picking half into the score; the reporting half only shows)."""
    extra = metrics.extra_accuracy
    found = {"oof": metrics.oof_accuracy, "holdout": extra.get(HOLDOUT_SET)}
    halves = setup.judged_halves or ()
    found |= {name: extra.get(name) for name in (*halves, setup.picked, setup.reporting or "") if name in extra}
    scores = {name: float(value) for name, value in found.items() if value is not None}
    weight = setup.request.judged_weight
    picked = scores.get(halves[0], 0.0) if halves else 0.0
    if setup.picked not in scores:  # folds 0 gives no OOF; no holdout key, no holdout score
        raise UserError(f"tune --objective {setup.request.objective}: the trial's run has no {setup.picked} score")
    scores["score"] = (1 - weight) * scores[setup.picked] + weight * picked
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
