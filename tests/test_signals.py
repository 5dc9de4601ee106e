"""Ctrl-C (SIGINT) and SIGTERM stop a run within a batch, print how to continue it, and leave it resumable."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from common import runs
from common.execution.pipeline import missing_units, resumable_run
from common.ground.errors import Terminated, exit_status
from common.runs.layout import MODEL_KERAS
from common.runs.units import UnitKey, UnitOutput, is_complete, save_unit, unit_dir
from common.training.signals import PENDING, StopAtBatchEnd, signals_stop_the_run
from tests.test_quiet_start import startup_lines, user_environment

ROOT = Path(__file__).resolve().parents[1]


def test_exit_status_of_each_stop():
    def stopped_by(error: BaseException):
        def work():
            raise error

        return work

    assert exit_status(stopped_by(KeyboardInterrupt())) == 130
    assert exit_status(stopped_by(Terminated())) == 143  # 128 + SIGTERM, as the shell reports a process it killed


def test_signals_raise_inside_and_the_previous_handlers_come_back():
    def mine(number, frame):
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        with pytest.raises(Terminated), signals_stop_the_run():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises at the next bytecode, long before this ends
        with pytest.raises(KeyboardInterrupt), signals_stop_the_run():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


class SwallowedOnBatch(keras.callbacks.Callback):
    """Delivers the stop where Python ignores exceptions (a __del__), as happens when a signal lands in a
    garbage-collection callback, at the end of one batch; counts the batches that finished."""

    def __init__(self, batch: int) -> None:
        super().__init__()
        self.batch, self.finished = batch, 0

    def on_train_batch_end(self, batch, logs=None):
        self.finished += 1
        if batch == self.batch:
            Receives()  # collected at once: its __del__ raises into nothing


class Receives:
    def __del__(self):
        PENDING.receive(signal.SIGINT, None)


def test_a_stop_python_ignored_is_raised_at_the_next_batch_end(capfd):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    swallowed = SwallowedOnBatch(batch=2)
    x, y = np.zeros((64, 4), np.float32), np.zeros((64, 2), np.float32)
    with pytest.raises(KeyboardInterrupt), signals_stop_the_run():
        model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[swallowed, StopAtBatchEnd()])
    assert swallowed.finished == 3  # batches 0, 1 and 2 (where the stop came): none after it
    assert "Exception ignored" not in capfd.readouterr().err  # raised again: not reported as lost
    assert PENDING.number is None  # forgotten once the run it stopped has ended


# ---------------------------------------------------------------------------
# A unit being saved when the stop comes
# ---------------------------------------------------------------------------


def unit_output() -> UnitOutput:
    probabilities = np.full((4, 10), 0.1, np.float32)
    history = pd.DataFrame({"epoch": [1], "loss": [0.5]})
    return UnitOutput({runs.VALID: probabilities, runs.TEST: probabilities}, history, 1.0, b"model", {})


def test_a_stop_while_a_unit_is_saved_leaves_it_incomplete_and_no_half_written_file(tmp_path, monkeypatch):
    """Each file of a unit appears whole or not at all, and the unit counts as saved only once its last file
    (unit.json) is there: a stop in the middle of the model's bytes leaves neither that file nor its temporary."""
    key, written = UnitKey(0, 0), Path.write_bytes

    def half_then_stop(path: Path, data: bytes) -> int:
        if len(data) == len(b"model"):  # the model's file: half of it, then Ctrl-C
            written(path, data[:2])
            raise KeyboardInterrupt
        return written(path, data)

    monkeypatch.setattr(Path, "write_bytes", half_then_stop)
    with pytest.raises(KeyboardInterrupt):
        save_unit(tmp_path, key, unit_output())
    monkeypatch.undo()
    folder = unit_dir(tmp_path, key)
    assert not is_complete(tmp_path, key) and not (folder / MODEL_KERAS).exists()
    assert not [path.name for path in folder.iterdir() if ".partial" in path.name]
    save_unit(tmp_path, key, unit_output())  # what a resumed run does with it: trains and saves it again
    assert is_complete(tmp_path, key) and (folder / MODEL_KERAS).read_bytes() == b"model"


# ---------------------------------------------------------------------------
# A real process, stopped in the middle of an epoch and while it predicts
# ---------------------------------------------------------------------------

