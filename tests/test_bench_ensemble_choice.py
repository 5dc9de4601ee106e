"""bench/ensemble_choice.py: a run's fold models, full-data models and both, scored on the same rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bench.ensemble_choice as choice
from common import runs
from common.data.files import load_dataset
from common.data.trainset import HOLDOUT_SET
from common.execution.pipeline import RunOptions, run_competition
from common.ground.config_files import load_config
from common.ground.spec import get_spec
from common.runs.aligned import shared_sets
from common.runs.metrics import accuracy
from common.runs.units import load_unit

pytestmark = pytest.mark.usefixtures("figures_left_out")  # no report is tested here

DIGITS = get_spec("digits")
TINY = ["epochs=1", "model=mlp", "max_train_rows=200", "holdout=0.1", "folds=2", "full_models=1"]


def trained(overrides: list[str], digits_dir, root):
    cfg, label = load_config("digits", "smoke", overrides=overrides)
    return runs.load_run(run_competition(DIGITS, cfg, label, ["digits", *overrides], RunOptions(str(digits_dir), root)))


@pytest.mark.slow  # trains a tiny run of three models
def test_each_group_is_scored_on_every_set_and_the_choice_is_made_on_the_holdout(digits_dir, tmp_path):
    run = trained(TINY, digits_dir, tmp_path / "runs")
    out = tmp_path / "results"
    argv = ["digits", "--out", str(tmp_path / "runs"), "--data-dir", str(digits_dir), "--results", str(out)]
    assert choice.main(argv) == 0
    document = json.loads(next(out.glob("ensemble-digits-*.json")).read_text())
    assert document["units"] == ["f0-s0", "f1-s0", "all-s0"] and document["picking_set"] == HOLDOUT_SET
    by_set = {row["set"]: row for row in document["rows"]}
    assert set(by_set) == {HOLDOUT_SET, "sklearn_test"}

    # Each figure is the accuracy of that group's mean, recomputed here from the unit files.
    data = shared_sets([run], load_dataset(DIGITS, str(digits_dir)))
    labels = data.extras[HOLDOUT_SET].labels
    unit = {key.name: load_unit(run.folder, key).probabilities[HOLDOUT_SET] for key in run.unit_keys()}
    folds = np.mean([unit["f0-s0"], unit["f1-s0"]], axis=0)
    assert by_set[HOLDOUT_SET]["folds"] == round(accuracy(labels, folds), 5)
    assert by_set[HOLDOUT_SET]["full"] == round(accuracy(labels, unit["all-s0"]), 5)
    assert by_set[HOLDOUT_SET]["all"] == round(accuracy(labels, np.mean(list(unit.values()), axis=0)), 5)
    holdout = by_set[HOLDOUT_SET]
    assert document["picked"] == max(runs.ENSEMBLE_GROUPS, key=lambda group: holdout[group])
    test = holdout["full_vs_folds"]
    full_right, folds_right = unit["all-s0"].argmax(1) == labels, folds.argmax(1) == labels
    assert (test["only_b"], test["only_a"]) == ((full_right & ~folds_right).sum(), (folds_right & ~full_right).sum())
    assert 0 <= test["p_value"] <= 1
    assert "picked on train_holdout" in next(out.glob("ensemble-digits-*.md")).read_text()


@pytest.mark.slow  # trains a tiny run of two models
def test_a_run_without_full_data_models_is_one_line(digits_dir, tmp_path, capsys):
    trained(["epochs=1", "model=mlp", "max_train_rows=200", "folds=2"], digits_dir, tmp_path / "runs")
    argv = ["digits", "--out", str(tmp_path / "runs"), "--data-dir", str(digits_dir), "--results", str(tmp_path)]
    capsys.readouterr()  # what the training printed
    assert choice.main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert "needs both fold models and full-data models" in error and "\n" not in error


@pytest.mark.slow  # trains a tiny run of four models
def test_a_run_of_two_full_data_models_also_scores_the_first_alone(digits_dir, tmp_path):
    run = trained([*TINY[:-1], "full_models=2"], digits_dir, tmp_path / "runs")
    out = tmp_path / "results"
    argv = ["digits", "--out", str(tmp_path / "runs"), "--data-dir", str(digits_dir), "--results", str(out)]
    assert choice.main(argv) == 0
    document = json.loads(next(out.glob("ensemble-digits-*.json")).read_text())
    assert document["groups"] == [*runs.ENSEMBLE_GROUPS, choice.FIRST_FULL]
    holdout = next(row for row in document["rows"] if row["set"] == HOLDOUT_SET)
    labels = shared_sets([run], load_dataset(DIGITS, str(digits_dir))).extras[HOLDOUT_SET].labels
    first = load_unit(run.folder, runs.UnitKey(None, 0)).probabilities[HOLDOUT_SET]
    assert holdout[choice.FIRST_FULL] == round(accuracy(labels, first), 5)
    assert {"full1_vs_full", "full1_vs_folds", "full1_vs_all"} <= set(holdout)
