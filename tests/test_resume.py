"""Interruption and resume: a real run killed mid-unit (SIGKILL), resumed, equals an uninterrupted run."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from common import runs
from common.commands.merge import merge_run
from common.execution.pipeline import RunOptions, run_competition
from common.ground.config_files import load_config
from common.ground.errors import UserError
from common.ground.spec import get_spec
from common.runs.units import UnitKey, is_complete

ROOT = Path(__file__).resolve().parents[1]
DIGITS = get_spec("digits")
# 2 units of the MLP: each takes a second or more to build and trace, so the kill lands inside the second.
OVERRIDES = ["folds=2", "epochs=2", "max_train_rows=400", "deterministic=true", "model=mlp"]
TINY = ["folds=2", "epochs=1", "max_train_rows=200", "model=mlp"]


def cli(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "run.py"), "digits", "--preset", "smoke", *args, *OVERRIDES]


def kill_after_first_unit(command: list[str], out: Path) -> Path:
    """Starts a run, waits until its first unit is saved, then SIGKILLs it while the next one trains."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.time() + 300
    while not list(out.glob("digits/*/units/*/unit.json")):
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            pytest.fail("the run ended or stalled before its first unit was saved")
        time.sleep(0.2)
    time.sleep(0.3)  # inside the second unit's training (building its model)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (folder,) = list((out / "digits").glob("*-smoke-*"))
    return folder


@pytest.mark.slow  # three runs of 2 units, two of them in subprocesses
def test_killed_run_resumes_to_the_same_result(tmp_path, digits_dir):
    out = tmp_path / "runs"
    folder = kill_after_first_unit(cli("--data-dir", str(digits_dir), "--out", str(out)), out)
    assert not runs.load_run(folder).finished
    saved_before = {p.name for p in (folder / "units").iterdir() if (p / "unit.json").is_file()}
    assert len(saved_before) == 1

    first_unit = folder / "units" / sorted(saved_before)[0] / "valid.npy"
    first_mtime = first_unit.stat().st_mtime_ns
    resume = [sys.executable, str(ROOT / "run.py"), "digits", "--data-dir", str(digits_dir), "--out", str(out)]
    resumed = subprocess.run(
        [*resume, "--resume", "latest"],  # a resumed run takes its own saved config: no preset, no overrides
        capture_output=True,
        text=True,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    kept = "1 of 2 units finished and loaded; training 1 now"
    assert kept in resumed.stderr
    assert first_unit.stat().st_mtime_ns == first_mtime  # finished units are loaded, not retrained
    record = runs.load_run(folder).record
    assert record.status is runs.RunStatus.FINISHED and len(record.continued) == 1

    cfg, label = load_config("digits", "smoke", overrides=OVERRIDES)
    whole = run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), tmp_path / "whole"))
    for name in ("oof.npy", "test.npy", "sklearn_test.npy"):
        assert np.array_equal(np.load(folder / name), np.load(whole / name)), name
    assert (folder / "submission.csv").read_bytes() == (whole / "submission.csv").read_bytes()


@pytest.mark.slow  # trains 2 units
def test_single_units_then_merge(tmp_path, digits_dir, caplog):
    cfg, label = load_config("digits", "smoke", overrides=TINY)
    out = tmp_path / "runs"
    folder = run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), out, only=UnitKey(1, 0)))
    assert is_complete(folder, UnitKey(1, 0)) and not is_complete(folder, UnitKey(0, 0))
    assert not (folder / "submission.csv").exists()
    with pytest.raises(UserError, match=r"1 of 2 units missing: f0-s0"):
        merge_run(DIGITS, folder.name, str(digits_dir), out)
    with caplog.at_level(logging.INFO, logger="digits"):
        only = RunOptions(str(digits_dir), out, resume=folder.name, only=UnitKey(0, 0))
        run_competition(DIGITS, cfg, label, ["digits"], only)
    assert f"resuming run {folder.name}: 1 of 2 units finished and loaded; training 1 now (f0-s0)" in caplog.text
    assert runs.load_run(folder).finished  # the last unit finalised the run
    merged = merge_run(DIGITS, folder.name, str(digits_dir), out)
    assert (merged / "submission.csv").is_file() and (merged / "report.html").is_file()


def test_resume_refuses_a_finished_run(tmp_path, digits_dir):
    """Refused from the run's own record before anything is read or trained: a finished run's folder, as a run
    that trained to the end leaves its record, is enough."""
    cfg, label = load_config("digits", "smoke", overrides=TINY)
    out = tmp_path / "runs"
    folder = runs.create_run_dir(out, "digits", label)
    runs.start_run(folder, cfg.to_dict(), ["digits"], label=label)
    runs.finish_run(folder, 1.0)
    with pytest.raises(UserError, match="already finished"):
        run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), out, resume=folder.name))
    with pytest.raises(UserError, match="no unfinished run of digits"):
        run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), out, resume="latest"))


@pytest.mark.slow  # three runs: 8 units
def test_more_seeds_grow_a_finished_run_into_the_run_trained_with_them(tmp_path, digits_dir, figures_left_out):
    """--resume RUN --seeds N trains only the new seeds' units; the grown run equals one started with N seeds."""
    overrides = [*TINY, "deterministic=true"]
    out = tmp_path / "runs"
    cfg, label = load_config("digits", "smoke", overrides=[*overrides, "seeds=1"])
    folder = run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), out))
    first_unit = runs.unit_dir(folder, UnitKey(0, 0)) / "unit.json"
    first_mtime = first_unit.stat().st_mtime_ns
    with pytest.raises(UserError, match="has 1 already; ask for more"):
        run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), out, folder.name, seeds=1))

    grown = run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), out, folder.name, seeds=2))
    assert grown == folder and first_unit.stat().st_mtime_ns == first_mtime  # the seed-0 units are kept
    run = runs.load_run(folder)
    assert run.finished and run.cfg.seeds == 2 and is_complete(folder, UnitKey(1, 1))
    two, label = load_config("digits", "smoke", overrides=[*overrides, "seeds=2"])
    whole = run_competition(DIGITS, two, label, ["digits"], RunOptions(str(digits_dir), tmp_path / "whole"))
    for name in ("oof.npy", "test.npy"):
        assert np.array_equal(np.load(folder / name), np.load(whole / name)), name
