"""common/execution/pipeline.py, end to end: the smoke path on the offline digits competition, every output checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from common.data.files import load_dataset
from common.data.trainset import prepare_train_set
from common.execution.pipeline import RunOptions, run_competition
from common.ground.config_files import load_config
from common.ground.spec import get_spec
from common.runs.layout import UnitKey
from common.training.backend import available_cores, cpu_has_bfloat16

DIGITS = get_spec("digits")


# The smoke preset with the MLP: what these tests check is the pipeline's files, not what the model learns.
TINY = ["model=mlp"]


@pytest.fixture(scope="module")
def smoke_run(digits_dir, tmp_path_factory):
    """2 folds x 2 seeds of 2 epochs on 300 rows: 4 units, trained once for this file."""
    cfg, label = load_config("digits", "smoke", overrides=[*TINY, "max_train_rows=300", "seeds=2", "epochs=2"])
    out = tmp_path_factory.mktemp("runs")
    folder = run_competition(DIGITS, cfg, label, ["digits", "--preset", "smoke"], RunOptions(str(digits_dir), out))
    return folder, cfg, load_dataset(DIGITS, digits_dir)


@pytest.mark.slow  # trains a tiny run
def test_run_folder_holds_every_file(smoke_run):
    folder, cfg, _ = smoke_run
    expected = {"run.json", "config.yaml", "folds.csv", "oof.npy", "test.npy", "sklearn_test.npy"}
    expected |= {"metrics.json", "per_class.csv", "submission.csv", "train.log", "units"}
    assert expected <= {p.name for p in folder.iterdir()}
    units = sorted(p.name for p in (folder / "units").iterdir())
    assert units == ["f0-s0", "f0-s1", "f1-s0", "f1-s1"]
    for unit in units:
        files = {p.name for p in (folder / "units" / unit).iterdir()}
        assert {"valid.npy", "test.npy", "sklearn_test.npy", "history.csv", "model.keras", "unit.json"} <= files
        assert len(pd.read_csv(folder / "units" / unit / "history.csv")) == cfg.epochs
    assert not list(folder.rglob("*.partial*"))


@pytest.mark.slow  # trains a tiny run
def test_run_record_and_config(smoke_run):
    folder, cfg, _ = smoke_run
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "finished" and record["wall_seconds"] > 0
    assert record["command"] == "python run.py digits --preset smoke"
    saved = yaml.safe_load((folder / "config.yaml").read_text())
    # stored resolved, so units train alike anywhere: threads, and on a CPU with bfloat16 the probe's precision
    precision = "off" if cpu_has_bfloat16() else "auto"  # the suite's probe answer (conftest.py)
    assert saved == cfg.to_dict() | {"threads": available_cores(), "mixed_precision": precision}


@pytest.mark.slow  # trains a tiny run
def test_probabilities_and_metrics_are_consistent(smoke_run):
    folder, cfg, data = smoke_run
    folds = pd.read_csv(folder / "folds.csv")
    oof, test = np.load(folder / "oof.npy"), np.load(folder / "test.npy")
    assert oof.shape == (cfg.max_train_rows, 10) and test.shape == (len(data.test.images), 10)
    assert np.allclose(oof.sum(axis=1), 1, atol=1e-4) and np.allclose(test.sum(axis=1), 1, atol=1e-4)
    assert np.array_equal(folds["label"], data.train.labels[folds["row"]])
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["oof_accuracy"] == pytest.approx(np.mean(oof.argmax(1) == folds["label"]))
    assert set(metrics["folds"]) == {"0", "1"} and set(metrics["seeds"]) == {"0", "1"}
    assert 0 <= metrics["extra_accuracy"]["sklearn_test"] <= 1
    # OOF of fold 0 is the mean over its two seeds' held-out predictions
    seeds = [np.load(folder / "units" / f"f0-s{s}" / "valid.npy") for s in (0, 1)]
    assert np.allclose(oof[folds["fold"] == 0], np.mean(seeds, axis=0), atol=1e-6)


@pytest.mark.slow  # trains a tiny run
def test_submission_matches_the_sample_and_a_smoke_run_leaves_the_competitions_alone(smoke_run):
    folder, _, data = smoke_run
    submission = pd.read_csv(folder / "submission.csv")
    assert list(submission.columns) == list(data.sample.columns)
    assert submission["id"].tolist() == data.sample["id"].tolist()
    assert submission["label"].tolist() == np.load(folder / "test.npy").argmax(1).tolist()
    assert not (folder.parent / "submission.csv").exists()  # a smoke run is made for trying things


@pytest.mark.slow  # trains a tiny run
def test_holdout_and_extra_train_are_scored_apart_from_train_csv(digits_dir, tmp_path, capsys):
    overrides = [*TINY, "max_train_rows=300", "epochs=1", "holdout=0.2", "extra_train=sklearn_test", "seeds=2"]
    cfg, label = load_config("digits", "smoke", overrides=overrides)
    folder = run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), tmp_path))
    metrics = json.loads((folder / "metrics.json").read_text())
    folds = pd.read_csv(folder / "folds.csv")
    oof = np.load(folder / "oof.npy")
    own = (folds["origin"] == "train").to_numpy()
    assert own.sum() == 300 and (folds["origin"] == "sklearn_test").sum() == len(folds) - 300
    right = oof.argmax(axis=1) == folds["label"].to_numpy()
    assert metrics["oof_accuracy"] == pytest.approx(right[own].mean())
    assert metrics["oof_extra_accuracy"] == {"sklearn_test_oof": pytest.approx(right[~own].mean())}
    assert set(metrics["extra_accuracy"]) == {"train_holdout"}  # sklearn_test.csv is trained on, so not scored apart
    held = np.load(folder / "train_holdout.npy")
    assert len(held) == round(0.2 * len(load_dataset(DIGITS, digits_dir).train.labels))
    summary = capsys.readouterr().out
    assert "sklearn_test_oof" in summary and "train_holdout" in summary
    # The fold ensemble's gain over one fold model (its seeds averaged, as OOF has them), on the holdout, turns
    # OOF into a leaderboard estimate.
    units = [np.mean([np.load(u) for u in folder.glob(f"units/f{k}-s*/train_holdout.npy")], axis=0) for k in (0, 1)]
    ensemble = np.load(folder / "train_holdout.npy")
    truth = prepare_train_set(load_dataset(DIGITS, digits_dir), cfg)[0].extras["train_holdout"].labels
    single = np.mean([np.mean(unit.argmax(axis=1) == truth) for unit in units])
    gain = np.mean(ensemble.argmax(axis=1) == truth) - single
    assert metrics["ensemble_gain"] == pytest.approx(gain)
    assert metrics["leaderboard_estimate"] == pytest.approx(metrics["oof_accuracy"] + gain)
    assert "LB estimate" not in summary and "leaderboard" not in summary  # digits is offline: no leaderboard


def test_units_trained_on_other_hardware_are_accepted_and_said(caplog):
    import logging

    from common.execution.pipeline import note_mixed_hardware
    from common.runs.units import UnitKey, UnitOutput

    def unit(backend: str) -> UnitOutput:
        return UnitOutput({}, pd.DataFrame(), 1.0, None, {"backend": backend, "device_name": "CPU"})

    with caplog.at_level(logging.INFO, logger="digits"):
        note_mixed_hardware({UnitKey(0, 0): unit("tensorflow"), UnitKey(1, 0): unit("jax")})
    assert "tensorflow on CPU: f0-s0; jax on CPU: f1-s0" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="digits"):
        note_mixed_hardware({UnitKey(0, 0): unit("jax"), UnitKey(1, 0): unit("jax")})
    assert "different hardware" not in caplog.text


@pytest.mark.parametrize(
    "label, hint", [("default", "continue with python run.py"), ("tune-s-3", "continues its study")]
)
def test_ctrl_c_says_how_to_go_on_for_a_run_and_for_a_studys_trial(tmp_path, label, hint):
    from common import runs
    from common.execution.pipeline import continue_hint

    folder = runs.create_run_dir(tmp_path, "digits", label)
    kind = runs.RunKind.TRIAL if label.startswith(runs.TRIAL_PREFIX) else runs.RunKind.TRAINED
    runs.start_run(folder, {"folds": 2}, ["digits"], label=label, kind=kind)
    said = continue_hint(folder, f"python run.py digits --resume {folder.name}")
    assert hint in said and ("--resume" in said) == (label == "default")


@pytest.mark.parametrize(
    "options, flags",
    [
        ({}, []),
        ({"data_dir": "my data", "out_root": Path("/tmp/runs")}, ["--data-dir", "'my data'", "--out", "/tmp/runs"]),
        (
            {"scheduler": "local:2", "only": UnitKey(None, 1)},
            ["--scheduler", "local:2", "--fold", "all", "--seed", "1"],
        ),
        ({"only": UnitKey(0, 0)}, ["--fold", "0", "--seed", "0"]),
    ],
)
def test_the_resume_command_repeats_the_data_folders_executor_and_unit_the_run_was_started_with(options, flags):
    from common.execution.pipeline import resume_command

    command = resume_command("kannada", Path("submissions/kannada/20261207-101010-default"), RunOptions(**options))
    assert command == " ".join(["python run.py kannada --resume 20261207-101010-default", *flags])


@pytest.mark.parametrize("label, published, why", [("default", True, ""), ("tune-s-t3", False, "a tune trial")])
def test_the_summary_names_the_submitted_models_score_and_the_submissions_it_wrote(
    tmp_path, label, published, why, capsys
):
    """The row of the score that judges the submission is marked and named; a study's trial writes its own
    submission.csv but leaves the competition's alone: its summary says so."""
    from common import runs
    from common.execution.pipeline import print_summary

    folder = runs.create_run_dir(tmp_path, "digits", label)
    kind = runs.RunKind.TRIAL if label.startswith(runs.TRIAL_PREFIX) else runs.RunKind.TRAINED
    runs.start_run(folder, {"folds": 2, "epochs": 3}, ["digits"], "CPU", label=label, kind=kind)
    submitted = runs.Submitted("all", ["f0-s0", "f1-s0"], runs.OOF, 0.9)
    metrics = runs.Metrics(submitted, 10, 0.9, folds={"0": {"accuracy": 0.9, "seconds": 1.0}}, seeds={"0": 0.9})
    print_summary(folder, DIGITS, metrics, 2.0, published)
    out = capsys.readouterr().out.splitlines()
    assert next(line for line in out if line.startswith("OOF ensemble")).endswith("<- judges the submission")
    assert "submitted:   2 fold models (3 epochs, width 32): 0.90000 on OOF" in out
    lines = [line for line in out if line.startswith("submission:")]
    latest = tmp_path / "digits" / "submission.csv"
    expected = f"submission:  {folder / 'submission.csv'}"
    assert lines == [expected + (f" (also {latest})" if published else f" (not {latest}: {why})")]
