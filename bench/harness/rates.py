"""Training speed: the model alone against the trainer, taking turns, and a finished run's units as timed.

Keras is imported inside the functions that train: a script that only reads run folders loads none of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from common import runs
from common.ground.config import Config
from common.ground.errors import UserError
from common.ground.spec import N_CLASSES
from common.runs.units import all_units, is_complete, load_unit

SPEED_ROUNDS = 5  # rounds of the model alone and the trainer, taking turns (bench/speed.py)


def interleaved_rates(fits: dict[str, Any], images: int, rounds: int) -> dict[str, list[float]]:
    """Images per second of each fit in each round, the fits taking turns (the machine's speed drifts), after
    one untimed call each (tracing, compiling, warm-up)."""
    for fit in fits.values():
        fit()
    rates: dict[str, list[float]] = {name: [] for name in fits}
    for _ in range(rounds):
        for name, fit in fits.items():
            start = time.perf_counter()
            fit()
            rates[name].append(images / (time.perf_counter() - start))
    return rates


def random_batches(cfg: Config, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """`steps` batches of random uint8 images and labels: a training step's time does not depend on the pixels."""
    rng = np.random.default_rng(0)
    n = steps * cfg.batch_size
    return rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), rng.integers(0, N_CLASSES, n)


def model_alone_fit(cfg: Config, hardware, images: np.ndarray, labels: np.ndarray) -> Callable[[], Any]:
    """One epoch of the config's model alone over arrays in memory (no augmentation), compiled as for training."""
    from common.training.models import create_model
    from common.training.train import compile_for_training

    one_hot = np.eye(N_CLASSES, dtype=np.float32)[labels]
    alone = compile_for_training(create_model(cfg.model, cfg), cfg, len(images) // cfg.batch_size, hardware)
    return lambda: alone.fit(images, one_hot, batch_size=cfg.batch_size, shuffle=False, verbose=0)


def model_rates(cfg: Config, steps: int, rounds: int = SPEED_ROUNDS) -> dict[str, Any]:
    """Median images per second of the model alone (arrays in memory) and of the training wrapper
    (TrainBatches, in-graph affine), with every round's rate."""
    import keras

    from common.training.backend import setup_hardware
    from common.training.batches import TrainBatches
    from common.training.train import compiled_model

    hardware = setup_hardware(cfg)
    images, labels = random_batches(cfg, steps)
    _, trainer = compiled_model(cfg, steps, hardware)
    batches = TrainBatches(images, labels, cfg, seed=0)
    fits = {
        "model_alone": model_alone_fit(cfg, hardware, images, labels),
        "model_in_trainer": lambda: trainer.fit(batches, shuffle=False, verbose=0),
    }
    rates = interleaved_rates(fits, len(images), rounds)
    keras.backend.clear_session()
    return {name: float(np.median(values)) for name, values in rates.items()} | {
        "rounds": rates,
        "hardware": hardware.description,
    }


def unit_rows(run: runs.Run) -> list[dict[str, Any]]:
    """Per unit: rows trained, epochs, seconds in and out of the epochs, TTA's share of the prediction."""
    cfg = run.cfg
    rows = []
    for key in all_units(cfg):
        if not is_complete(run.folder, key):
            continue
        unit = load_unit(run.folder, key)
        if unit.images_trained is None:
            raise UserError(f"{run.unit_dir(key)}: trained before units recorded their timings; train the run again")
        trained, seconds, epochs = unit.images_trained, unit.seconds, unit.epoch_seconds
        # Every view costs the same; the predict compilation is charged to TTA in proportion (an upper bound).
        tta = unit.predict_seconds * cfg.tta / (cfg.tta + 1)
        rows.append(
            {
                "unit": run.unit_dir(key).name,
                "images_trained": trained,
                "seconds": seconds,
                "epoch_seconds": epochs,
                "tta_seconds": round(tta, 2),
                "outside_epochs_share": (seconds - epochs - tta) / (seconds - tta),
                "images_per_second": trained / epochs,
                "median_epoch_images_per_second": median_epoch_rate(unit.history, trained),
            }
        )
    return rows


def median_epoch_rate(history, trained: int) -> float | None:
    """The median epoch's images per second, the first epoch (tracing) left out; None without epoch times."""
    if "seconds" not in history or len(history) < 2:
        return None
    return float(trained / len(history) / history["seconds"].iloc[1:].median())
