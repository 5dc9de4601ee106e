"""Training units on a dask.distributed cluster: one task per unit, each saved here the moment it returns.

Workers load the competition themselves (from --data-dir as they see it, or their own data/ folder; parsed
arrays are cached by file fingerprint), so only a config, a unit key and the results cross the network.
A unit seeds its model and its augmentation, so it trains the same on any worker; a unit whose worker dies
is retried elsewhere by Dask. `--scheduler local:N` starts N worker processes on this machine instead.

Workers on other machines must be able to import this project: start them from its folder, for example
`cd digit-pipeline && dask worker tcp://HOST:8786 --nthreads 1` (one unit per process at a time).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from distributed import Client, Future, LocalCluster, as_completed
from distributed.comm import parse_address
from distributed.comm.registry import get_backend
from distributed.scheduler import KilledWorker

from common.data.files import load_dataset
from common.data.trainset import prepare_train_set
from common.ground.config import Config
from common.ground.errors import UserError, first_line
from common.ground.quiet import QUIET_ENVIRONMENT, load_keras_quietly
from common.ground.spec import get_spec
from common.runs.units import UnitKey, UnitOutput

log = logging.getLogger("digits")

CONNECT_TIMEOUT = "20s"  # for the scheduler to answer, and then for its first worker to be there
RETRIES = 2  # a task that raises is run again this many times (a dead worker is retried by Dask anyway)


# ---------------------------------------------------------------------------
# Connecting: a scheduler address, or local:N worker processes on this machine
# ---------------------------------------------------------------------------


def local_workers(address: str) -> int | None:
    """N for 'local:N'; None for a scheduler address. Cheap: call it to check --scheduler before a run starts."""
    if address != "local" and not address.startswith("local:"):
        return None
    count = address.removeprefix("local").removeprefix(":")
    if not count.isdigit() or int(count) < 1:
        raise UserError(f"--scheduler {address}: expected local:N with N a positive number of workers, e.g. local:2")
    return int(count)


def check_reachable(address: str) -> None:
    """UserError unless the scheduler at `address` answers and has a worker: checked before any run folder exists
    (a local:N cluster is started when the run trains)."""
    if local_workers(address) is None:
        with connect(address):
            pass


def worker_environment(threads: int) -> dict[str, str]:
    """Each worker runs a unit with the run's own thread count (`threads` in config.yaml), as a local run does,
    so its results are the same; local workers then share the cores. TensorFlow reads these when it starts."""
    threads = str(threads)
    quiet = {name: os.environ.get(name, value) for name, value in QUIET_ENVIRONMENT.items()}  # what the user set
    # Several local workers may share one GPU (a unit of these small CNNs keeps an H200 mostly idle): each takes
    # GPU memory as it needs it, instead of JAX's 75% at start or TensorFlow's all of it.
    sharing = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    return {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads} | quiet | sharing


@contextmanager
def connect(address: str, threads: int = 1) -> Iterator[Client]:
    """A client of the scheduler at `address`, or of a LocalCluster closed on exit."""
    n_workers = local_workers(address)
    with ExitStack() as stack:
        try:
            if n_workers:
                # memory_limit=0: TensorFlow holds on to memory, which Dask would take for a leak and kill.
                cluster = LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    memory_limit=0,
                    dashboard_address=None,
                    env=worker_environment(threads),
                    silence_logs=logging.ERROR,  # its warnings are Dask's business (a slow worker teardown killed)
                )
                stack.enter_context(cluster)
                client = stack.enter_context(Client(cluster))
            else:
                get_backend(parse_address(address)[0])  # an unknown scheme fails before Dask starts an IO loop
                client = stack.enter_context(Client(address, timeout=CONNECT_TIMEOUT))
        except (OSError, ValueError, TimeoutError) as error:
            raise UserError(
                f"--scheduler {address}: cannot connect (expected tcp://HOST:PORT or local:N): {first_line(error)}"
            ) from None
        wait_for_a_worker(client, address)
        try:
            yield client
        except (KeyboardInterrupt, GeneratorExit):
            if n_workers:
                close_at_once_if_stopping(cluster)
            raise


def close_at_once_if_stopping(cluster: LocalCluster) -> None:
    """After Ctrl-C or SIGTERM, every local worker is given 0.4 s to end, then killed (Dask's own close, all at
    once), not the 4 s a plain close gives the unit each one trains: those units are trained again on resume. A
    killed worker not yet reaped in the time left (a busy machine) is reaped by the cluster's close."""
    from common.training.signals import run_is_stopping  # late: it loads Keras, and workers import this module

    async def close_all() -> None:
        workers = list(cluster.workers.values())
        await asyncio.gather(*(worker.close(timeout=0.5) for worker in workers), return_exceptions=True)

    if run_is_stopping():
        cluster.sync(close_all)


