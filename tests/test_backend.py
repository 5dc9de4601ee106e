"""common/training/backend.py and the trainer on other backends: JAX end to end with TensorFlow not importable, its
models predicted and packaged on TensorFlow; one line and exit 2 for what a machine cannot honour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.ground.config import Config
from common.ground.errors import UserError
from common.training.backend import backend_name, choose_precision, resolve_hardware

ROOT = Path(__file__).resolve().parents[1]
# Three folds, two of them in one stack: both training paths (a unit alone, a stack) run on JAX
TINY = ["folds=3", "stack=2", "epochs=1", "model=mlp", "max_train_rows=300"]


def without_tensorflow(tmp_path: Path) -> dict[str, str]:
    """An environment in which `import tensorflow` fails, as on a machine that has none."""
    blocker = tmp_path / "blocker" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('TensorFlow is blocked in this test')\n")
    path = os.pathsep.join([str(blocker.parent), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return os.environ | {"KERAS_BACKEND": "jax", "PYTHONPATH": path}


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "run.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, check=False)


@pytest.fixture(scope="module")
def no_tensorflow(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("jax")
    env = without_tensorflow(tmp) | {"DIGIT_CACHE_DIR": str(tmp / "cache")}
    check = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, check=False)
    assert check.returncode != 0 and "blocked" in check.stderr.decode()
    return env


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory, digits_dir, no_tensorflow) -> Path:
    """A digits run trained on JAX in a process where TensorFlow cannot be imported."""
    out = tmp_path_factory.mktemp("jax_runs")
    args = ["digits", "--preset", "smoke", *TINY, "--data-dir", str(digits_dir), "--out", str(out)]
    done = run_cli(args, no_tensorflow)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trained on:  jax on CPU" in done.stdout
    (folder,) = (out / "digits").glob("*/run.json")
    return folder.parent


@pytest.mark.slow  # the module's JAX run, trained in a subprocess
@pytest.mark.parametrize(
    "command",
    [["report", "digits", "latest"], ["compare", "digits"], ["predict", "digits", "latest", "IMAGE"]],
    ids=["report", "compare", "predict"],
)
def test_the_commands_run_on_jax_without_tensorflow(command, jax_run, no_tensorflow, tmp_path):
    from PIL import Image

    image = np.full((64, 64), 255, np.uint8)
    image[16:48, 28:36] = 0  # a dark stroke on light paper: a one
    Image.fromarray(image).save(tmp_path / "one.png")
    args = [str(tmp_path / "one.png") if arg == "IMAGE" else arg for arg in command]
    done = run_cli([*args, "--out", str(jax_run.parent.parent)], no_tensorflow)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow  # the module's JAX run, trained in a subprocess
def test_a_jax_run_without_tensorflow_records_its_backend(jax_run):
    record = json.loads((jax_run / "run.json").read_text())
    assert record["status"] == "finished" and any(h.startswith("jax on CPU") for h in record["hardware"])
    unit = json.loads((jax_run / "units" / "f0-s0" / "unit.json").read_text())
    assert unit["backend"] == "jax" and unit["device"] == "cpu" and unit["jit_compile"] is True
    assert unit["stacked"] == 2 and "stacked" not in json.loads((jax_run / "units" / "f2-s0" / "unit.json").read_text())
    assert unit["precision"] == "float32" and unit["epoch_seconds"] > 0
    assert (jax_run / "submission.csv").is_file()


@pytest.mark.slow  # the module's JAX run, trained in a subprocess
def test_a_jax_run_is_predicted_and_packaged_on_tensorflow(jax_run, digits_dir, tmp_path):
    import keras

    from common.ground.spec import get_spec
    from common.runs import load_run
    from common.runs.notebook import write_kernel
    from common.training.inference import predict_with_models

    assert keras.backend.backend() == "tensorflow"
    run = load_run(jax_run)
    test = np.load(jax_run / "test.npy")
    from common.data.files import load_dataset

    images = load_dataset(get_spec("digits"), str(digits_dir)).test.images
    # The same saved models, loaded on another backend, give the same probabilities as on JAX.
    assert np.abs(predict_with_models(run.model_files(), images) - test).max() < 1e-4
    kernel = write_kernel(jax_run.parent.parent, get_spec("digits"), jax_run.name, tmp_path / "kernel")
    assert (kernel / "dataset" / "f0-s0.keras").is_file()


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        (
            {"KERAS_BACKEND": "torch"},
            ["digits"],
            "KERAS_BACKEND='torch': this tool trains on the tensorflow or jax backend",
        ),
        # The other three load a backend in the subprocess: seconds each.
        pytest.param(
            {"KERAS_BACKEND": "jax"},
            ["digits", "device=gpu"],
            "device=gpu: the jax backend sees no GPU",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            {}, ["digits", "device=gpu"], "device=gpu: the tensorflow backend sees no GPU", marks=pytest.mark.slow
        ),
        pytest.param(
            {},
            ["digits", "mixed_precision=float16"],
            "mixed_precision=float16: CPUs have no fast float16",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_what_a_machine_cannot_honour_is_one_line_before_any_folder(env, args, message, tmp_path, digits_dir):
    out = tmp_path / "runs"
    done = run_cli([*args, "--data-dir", str(digits_dir), "--out", str(out)], os.environ | env)
    assert done.returncode == 2 and message in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().count("\n") == 0 and not out.exists()


def test_keras_json_chooses_the_backend_when_the_environment_does_not(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert backend_name() == "tensorflow"
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    assert backend_name() == "jax"


@pytest.mark.parametrize(
    ("asked", "on_gpu", "found", "expected"),
    [
        ("auto", False, [], "float32"),
        ("off", True, [("H100", 9.0)], "float32"),
        ("auto", True, [("H100", 9.0)], "float32"),  # measured: bf16 bought no speed on an H200
        ("on", True, [("H100", 9.0)], "mixed_bfloat16"),
        ("on", True, [("T4", 7.5)], "mixed_float16"),
        ("float16", True, [("H100", 9.0)], "mixed_float16"),
    ],
)
def test_precision_follows_the_device(asked, on_gpu, found, expected):
    assert choose_precision(asked, on_gpu, found) == expected


def test_bfloat16_on_a_gpu_without_it_is_refused():
    with pytest.raises(UserError, match="compute capability < 8.0"):
        choose_precision("bfloat16", True, [("T4", 7.5)])


def test_cpu_hardware_is_described():
    hardware = resolve_hardware(Config())
    assert hardware.device == "cpu" and hardware.backend == backend_name() and "CPU" in hardware.description


# What TensorFlow says about five new models predicted once each, as five small units are: caught before any filter.
FIVE_MODELS_PREDICTED = """
import json, logging
import keras, numpy as np

