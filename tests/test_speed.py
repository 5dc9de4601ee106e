"""bench/speed.py: the model alone against a whole run trained as a user runs it (tiny digits run)."""

from __future__ import annotations

import json

from bench.speed import main

TINY = ["model=small", "width=8", "epochs=2", "max_train_rows=300", "folds=2", "tta=2"]


def test_a_trained_run_is_measured_against_the_model_alone(tmp_path, digits_dir, capsys):
    runs, out = tmp_path / "runs", tmp_path / "results"
    argv = ["digits", "--train", "--preset", "smoke", *TINY, "--runs", str(runs), "--data-dir", str(digits_dir)]
    assert main([*argv, "--steps", "2", "--out", str(out)]) == 0
    (path,) = out.glob("speed-digits-*.json")
    document = json.loads(path.read_text())
    assert document["rates"]["model_alone"] > 0 and document["rates"]["model_in_trainer"] > 0
    assert [unit["unit"] for unit in document["units"]] == ["f0-s0", "f1-s0"]
    assert all(unit["images_trained"] > 0 and unit["tta_seconds"] > 0 for unit in document["units"])
    run = document["run"]
    assert run["wall_seconds"] >= run["wall_seconds_inside"] > 0 and run["pure_training_seconds"] > 0
    assert 0 < run["oof_accuracy"] <= 1 and "cpu_flags" in document["machine"]
    assert "median epoch's rate / model alone" in capsys.readouterr().out


def test_run_flags_without_train_are_refused(capsys):
    assert main(["digits", "--preset", "smoke"]) == 2
    assert "run.py's flags go with --train" in capsys.readouterr().err
