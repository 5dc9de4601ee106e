"""No library start-up log reaches the user: on the JAX backend (in Dask workers, test_full_data.py; in the notebook,
test_kernel.py).

TensorFlow writes its start-up lines from C++ while it loads, past TF_CPP_MIN_LOG_LEVEL; each test runs the real
command as a user does, without the TF_CPP_MIN_LOG_LEVEL the test session sets (conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.execution import distributed
from common.ground.quiet import QUIET_ENVIRONMENT, quiet_environment

ROOT = Path(__file__).resolve().parents[1]
# TensorFlow's lines when it loads on a machine without a GPU (oneDNN, its CUDA probes) and absl's note on them.
STARTUP_LOGS = ("oneDNN custom operations", "Could not find cuda drivers", "failed call to cuInit", "absl::")
TINY = ["max_train_rows=300", "epochs=1", "folds=2", "model=mlp"]


def user_environment(**extra: str) -> dict[str, str]:
    """This process's environment as a user's shell has it: no TF_CPP_MIN_LOG_LEVEL, plus `extra`."""
    return {name: value for name, value in os.environ.items() if name not in QUIET_ENVIRONMENT} | extra


def startup_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(log in line for log in STARTUP_LOGS)]


def run_digits(tmp_path: Path, digits_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`run.py digits` on tiny settings (`args` after them), in a user's environment, into tmp_path/runs."""
    command = [sys.executable, str(ROOT / "run.py"), "digits", *TINY, *args]
    command += ["--data-dir", str(digits_dir), "--out", str(tmp_path / "runs")]
    done = subprocess.run(command, env=user_environment(**env), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_a_jax_run_shows_no_tensorflow_start_up_line(tmp_path, digits_dir):
    """Keras loads TensorFlow on the JAX backend too (keras.utils.set_random_seed seeds it), late and aloud
    unless the product loads it quietly first."""
    pytest.importorskip("jax")
    done = run_digits(tmp_path, digits_dir, KERAS_BACKEND="jax")
    assert "jax on" in done.stdout  # the summary's hardware line: it did train on JAX
    assert startup_lines(done.stdout + done.stderr) == []
    assert "WARNING" not in done.stderr


def test_a_worker_imports_the_task_module_without_loading_keras():
    """A Dask worker imports common.execution.distributed to run a unit's task: Keras (and TensorFlow with it)
    loads inside the task, quietly, not at that import."""
    probe = "import sys, common.execution.distributed; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_workers_and_the_product_get_the_quiet_log_level_unless_the_user_set_one(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    assert distributed.worker_environment(1)["TF_CPP_MIN_LOG_LEVEL"] == "3"
    quiet_environment()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # a user debugging TensorFlow sees everything
    quiet_environment()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    assert distributed.worker_environment(1)["TF_CPP_MIN_LOG_LEVEL"] == "0"
