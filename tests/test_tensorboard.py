"""tensorboard: true — each unit's Keras TensorBoard logs in its unit folder; refused in one line off TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.ground.config import Config
from common.ground.errors import UserError
from common.ground.spec import get_spec

pytestmark = pytest.mark.usefixtures("figures_left_out")  # no report is tested here

ROOT = Path(__file__).resolve().parents[1]
TINY = ["folds=2", "epochs=1", "model=mlp", "max_train_rows=200"]


@pytest.mark.slow  # trains a tiny run
def test_a_run_with_tensorboard_leaves_event_files_in_each_unit(tmp_path, digits_dir):
    from common.execution.pipeline import RunOptions, run_competition
    from common.ground.config_files import load_config
    from common.runs import load_run

    overrides = [*TINY, "tensorboard=true"]
    cfg, label = load_config("digits", "smoke", None, overrides)
    folder = run_competition(
        get_spec("digits"), cfg, label, ["digits", *overrides], RunOptions(str(digits_dir), tmp_path)
    )
    assert load_run(folder).finished and load_run(folder).cfg.tensorboard is True
    for unit in ("f0-s0", "f1-s0"):
        events = list((folder / "units" / unit / "tensorboard").rglob("events.out.tfevents.*"))
        assert events and all(event.stat().st_size > 0 for event in events), unit
        assert (folder / "units" / unit / "unit.json").is_file()


def test_no_logs_without_the_key(tmp_path):
    from common.training.train import EpochTimer, fit_callbacks

    names = lambda callbacks: [type(c).__name__ for c in callbacks]  # noqa: E731
    assert "TensorBoard" not in names(fit_callbacks(Config(), None, EpochTimer(), tmp_path))
    assert "TensorBoard" not in names(fit_callbacks(Config(tensorboard=True), None, EpochTimer(), None))
    assert "TensorBoard" in names(fit_callbacks(Config(tensorboard=True), None, EpochTimer(), tmp_path))


def test_refused_on_another_backend(monkeypatch):
    from common.training.backend import resolve_hardware

    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with pytest.raises(UserError, match="tensorboard=true: Keras' TensorBoard callback needs TensorFlow, not the jax"):
        resolve_hardware(Config(tensorboard=True))


def test_refused_without_the_tensorboard_package(monkeypatch):
    from common.training import backend

    monkeypatch.setattr(backend.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="the tensorboard package is not installed"):
        backend.check_tensorboard(Config(tensorboard=True), "tensorflow")
    backend.check_tensorboard(Config(), "jax")  # without the key, nothing is asked of the machine


@pytest.mark.slow  # loads JAX in a subprocess; test_refused_on_another_backend is the quick check
def test_jax_run_with_tensorboard_is_one_line_before_any_folder(tmp_path, digits_dir):
    out = tmp_path / "runs"
    command = [sys.executable, str(ROOT / "run.py"), "digits", *TINY, "tensorboard=true"]
    command += ["--data-dir", str(digits_dir), "--out", str(out)]
    env = os.environ | {"KERAS_BACKEND": "jax"}
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().count("\n") == 0 and "needs TensorFlow, not the jax backend" in done.stderr
    assert not out.exists()
