"""A hyper-parameter study in one command (python run.py tune COMPETITION), built on Optuna.

The search space is data (configs/search/<name>.yaml, `space`). Every trial is an ordinary run of the pipeline,
in its own run folder labelled tune-<study>-t<N>, so compare, blend, report and submit work on trials unchanged
(`trials`). The study lives in an Optuna database (by default study.db in submissions/<competition>/tune/<study>/)
and the same command continues it (`storage`). Each saved unit reports the mean accuracy of the trial's units
so far, and a median pruner stops trials that trail after the first units (their run folders get status
pruned). At the end: a table of trials (CSV and markdown), Optuna's plots, an HTML page (`report`), and the best
trial's keys as a preset in the study folder, and in configs/presets/ with --save-preset (`preset`).
"""

from __future__ import annotations

from pathlib import Path

import optuna

from common import runs
from common.commands.tune.preset import usage, write_preset
from common.commands.tune.report import markdown, save_plots, selection_gap, trials_table, write_page
from common.commands.tune.setup import Setup, StudyRequest, prepare
from common.commands.tune.storage import opened_study
from common.commands.tune.trials import run_trials
from common.ground.errors import stopped
from common.training.signals import signals_stop_the_run

__all__ = ["StudyRequest", "run_study"]


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
        print(f"preset:       {presets[-1]} ({usage(setup)})")
    return page


def run_study(request: StudyRequest) -> Path:
    """Checks everything, opens (or continues) the study, runs its trials and writes what it leaves."""
    setup = prepare(request)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with opened_study(setup) as study, signals_stop_the_run():  # SIGTERM between trials too, not only inside one
        try:
            run_trials(study, setup)
        except KeyboardInterrupt as stop:  # Ctrl-C and SIGTERM (Terminated): run.py prints the stop's one line
            write_outputs(study, setup)  # the study so far; the same command continues it
            raise stopped(stop, f"continue the study ({setup.folder}) with {setup.command()}") from None
        return write_outputs(study, setup)