# One epoch of 650 one-row batches: about 15 s on 2 CPU cores, so the stop comes well inside it.
LONG_EPOCH = ["folds=2", "epochs=2", "batch_size=1", "model=small", "save_models=false"]
# One short epoch, then a prediction of every set in 9 views (tta=8): about 3 s on 2 CPU cores.
LONG_PREDICTION = ["folds=2", "epochs=1", "model=small", "tta=8", "save_models=false"]
STOPPED_WITHIN = 2.0  # seconds from the signal to the end of the process, wherever it lands


def wait_for(text: str, log: Path, process: subprocess.Popen, seconds: float) -> float:
    """Seconds until `text` appears in `log`; fails the test if the process ends or the time runs out first."""
    start = time.perf_counter()
    while text not in log.read_text():
        if process.poll() is not None or time.perf_counter() - start > seconds:
            process.kill()
            pytest.fail(f"no {text!r} within {seconds} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)
    return time.perf_counter() - start


def stopped_run(config: list[str], marker: str, delay: float, number: int, tmp_path: Path, digits_dir: Path):
    """A real `run.py digits` sent signal `number` `delay` s after `marker` shows on its stderr: (seconds from the
    signal to the process's end, its exit status, its stderr, the run folder root)."""
    out, log = tmp_path / "runs", tmp_path / "stderr.txt"
    command = [sys.executable, str(ROOT / "run.py"), "digits", *config, "--data-dir", str(digits_dir)]
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=stderr, env=user_environment()
        )
    wait_for(marker, log, process, 300)
    time.sleep(delay)
    sent = time.perf_counter()
    process.send_signal(number)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"still running 60 s after the signal:\n{log.read_text()[-3000:]}")
    return time.perf_counter() - sent, process.returncode, log.read_text(), out


def check_stopped(seconds: float, status: int, text: str, expected: int, out: Path, digits_dir: Path) -> runs.Run:
    """Ended within 2 s with `expected`, and said so in one line holding the whole command that continues the
    run; the run is unfinished, its first unit not saved."""
    assert seconds < STOPPED_WITHIN and status == expected, (seconds, status, text[-3000:])
    (run,) = runs.list_runs(out, "digits")
    word = "terminated" if expected == 143 else "interrupted"
    resume = f"python run.py digits --resume {run.run_id} --data-dir {digits_dir} --out {out}"
    stops = [line for line in text.splitlines() if "interrupted" in line or "terminated" in line]
    assert stops == [f"{word}: continue with {resume}"], text[-3000:]
    assert "Traceback" not in text and "Exception ignored" not in text and "Warning" not in text
    assert startup_lines(text) == []
    assert not run.finished and not is_complete(run.folder, UnitKey(0, 0))
    return run


SIGNALS = pytest.mark.parametrize(
    ("number", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"]
)


@pytest.mark.slow
@SIGNALS
def test_a_signal_mid_epoch_stops_the_run_within_2_s_with_one_line_to_continue_it(number, status, tmp_path, digits_dir):
    # The first epoch's bar, then 3 s: inside its batches (the training step compiled).
    seconds, returned, text, out = stopped_run(LONG_EPOCH, "unit f0-s0:   0%", 3, number, tmp_path, digits_dir)
    run = check_stopped(seconds, returned, text, status, out, digits_dir)
    assert "unit f0-s0:  50%" not in text  # the first epoch never ended: stopped inside it
    resumed = resumable_run(out, "digits", "latest")  # what --resume latest continues
    assert resumed.folder == run.folder and len(missing_units(run.folder, run.cfg)) == 2


@pytest.mark.slow
@SIGNALS
def test_a_signal_while_a_unit_predicts_stops_within_2_s_and_the_command_it_prints_finishes_the_run(
    number, status, tmp_path, digits_dir
):
    # The epoch's bar full: the unit now predicts its held-out fold, test and sklearn_test (9 views each).
    seconds, returned, text, out = stopped_run(LONG_PREDICTION, "unit f0-s0: 100%", 0.3, number, tmp_path, digits_dir)
    run = check_stopped(seconds, returned, text, status, out, digits_dir)
    assert "fold 0 seed 0: accuracy" not in text  # stopped before the unit was saved: in its prediction
    if number != signal.SIGTERM:
        return  # one resume is enough: the same folder either way
    line = next(line for line in text.splitlines() if line.startswith("terminated: continue with "))
    command = shlex.split(line.removeprefix("terminated: continue with "))
    assert command[:2] == ["python", "run.py"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *command[2:]], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert runs.load_run(run.folder).finished and not missing_units(run.folder, run.cfg)