caught = []
handler = logging.Handler()
handler.emit = caught.append
logging.getLogger("tensorflow").addHandler(handler)
for _ in range(6):
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).predict(np.zeros((4, 2)), verbose=0)
print(json.dumps([record.getMessage() for record in caught]))
"""


@pytest.mark.slow  # predicts with six models in a subprocess
def test_tensorflows_false_retracing_alarm_is_dropped_and_a_real_warning_passes():
    import logging

    from common.training.backend import KerasPredictRetracing, quiet_false_alarms

    if backend_name() != "tensorflow":
        pytest.skip("a warning of TensorFlow's")
    done = subprocess.run([sys.executable, "-c", FIVE_MODELS_PREDICTED], capture_output=True, text=True, check=True)
    said = json.loads(done.stdout.splitlines()[-1])
    assert any("triggered tf.function retracing" in message for message in said), said  # TensorFlow does say it

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("tensorflow", logging.WARNING, __file__, 1, message, None, None)

    dropped = KerasPredictRetracing()
    assert said and not any(dropped.filter(record(message)) for message in said)
    train_step = (
        "5 out of the last 5 calls to <function TensorFlowTrainer._make_function.<locals>.multi_step_on_iterator>"
    )
    assert dropped.filter(record(f"{train_step} triggered tf.function retracing."))  # a real retracing: shown
    assert dropped.filter(record("a real warning"))
    quiet_false_alarms()
    quiet_false_alarms()  # installed once however often it is asked
    assert sum(isinstance(f, KerasPredictRetracing) for f in logging.getLogger("tensorflow").filters) == 1
