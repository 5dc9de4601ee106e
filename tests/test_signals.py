"""Ctrl-C (SIGINT) and SIGTERM stop a run within a batch, print how to continue it, and leave it resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from common import runs
from common.execution.pipeline import missing_units, resumable_run
from common.ground.errors import Terminated, exit_status
from common.training.signals import PENDING, StopAtBatchEnd, signals_stop_the_run

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
# A real process, stopped in the middle of its first epoch
# ---------------------------------------------------------------------------

# One epoch of 650 one-row batches: about 15 s on 2 CPU cores, so the stop comes well inside it.
LONG_EPOCH = ["folds=2", "epochs=2", "batch_size=1", "model=small", "save_models=false"]


def wait_for(text: str, log: Path, process: subprocess.Popen, seconds: float) -> float:
    """Seconds until `text` appears in `log`; fails the test if the process ends or the time runs out first."""
    start = time.perf_counter()
    while text not in log.read_text():
        if process.poll() is not None or time.perf_counter() - start > seconds:
            process.kill()
            pytest.fail(f"no {text!r} within {seconds} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    return time.perf_counter() - start


@pytest.mark.slow
@pytest.mark.parametrize(("number", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_epoch_stops_the_run_at_once_and_it_resumes(number, status, tmp_path, digits_dir):
    out, log = tmp_path / "runs", tmp_path / "stderr.txt"
    command = [sys.executable, str(ROOT / "run.py"), "digits", *LONG_EPOCH, "--data-dir", str(digits_dir)]
    with log.open("w") as stderr:
        process = subprocess.Popen([*command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=stderr)
    wait_for("unit f0-s0:   0%", log, process, 300)  # the first epoch's bar: fit has begun
    time.sleep(3)  # into the epoch's batches (its training step compiled)
    process.send_signal(number)

    stopped = wait_for("continue with --resume", log, process, 30)
    process.wait(timeout=60)  # TensorFlow's own teardown follows: 1.5-3 s on 2 busy cores
    text = log.read_text()
    assert stopped < 3, text[-3000:]
    assert process.returncode == status, text[-3000:]
    assert "unit f0-s0:  50%" not in text  # the first epoch never ended: stopped inside it
    assert "Traceback" not in text and "Exception ignored" not in text

    (run,) = runs.list_runs(out, "digits")
    assert f"continue with --resume {run.run_id}" in text and not run.finished
    resumed = resumable_run(out, "digits", "latest")  # what --resume latest continues
    assert resumed.folder == run.folder and len(missing_units(run.folder, run.cfg)) == 2
