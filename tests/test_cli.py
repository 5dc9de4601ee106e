"""run.py as a user runs it: one clear error line and exit status 2 for bad input, nothing written."""

from __future__ import annotations

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
        # Checked once the models are registered: the subprocess loads Keras, seconds.
        pytest.param(["mnist", "model=lenet5", "width=8"], "model lenet5 does not use width", marks=pytest.mark.slow),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args, message, tmp_path):
    result = run_cli(*args, "--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())


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
    (folder,) = (out / "digits").glob("*-smoke-*")
    assert (folder / "report.html").is_file() and sorted(p.name for p in (folder / "units").iterdir()) == [
        "f0-s0",
        "f1-s0",
    ]
    latest = out / "digits" / "submission.csv"
    assert f"submission:  {folder / 'submission.csv'} (not {latest}: a smoke run (--preset smoke))" in result.stdout
    assert not latest.exists()


def test_help_lists_every_sub_command():
    import run

    result = run_cli("--help")
    assert result.returncode == 0
    for name in run.COMMANDS:
        assert f"\n  {name} " in result.stdout, name
