"""common/execution/distributed.py: units trained on a Dask LocalCluster match a local run and survive a killed worker;
a scheduler that cannot be used is a one-line UserError."""

from __future__ import annotations

import json
import random
import socket
import time
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest

from common.execution import distributed, pipeline
from common.execution.pipeline import RunOptions, run_competition
from common.ground.config_files import load_config
from common.ground.errors import UserError
from common.ground.spec import get_spec
from common.runs.units import UnitKey, all_units, is_complete
from tests.dask_kill_once import MARKER_ENV

DIGITS = get_spec("digits")
TINY = ["max_train_rows=300", "epochs=1", "folds=2", "model=mlp"]
# Workers train with the run's own thread count (config `threads`), as this process does: the same arrays, but for
# float rounding (up to 1.2e-7 measured since the step warps through TensorFlow's own affine kernel).
TOLERANCE = 1e-6
KILL_ONCE = Path(__file__).with_name("dask_kill_once.py")  # the first unit to start kills its worker


@pytest.fixture(scope="module")
def two_runs(digits_dir, tmp_path_factory):
    """The same tiny run trained in this process and on local:2, where the first unit to start kills its worker."""
    cfg, label = load_config("digits", "smoke", overrides=TINY)
    out = tmp_path_factory.mktemp("runs")
    marker = out / "worker-killed"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIGIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.setattr(pipeline, "write_report", lambda *args: "skipped")  # figures take half a minute; not tested here
        here = run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), out))
        patch.setenv(MARKER_ENV, str(marker))  # the worker processes inherit it
        options = RunOptions(str(digits_dir), out, scheduler="local:2")
        with dask.config.set({"distributed.worker.preload": [str(KILL_ONCE)]}):  # the workers get the config
            cluster = run_competition(DIGITS, cfg, label, ["digits", "--scheduler", "local:2"], options)
    return here, cluster, marker, cfg


@pytest.mark.slow  # the module's two runs, one on a local Dask cluster
def test_cluster_run_matches_local_run(two_runs):
    here, cluster, _, _ = two_runs
    assert here != cluster
    assert (here / "folds.csv").read_bytes() == (cluster / "folds.csv").read_bytes()
    for name in ("oof.npy", "test.npy", "sklearn_test.npy"):
        local, remote = np.load(here / name), np.load(cluster / name)
        assert local.shape == remote.shape
        assert np.abs(local - remote).max() <= TOLERANCE, name
    local, remote = pd.read_csv(here / "submission.csv"), pd.read_csv(cluster / "submission.csv")
    assert local.equals(remote)


@pytest.mark.slow  # the module's two runs, one on a local Dask cluster
def test_killed_worker_is_retried_and_the_run_finishes(two_runs):
    _, cluster, marker, cfg = two_runs
    assert marker.is_file()  # a worker did die mid-unit
    assert all(is_complete(cluster, key) for key in all_units(cfg))
    record = json.loads((cluster / "run.json").read_text())
    assert record["status"] == "finished"
    assert any(entry.startswith("dask local:2") for entry in record["hardware"])
    log = (cluster / "train.log").read_text()
    assert "fold 0 seed 0: accuracy" in log and "fold 1 seed 0: accuracy" in log


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_scheduler_is_a_quick_one_line_user_error(digits_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT", "1s")
    cfg, label = load_config("digits", "smoke", overrides=TINY)
    address = f"tcp://127.0.0.1:{free_port()}"
    start = time.perf_counter()
    with pytest.raises(UserError, match="cannot connect") as error:
        run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), tmp_path, scheduler=address))
    assert time.perf_counter() - start < 20
    assert address in str(error.value) and "\n" not in str(error.value)
    assert not list(tmp_path.rglob("run.json"))  # refused before any run folder exists


@pytest.mark.parametrize("address", ["local:0", "local:two", "local", "nonsense address", "foo://host:1"])
def test_bad_scheduler_addresses(address, monkeypatch):
    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(UserError, match="--scheduler") as error, distributed.connect(address):
        pass
    assert "\n" not in str(error.value)


def test_local_workers_parses_only_local_addresses():
    assert distributed.local_workers("local:3") == 3
    assert distributed.local_workers("localhost:8786") is None
    assert distributed.local_workers("tcp://10.0.0.1:8786") is None


def test_workers_use_the_runs_own_thread_count():
    assert distributed.worker_environment(2)["TF_NUM_INTRAOP_THREADS"] == "2"
    assert distributed.worker_environment(2)["TF_NUM_INTEROP_THREADS"] == "2"


def test_keras_layer_seeds_ignore_other_users_of_global_random():
    """What the event loop's draws from `random` would otherwise change: the seeds Keras gives new layers."""
    import keras
    from keras.src.random.seed_generator import make_default_seed

    keras.utils.set_random_seed(7)
    expected = [make_default_seed() for _ in range(3)]
    with distributed.keras_private_python_random():
        keras.utils.set_random_seed(7)
        random.random()  # another thread's draw, in the worker
        assert [make_default_seed() for _ in range(3)] == expected


class FailedFuture:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def result(self):
        raise self.error


def test_worker_failures_a_user_can_fix_become_user_errors():
    missing = ModuleNotFoundError("No module named 'common'", name="common")
    key = UnitKey(1, 0)
    with pytest.raises(UserError, match="unit f1-s0: a dask worker cannot import 'common'"):
        distributed.unit_result(FailedFuture(missing), key, "run1")
    with pytest.raises(UserError, match="--resume run1"):
        distributed.unit_result(FailedFuture(distributed.KilledWorker("unit-f1-s0", None, 3)), key, "run1")
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        distributed.unit_result(FailedFuture(ZeroDivisionError()), key, "run1")


def test_task_keys_name_the_unit_and_the_run():
    assert distributed.task_key("run1", UnitKey(2, 1)) == "unit-f2-s1-run1"
    assert distributed.task_key("run1", UnitKey(None, 0)) == "unit-all-s0-run1"  # a model on every row


def test_local_workers_can_share_one_gpu():
    environment = distributed.worker_environment(1)
    assert environment["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"  # JAX would take 75% of the GPU per worker
    assert environment["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
