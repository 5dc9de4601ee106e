"""bench/speed.py: the model alone against a whole run trained as a user runs it (tiny digits run)."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from bench.speed import main

TINY = ["model=mlp", "epochs=2", "max_train_rows=200", "folds=2", "tta=1"]


@pytest.fixture(scope="module")
def measured(tmp_path_factory, digits_dir) -> tuple[dict, str]:
    """One `--train --paired` measurement (a whole tiny run in a subprocess, then one unit taking turns with the
    model alone): its result document and what it printed. Trained once for this file."""
    base = tmp_path_factory.mktemp("speed")
    runs, out = base / "runs", base / "results"
    # The overrides are the bench's own wherever written: they set the model-alone rounds' model too.
    argv = ["digits", "--train", "--paired", *TINY, "--preset", "smoke", "--runs", str(runs), "--out", str(out)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([*argv, "--data-dir", str(digits_dir), "--steps", "2", "--rounds", "1"]) == 0
    (path,) = out.glob("speed-digits-*.json")
    return json.loads(path.read_text()), printed.getvalue()


@pytest.mark.slow  # trains a whole tiny run in a subprocess
def test_a_trained_run_is_measured_against_the_model_alone(measured):
    document, printed = measured
    assert document["rates"]["model_alone"] > 0 and document["rates"]["model_in_trainer"] > 0
    assert [unit["unit"] for unit in document["units"]] == ["f0-s0", "f1-s0"]
    assert all(unit["images_trained"] > 0 and unit["tta_seconds"] > 0 for unit in document["units"])
    run = document["run"]
    assert run["wall_seconds"] >= run["wall_seconds_inside"] > 0 and run["pure_training_seconds"] > 0
    assert 0 < run["oof_accuracy"] <= 1 and "cpu_flags" in document["machine"]
    assert "median epoch's rate / model alone" in printed


def test_run_flags_without_train_are_refused(capsys):
    assert main(["digits", "--preset", "smoke"]) == 2
    assert "run.py's flags go with --train" in capsys.readouterr().err


@pytest.mark.slow  # trains a whole tiny run in a subprocess
def test_paired_unit_sets_each_epoch_against_the_model_alone_around_it(measured):
    document, printed = measured
    paired, run = document["paired"], document["run"]
    assert [row["epoch"] for row in paired["epochs"]] == [1, 2]  # epochs=2
    assert len(paired["alone_rounds"]) == 3  # before the first epoch and after each
    assert all(row["images_per_second"] > 0 and row["alone_around"] > 0 for row in paired["epochs"])
    assert paired["median_ratio"] == round(paired["epochs"][1]["ratio"], 3)
    assert (
        run["wall_over_pure_paired"] == round(run["wall_minus_tta_over_epochs"] / paired["median_ratio"], 3)
        or abs(run["wall_over_pure_paired"] - run["wall_minus_tta_over_epochs"] / paired["median_ratio"]) < 0.01
    )
    assert "taking turns with its epochs" in printed


@pytest.mark.parametrize(
    "argv",
    [
        ["digits", "--train", "model=mlp", "--preset", "smoke", "epochs=2"],
        ["digits", "--train", "--preset", "smoke", "model=mlp", "epochs=2"],
    ],
)
def test_overrides_are_the_benchs_wherever_they_are_written(argv):
    from bench.speed import speed_arguments

    args, run_flags, overrides = speed_arguments(argv)
    assert overrides == ["model=mlp", "epochs=2"] and run_flags == ["--preset", "smoke"] and args.train
