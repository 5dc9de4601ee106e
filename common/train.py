"""Training one unit (one fold, one seed): fit, then predict the held-out fold and every other set.

This module knows no model by name and no folder: it takes arrays and returns probabilities.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from common.augment import eval_dataset, train_dataset, tta_views
from common.config import Config
from common.models import create_model
from common.transfer import warm_start
from common.units import UnitOutput


@dataclass(frozen=True)
class Hardware:
    """What the trainer runs on, decided once per process."""

    strategy: tf.distribute.Strategy
    jit_compile: bool
    description: str


def setup_hardware(cfg: Config) -> Hardware:
    """Mixed precision and XLA on GPUs (when 'auto'), MirroredStrategy across several GPUs."""
    gpus = tf.config.list_physical_devices("GPU")
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    mixed = cfg.mixed_precision == "on" or (cfg.mixed_precision == "auto" and bool(gpus))
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    jit = cfg.xla == "on" or (cfg.xla == "auto" and bool(gpus))
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    where = f"{len(gpus)} GPU(s)" if gpus else "CPU"
    return Hardware(strategy, jit, f"{where}, {'mixed_float16' if mixed else 'float32'}, XLA {'on' if jit else 'off'}")


def learning_rate(cfg: Config, steps_per_epoch: int) -> keras.optimizers.schedules.LearningRateSchedule:
    """onecycle: linear warm-up from lr/25 to lr, then cosine to zero (Keras' CosineDecay with warm-up).
    exponential: lr * lr_decay ** epoch, as in Chris Deotte's kernel."""
    if cfg.schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(cfg.lr, steps_per_epoch, cfg.lr_decay, staircase=True)
    total_steps = steps_per_epoch * cfg.epochs
    warmup = int(total_steps * cfg.warmup_fraction)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.lr / 25,
        decay_steps=max(total_steps - warmup, 1),
        warmup_target=cfg.lr,
        warmup_steps=warmup,
    )


def compiled_model(cfg: Config, steps_per_epoch: int, hardware: Hardware, init: Path | None = None) -> keras.Model:
    """The config's model, optionally warm-started from a saved model (`init`), compiled for training."""
    with hardware.strategy.scope():
        model = create_model(cfg.model, cfg)
        if init is not None:
            warm_start(model, init, cfg.freeze_convs)
        optimizer = keras.optimizers.AdamW(
            learning_rate=learning_rate(cfg, steps_per_epoch), weight_decay=cfg.weight_decay
        )
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
            metrics=["accuracy"],
            jit_compile=hardware.jit_compile,
        )
    return model


def epoch_callbacks(cfg: Config, progress: keras.callbacks.Callback | None) -> list[keras.callbacks.Callback]:
    callbacks = [progress] if progress else []
    if cfg.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.early_stopping, restore_best_weights=True)
        )
    return callbacks


def predict_probabilities(model: keras.Model, images: np.ndarray, tta: int = 0) -> np.ndarray:
    """(n, 10) float32 softmax, averaged over the images and `tta` shifted views of them."""
    views = tta_views(images, tta)
    total = sum(model.predict(eval_dataset(view), verbose=0).astype(np.float64) for view in views)
    return (total / len(views)).astype(np.float32)


def train_unit(
    cfg: Config,
    seed: int,
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    predict: dict[str, np.ndarray],
    hardware: Hardware,
    progress: keras.callbacks.Callback | None = None,
    init: Path | None = None,
) -> tuple[keras.Model, UnitOutput]:
    """Fits a fresh model (or one started from the saved model `init`) on `train`, validates on `valid`,
    returns probabilities for valid and `predict`."""
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    steps_per_epoch = max(len(train[0]) // cfg.batch_size, 1)
    model = compiled_model(cfg, steps_per_epoch, hardware, init)
    fitted = model.fit(
        train_dataset(*train, cfg, seed),
        steps_per_epoch=steps_per_epoch,
        epochs=cfg.epochs,
        validation_data=eval_dataset(*valid),
        callbacks=epoch_callbacks(cfg, progress),
        verbose=0,
    )
    sets = {"valid": valid[0], **predict}
    probabilities = {name: predict_probabilities(model, x, cfg.tta) for name, x in sets.items()}
    history = pd.DataFrame(fitted.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    return model, UnitOutput(probabilities, history, time.perf_counter() - start)
