"""common/commands/tune/: `python run.py tune` as a user runs it, on the offline digits competition with a tiny
search space (2 folds of 1 epoch of the MLP on 200 rows), in this process (TensorFlow loads once)."""

from __future__ import annotations

import shlex
import sqlite3
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

import run
from common import runs
from common.commands import tune
from common.commands.compare import compare_table
from common.commands.tune import preset, setup, storage
from common.ground.config_files import read_yaml

TINY = """# a tiny space for the tests
fixed: {model: mlp, max_train_rows: 200, epochs: 1, folds: 2, holdout: 0.2, save_models: false}
lr: {low: 0.001, high: 0.02, log: true}
dropout: {low: 0.0, high: 0.4}
"""
PNG = b"\x89PNG\r\n\x1a\n"


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def tune_args(space: Path, out: Path, data: Path, *more: str) -> list[str]:
    return ["tune", "digits", "--space", str(space), "--out", str(out), "--data-dir", str(data), *more]


def states(folder: Path, name: str) -> list[TrialState]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{folder / 'study.db'}")
    return [trial.state for trial in study.trials]


def leave_running_trial(storage: str, name: str, out: Path, label_of) -> Path:
    """What a study killed mid-trial leaves: a RUNNING trial and its unfinished run folder."""
    trial = optuna.load_study(study_name=name, storage=storage).ask()
    folder = runs.create_run_dir(out, "digits", label_of(trial.number))
    runs.start_run(folder, {"folds": 2}, ["digits"], label=label_of(trial.number), kind=runs.RunKind.TRIAL)
    return folder


@pytest.fixture(scope="module")
def study(digits_dir, tmp_path_factory):
    """1 trial; then a trial left running as by a kill; then the same command with 1 more trial."""
    base = tmp_path_factory.mktemp("tune")
    space, out = base / "tiny.yaml", base / "runs"
    space.write_text(TINY)
    folder = out / "digits" / "tune" / "digits-tiny"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(preset, "PRESETS_DIR", base / "presets")
        patch.setattr(storage, "make_pruner", optuna.pruners.NopPruner)  # every trial completes: a known table
        assert run.main(tune_args(space, out, digits_dir, "--trials", "1")) == 0
        assert states(folder, "digits-tiny") == [TrialState.COMPLETE]
        saved_at_first = (base / "presets").exists()  # configs/presets/ only when asked
        stale = leave_running_trial(
            f"sqlite:///{folder / 'study.db'}", "digits-tiny", out, lambda n: f"tune-digits-tiny-t{n}"
        )
        assert run.main(tune_args(space, out, digits_dir, "--trials", "1", "--save-preset")) == 0
    return {
        "folder": folder,
        "out": out,
        "space": space,
        "stale": stale,
        "presets": base / "presets",
        "saved_at_first": saved_at_first,
    }


@pytest.mark.slow  # trains tiny trials: tens of seconds
def test_a_stopped_study_continues_in_the_same_database(study):
    assert states(study["folder"], "digits-tiny") == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    trials = {run.label: run for run in runs.list_runs(study["out"], "digits") if run.label.startswith("tune-")}
    for number in (0, 2):
        trial = trials[f"tune-digits-tiny-t{number}"]
        assert trial.finished and trial.cfg.holdout == 0.2 and trial.cfg.epochs == 1
        assert trial.record.command.startswith("python run.py digits ") and " lr=" in trial.record.command


@pytest.mark.slow  # trains tiny trials: tens of seconds
def test_a_trial_left_running_is_failed_on_resume(study):
    assert runs.load_run(study["stale"]).status is runs.RunStatus.FAILED
    table = compare_table(study["out"], "digits")
    assert table.loc[table["run_id"] == study["stale"].name, "status"].item() == "failed"
    assert (table["status"] == "finished").sum() == 2