def wait_for_a_worker(client: Client, address: str) -> None:
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except TimeoutError:
        raise UserError(
            f"--scheduler {address}: the scheduler has no workers; start some with `dask worker {address}` "
            "in the project folder"
        ) from None


# ---------------------------------------------------------------------------
# On a worker: one unit
# ---------------------------------------------------------------------------

# Keras seeds and the precision policy are process-wide, so a worker with several threads trains one unit at a time.
ONE_UNIT_AT_A_TIME = threading.Lock()


def train_unit_task(competition: str, data_dir: str | None, cfg_values: dict, key: UnitKey) -> UnitOutput:
    """Runs on a worker: loads the competition there, trains the unit `key`, returns its outputs."""
    load_keras_quietly()  # first, before anything loads TensorFlow: its start-up lines off the worker's stderr
    from common.training.backend import setup_hardware
    from common.training.unit import fit_units

    cfg = Config(**cfg_values)
    with ONE_UNIT_AT_A_TIME, keras_private_python_random():
        data, train = prepare_train_set(load_dataset(get_spec(competition), data_dir), cfg)
        return fit_units(cfg, [key], train, data, setup_hardware(cfg))[0]


@contextmanager
def keras_private_python_random() -> Iterator[None]:
    """Gives Keras a Python random generator of its own while a unit trains.

    Keras draws the seeds of unseeded layers (initialisers, dropout) from Python's global `random`, which the
    worker's event loop draws from too, in another thread (heartbeat jitter, back-off). Without this the same
    unit builds different initial weights on every run. keras.utils.set_random_seed seeds the private
    generator instead, so a unit gets exactly the layer seeds it gets in a process without Dask.
    """
    from keras.src.random import seed_generator  # Keras 3.15 internals; checked by tests/test_distributed.py
    from keras.src.utils import rng_utils

    saved = seed_generator.python_random, rng_utils.random
    seed_generator.python_random = rng_utils.random = random.Random()
    try:
        yield
    finally:
        seed_generator.python_random, rng_utils.random = saved


# ---------------------------------------------------------------------------
# In the client: submit, then save each unit as it completes
# ---------------------------------------------------------------------------


def submit_units(
    client: Client, run_id: str, cfg: Config, todo: list[UnitKey], competition: str, data_dir: str | None
) -> dict[Future, UnitKey]:
    futures = {}
    for key in todo:
        future = client.submit(
            train_unit_task,
            competition,
            data_dir,
            cfg.to_dict(),
            key,
            retries=RETRIES,
            pure=False,
            key=task_key(run_id, key),
        )
        futures[future] = key
    return futures


def task_key(run_id: str, key: UnitKey) -> str:
    """The Dask task's name: the unit's folder name and the run's id, unique on a shared scheduler."""
    return f"unit-{key.name}-{run_id}"


def unit_result(future: Future, key: UnitKey, run_id: str) -> UnitOutput:
    """The unit's outputs; the ways a cluster fails that a user can fix become one-line UserErrors."""
    unit = f"unit {key.name}"
    try:
        return future.result()
    except ModuleNotFoundError as error:
        raise UserError(
            f"{unit}: a dask worker cannot import {error.name!r}: start workers in the project folder, "
            "with requirements.txt installed"
        ) from None
    except KilledWorker:
        raise UserError(
            f"{unit}: its workers kept dying (out of memory?); see the worker logs, then --resume {run_id}"
        ) from None


def train_on_cluster(
    address: str, run_id: str, cfg: Config, todo: list[UnitKey], competition: str, data_dir: str | None
) -> Iterator[tuple[UnitKey, UnitOutput]]:
    """The units `todo`, trained on a Dask cluster, yielded as they complete (in any order)."""
    with connect(address, cfg.threads) as client:
        log.info("training %d unit(s) on %d dask worker(s) (%s)", len(todo), len(client.nthreads()), address)
        futures = submit_units(client, run_id, cfg, todo, competition, data_dir)
        for future in as_completed(futures):
            key = futures.pop(future)
            yield key, unit_result(future, key, run_id)
