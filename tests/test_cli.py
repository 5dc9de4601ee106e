"""run.py as a user runs it: one clear error line and exit status 2 for bad input, nothing written."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True, cwd=cwd, timeout=600, check=False
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["chess"], "unknown competition 'chess'"),
        (["mnist", "epochz=3"], "unknown config key 'epochz'"),
        (["mnist", "--epochs", "0"], "epochs must be a positive integer"),
        (["mnist", "--preset", "turbo"], "unknown preset 'turbo'"),
        (["mnist", "--folds", "1"], "folds must be at least 2"),
        (["mnist", "--resume", "latest", "epochs=3"], "--resume continues a run with its own saved config"),
        (["mnist", "--resume", "latest", "--seeds", "3", "lr=0.1"], "only --seeds N and --full-models N may grow it"),
        (["compare", "mnist", "a"], "compare: give no run (the table of all runs) or exactly two, not 1"),
        (["compare", "mnist", "--ensemble", "full"], "compare --ensemble full: give the two runs to compare"),
        (["mnist", "model=lenet5", "width=8"], "model lenet5 does not read width"),
        (["zoo", "mnist", "--models", "deotte,resnet"], "unknown model 'resnet': expected one of convnet3, deotte"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args, message, tmp_path):
    result = run_cli(*args, "--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())


NEED_NO_DATA = [  # (arguments, the one line): each refused before Keras loads and before any file is looked for
    (
        ["max_train_rows=5"],
        "config: max_train_rows 5 leaves too few rows per class for 5 folds: 5 rows over 10 classes is 0 per class,"
        " fewer than the 5 folds (one row of each class per fold); the least is max_train_rows=50 (0 = every row)",
    ),
    (
        ["max_train_rows=15"],
        "config: max_train_rows 15 leaves too few rows per class for 5 folds: 15 rows over 10 classes is 1 per class,"
        " fewer than the 5 folds (one row of each class per fold); the least is max_train_rows=50 (0 = every row)",
    ),
    (
        ["folds=0", "full_models=1", "holdout=0.1", "max_train_rows=5"],
        "config: max_train_rows 5 leaves too few rows per class: 5 rows over 10 classes is 0 per class, not one; the"
        " least is max_train_rows=10 (0 = every row)",
    ),
    (["max_train_rows=-3"], "config: max_train_rows must be 0 (every row) or positive, got -3"),
    (["dropout=1.5"], "config: dropout must be in [0, 1), got 1.5"),
    (["holdout=1.2"], "config: holdout must be in [0, 1), got 1.2"),
    (["lr="], "command line: lr needs a value (e.g. lr=0.003)"),
    (
        ["model=mlp", "width=8"],
        "config: model mlp does not read width (it reads dropout only); leave it out or choose a model that reads"
        " width",
    ),
    (
        ["model=resnet"],
        "unknown model 'resnet': expected one of convnet3, deotte, keras_mnist_cnn, lenet5, mlp, small, vgg6, vgg8",
    ),
    (["extra_train=dig_mnist"], "config: extra_train 'dig_mnist' is not an extra set of mnist (none)"),
    (
        ["folds=0", "full_models=1"],
        "config: folds 0 leaves nothing to score the run: mnist has no extra labelled set"
        " it does not train on; set holdout (e.g. holdout=0.1) or folds of 2 or more",
    ),
    (["--freeze-convs"], "config: freeze_convs needs init_from (the run whose convolutional layers to keep)"),
]


@pytest.mark.parametrize("args, line", NEED_NO_DATA)
def test_what_needs_no_data_is_refused_before_the_data_is_looked_for(args, line, tmp_path):
    """A --data-dir that does not exist would be refused the moment the data is looked for: the config's own
    error comes instead, so it came first."""
    result = run_cli("mnist", *args, "--data-dir", str(tmp_path / "no-such-folder"), "--out", str(tmp_path / "runs"))
    assert (result.returncode, result.stderr, result.stdout) == (2, f"error: {line}\n", "")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # the subprocess loads Keras; test_bad_input checks each broken file in-process
def test_bad_data_file_exits_2_and_writes_no_run(tmp_path, digits_dir):
    broken = tmp_path / "data"
    broken.mkdir()
    import zipfile

    with zipfile.ZipFile(digits_dir / "sklearn-digits.zip") as archive:
        archive.extractall(broken)
    train = pd.read_csv(broken / "train.csv")
    train.loc[7, "pixel300"] = 300
    train.to_csv(broken / "train.csv", index=False)
    out = tmp_path / "runs"
    result = run_cli("digits", "--preset", "smoke", "--data-dir", str(broken), "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert "train.csv: line 9, column 'pixel300': pixels must be 0-255, found 300" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_smoke_run_from_the_command_line(tmp_path, digits_dir):
    """The quick tier's one whole training: python run.py as a user starts it, a tiny model on 200 rows, every
    step from the data to the report and the submission."""
    out = tmp_path / "runs"
    tiny = ["epochs=1", "model=small", "width=4", "max_train_rows=200"]
    result = run_cli("digits", "--preset", "smoke", "--data-dir", str(digits_dir), "--out", str(out), *tiny)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OOF ensemble" in result.stdout and "submitted:   2 fold models (1 epoch, width 4): " in result.stdout
    assert "leaderboard" not in result.stdout  # the offline demo has none
    (folder,) = (out / "digits").glob("*-smoke-*")
    assert (folder / "report.html").is_file() and sorted(p.name for p in (folder / "units").iterdir()) == [
        "f0-s0",
        "f1-s0",
    ]
    latest = out / "digits" / "submission.csv"
    assert f"submission:  {folder / 'submission.csv'} (not {latest}: a smoke run (--preset smoke))" in result.stdout
    assert not latest.exists()
    zipped = digits_dir / "sklearn-digits.zip"  # run.json records the file it read
    sha256 = hashlib.sha256(zipped.read_bytes()).hexdigest()
    expected = [{"path": str(zipped.resolve()), "size": zipped.stat().st_size, "sha256": sha256}]
    assert json.loads((folder / "run.json").read_text())["data_files"] == expected


def test_help_lists_every_sub_command():
    import run

    result = run_cli("--help")
    assert result.returncode == 0
    for name in run.COMMANDS:
        assert f"\n  {name} " in result.stdout, name