@pytest.mark.slow  # trains tiny trials: tens of seconds
def test_table_plots_page_and_preset(study):
    folder = study["folder"]
    table = pd.read_csv(folder / "trials.csv")
    # The trials submit their fold models, judged on the holdout: they are picked on it, and OOF reports.
    score = "score (submitted models: holdout)"
    assert list(table.columns) == ["trial", "state", score, "oof (reports)", "lr", "dropout", "run_id"]
    assert table["state"].tolist() == ["complete"] * 2 + ["fail"] and len(table) == 3
    scores = table[score].iloc[:2]
    assert scores.is_monotonic_decreasing and table["run_id"].iloc[2] == study["stale"].name
    markdown = (folder / "trials.md").read_text()
    assert "| trial" in markdown and "flatters by selection" in markdown and "mean gap" in markdown
    page = (folder / "study.html").read_text()
    for name in ("history", "slices", "importances"):
        assert (folder / f"{name}.png").read_bytes().startswith(PNG)
        assert f'src="{name}.png"' in page
    assert "`" not in page and "<code>python run.py tune digits" in page  # the command as code, not backticks
    preset = folder / "tune-digits-tiny.yaml"
    assert not study["saved_at_first"]  # the first command had no --save-preset
    assert preset.read_bytes() == (study["presets"] / "tune-digits-tiny.yaml").read_bytes()
    assert "--preset tune-digits-tiny" in preset.read_text()
    best = table.iloc[0]
    values = read_yaml(preset)  # typed like any preset
    assert values["lr"] == pytest.approx(best["lr"]) and values["dropout"] == pytest.approx(best["dropout"])
    assert values["holdout"] == 0.2 and "threads" not in values
    assert f"trial {best['trial']}, run {best['run_id']}" in preset.read_text()


@pytest.mark.slow  # trains tiny trials: tens of seconds
def test_a_changed_setup_is_refused_without_touching_the_study(study, digits_dir, capsys):
    args = tune_args(study["space"], study["out"], digits_dir, "--trials", "1", "epochs=2")
    assert run.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "was started with another config (epochs: 1 then, 2 now)" in err
    assert len(states(study["folder"], "digits-tiny")) == 3


@pytest.mark.slow  # trains tiny trials: tens of seconds
def test_pruned_trials_show_as_pruned(digits_dir, tmp_path, monkeypatch):
    space, out = tmp_path / "tiny.yaml", tmp_path / "runs"
    space.write_text(TINY)
    monkeypatch.setattr(preset, "PRESETS_DIR", tmp_path / "presets")
    monkeypatch.setattr(storage, "make_pruner", AlwaysPrune)
    assert run.main(tune_args(space, out, digits_dir, "--trials", "2", "--study", "pruned")) == 0
    folder = out / "digits" / "tune" / "pruned"
    assert states(folder, "pruned") == [TrialState.PRUNED] * 2
    table = compare_table(out, "digits")
    assert table["status"].tolist() == ["pruned", "pruned"]
    for run_id in table["run_id"]:
        assert len(list((out / "digits" / run_id / "units").iterdir())) == 1  # stopped after its first unit
    assert (folder / "history.png").is_file() and not (tmp_path / "presets").exists()


def test_a_dead_trial_of_a_shared_storage_fails_when_its_heartbeat_is_stale(digits_dir, tmp_path):
    space, db = tmp_path / "tiny.yaml", tmp_path / "shared.db"
    space.write_text(TINY)
    request = tune.StudyRequest("digits", space=str(space), storage=f"sqlite:///{db}", out=tmp_path / "runs")
    checked = setup.prepare(request)
    with storage.opened_study(checked):
        pass
    folder = leave_running_trial(request.storage, checked.name, checked.root, checked.label)
    with sqlite3.connect(db) as connection:  # its process died an hour ago, after one heartbeat
        connection.execute(
            "INSERT INTO trial_heartbeats (trial_id, heartbeat) SELECT trial_id, datetime('now', '-1 hour') "
            "FROM trials WHERE state = 'RUNNING'"
        )
    with storage.opened_study(checked) as study:
        assert [trial.state for trial in study.trials] == [TrialState.FAIL]
    assert runs.load_run(folder).status is runs.RunStatus.FAILED


def test_sigterm_between_trials_writes_the_study_so_far_and_says_how_to_continue(digits_dir, tmp_path, capsys):
    """Outside a trial (no run's own handler then), SIGTERM still stops the study cleanly: exit status 143, the
    study's files written, and one line saying that the same command, in full, continues it."""
    import os
    import signal
    import time

    space, out = tmp_path / "tiny.yaml", tmp_path / "runs"
    space.write_text(TINY)

    def terminated_between_trials(study, setup):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises here, at once
        pytest.fail("SIGTERM did not stop the study")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tune, "run_trials", terminated_between_trials)
        assert run.main(tune_args(space, out, digits_dir, "--trials", "1")) == 143
    err = capsys.readouterr().err
    folder = out / "digits" / "tune" / "digits-tiny"
    command = shlex.join(["python", "run.py", *tune_args(space, out, digits_dir, "--trials", "1")])
    stops = [line for line in err.splitlines() if "terminated" in line or "interrupted" in line]
    assert stops == [f"terminated: continue the study ({folder}) with {command}"]
    assert (folder / "trials.md").is_file() and (folder / "study.db").is_file()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the previous handler is back
