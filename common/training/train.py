"""Training one unit (one fold, one seed) on any Keras backend: fit, then predict every set in one pass.

The model that trains is a training-only wrapper: uint8 batch -> RandomAffine (in the graph) -> the plain
model. The plain model is what is returned, saved and predicted with, so saved models stay plain Keras models
that load on any backend. This module knows no model by name and no folder: arrays in, probabilities out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from common.ground.config import Config
from common.ground.spec import IMAGE_SHAPE, N_CLASSES
from common.runs.layout import VALID
from common.runs.units import UnitOutput
from common.training.augment import AffineRanges, RandomAffine, tta_views
from common.training.backend import Hardware
from common.training.batches import TrainBatches, padded
from common.training.batchnorm import fused_view
from common.training.models import create_model
from common.training.signals import StopAtBatchEnd
from common.training.transfer import warm_start

PREDICT_BATCH = 1024


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


def training_wrapper(
    model: keras.Model, cfg: Config, seed: int, hardware: Hardware, name: str | None = None
) -> keras.Model:
    """image -> RandomAffine (training only, seeded) -> model, its BatchNorm through the fused kernel where the
    hardware has it (common/training/batchnorm.py); shares the model's weights, adds none."""
    inputs = keras.Input(IMAGE_SHAPE, dtype="uint8", name="image")
    affine = RandomAffine(AffineRanges.from_config(cfg), seed, hardware.affine_kernel, name="random_affine")
    trained = fused_view(model) if hardware.fused_batch_norm else model
    return keras.Model(inputs, trained(affine(inputs)), name=name or f"{model.name}_training")


def compile_for_training(
    model: keras.Model, cfg: Config, steps_per_epoch: int, hardware: Hardware, outputs: Sequence[str] = ()
) -> keras.Model:
    """`model` compiled with the config's optimiser, schedule and loss; a model of several named `outputs` (a
    stack of units) sums their losses and scores each output's accuracy."""
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=learning_rate(cfg, steps_per_epoch),
            weight_decay=cfg.weight_decay,
            use_ema=cfg.ema > 0,  # the averaged weights replace the trained ones when fit ends
            ema_momentum=cfg.ema or 0.99,
        ),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),  # each output's, summed
        metrics={name: ["accuracy"] for name in outputs} if outputs else ["accuracy"],
        jit_compile=hardware.jit_compile,
    )
    return model


def fresh_model(cfg: Config, init: Path | None, seed: int) -> keras.Model:
    """The plain model, its initial weights (and its dropout layers' seeds) drawn from `seed`; optionally
    warm-started from the saved model `init`."""
    keras.utils.set_random_seed(seed)
    model = create_model(cfg.model, cfg)
    if init is not None:
        warm_start(model, init, cfg.freeze_convs)
    return model


def compiled_model(
    cfg: Config, steps_per_epoch: int, hardware: Hardware, init: Path | None = None, seed: int = 0
) -> tuple[keras.Model, keras.Model]:
    """(plain model, its compiled training wrapper); the plain model optionally warm-started from `init`."""
    model = fresh_model(cfg, init, seed)
    return model, compile_for_training(training_wrapper(model, cfg, seed, hardware), cfg, steps_per_epoch, hardware)


class EpochTimer(keras.callbacks.Callback):
    """Seconds spent inside each training epoch (validation included when early stopping asks for it), to tell
    them from everything else a unit does; they go into the history as `seconds`."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[float] = []

    @property
    def seconds(self) -> float:
        return sum(self.epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(time.perf_counter() - self.started)


def predict_sets(model: keras.Model, sets: dict[str, np.ndarray], tta: int = 0) -> dict[str, np.ndarray]:
    """Every set's (n, 10) float32 softmax, averaged over the image and `tta` shifted views, in one predict call
    of fixed-shape batches: one compilation per unit whatever the sets' sizes."""
    names = list(sets)
    views = [tta_views(sets[name], tta) for name in names]
    stacked = np.concatenate([view for per_set in views for view in per_set])
    batches = padded(stacked, PREDICT_BATCH)
    out = model.predict(batches, batch_size=PREDICT_BATCH, verbose=0, callbacks=[StopAtBatchEnd()])[: len(stacked)]
    result, start = {}, 0
    for name, per_set in zip(names, views, strict=True):
        n = len(sets[name])
        chunks = [out[start + i * n : start + (i + 1) * n].astype(np.float64) for i in range(len(per_set))]
        result[name] = (sum(chunks) / len(chunks)).astype(np.float32)
        start += n * len(per_set)
    return result


def predict_probabilities(model: keras.Model, images: np.ndarray, tta: int = 0) -> np.ndarray:
    """(n, 10) float32 softmax, averaged over the images and `tta` shifted views of them."""
    return predict_sets(model, {"images": images}, tta)["images"]


def fit_callbacks(
    cfg: Config, progress: keras.callbacks.Callback | None, timer: EpochTimer, log_dir: Path | None = None
) -> list:
    callbacks = [timer, *([progress] if progress else [])]  # after the timer: their time is not an epoch's
    if cfg.tensorboard and log_dir is not None:  # the unit's folder: curves to watch live with `tensorboard --logdir`
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False))  # scalars per epoch
    if cfg.early_stopping:
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.early_stopping, restore_best_weights=True)
        callbacks.append(stop)
    return callbacks


def final_history(
    metrics: dict[str, list], seconds: list[float], valid: tuple | None, probs: np.ndarray | None
) -> pd.DataFrame:
    """Each epoch's training metrics (Keras' history) and seconds; without early stopping the fold is scored
    once, after the last epoch (from the unit's own held-out probabilities: with `tta`, the averaged views). A
    model trained on every row (`valid` None) has no validation columns."""
    history = pd.DataFrame(metrics)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    history["seconds"] = np.round(seconds[: len(history)], 3)
    if valid is not None and "val_loss" not in history:
        picked = np.clip(probs[np.arange(len(valid[1])), valid[1]], 1e-7, 1.0)
        history.loc[history.index[-1], "val_loss"] = float(-np.log(picked).mean())
        history.loc[history.index[-1], "val_accuracy"] = float(np.mean(probs.argmax(axis=1) == valid[1]))
    return history


def build_before_fit(trainer: keras.Model, batches: TrainBatches) -> None:
    """Creates the optimiser's and the metrics' variables from one batch's shapes before `fit`: Keras' own
    symbolic build, which its JAX and torch trainers run first. TensorFlow's trainer otherwise creates them inside
    the first trace of its train function, which TensorFlow then traces again (a second or more per unit on a
    CPU, an XLA compilation more with jit). Keras 3.15 internals; tests/test_train.py checks one trace."""
    trainer._symbolic_build(data_batch=batches.sample())


@dataclass(frozen=True)
class UnitJob:
    """One unit to train, everything it needs together: its config (a full-data model's own epochs and width),
    seed, the rows it trains on, its held-out rows (None for a full-data model), the sets it predicts, the saved
    model it starts from (None: fresh weights) and its TensorBoard folder (None: no logs)."""

    cfg: Config
    seed: int
    train: tuple[np.ndarray, np.ndarray]
    valid: tuple[np.ndarray, np.ndarray] | None
    predict: dict[str, np.ndarray]
    init: Path | None = None
    log_dir: Path | None = None


def train_unit(
    job: UnitJob, hardware: Hardware, progress: keras.callbacks.Callback | None = None
) -> tuple[keras.Model, UnitOutput]:
    """Fits a fresh model (or one started from the saved model `job.init`) on `job.train`; returns the plain
    model and probabilities for `job.valid` (no "valid" array for a model trained on every row) and every set of
    `job.predict`. The fold is validated every epoch only when early stopping needs it."""
    start = time.perf_counter()
    cfg, valid = job.cfg, job.valid
    batches = TrainBatches(*job.train, cfg, job.seed)
    model, trainer = compiled_model(cfg, len(batches), hardware, job.init, job.seed)
    build_before_fit(trainer, batches)
    timer = EpochTimer()
    watched = cfg.early_stopping and valid is not None
    validation = (valid[0], np.eye(N_CLASSES, dtype=np.float32)[valid[1]]) if watched else None
    fitted = trainer.fit(
        batches,
        epochs=cfg.epochs,
        validation_data=validation,
        validation_batch_size=PREDICT_BATCH,
        shuffle=False,  # TrainBatches shuffles rows from the seed; Keras would draw from Python's `random`
        callbacks=[*fit_callbacks(cfg, progress, timer, job.log_dir), StopAtBatchEnd()],  # Ctrl-C, SIGTERM
        verbose=0,
    )
    trained = TrainedModel(model, fitted.history, timer.epochs, len(batches) * batches.batch_size)
    return model, predicted_unit(trained, cfg, valid, job.predict, start)


@dataclass(frozen=True)
class TrainedModel:
    """A fitted plain model and what its fit recorded: Keras' history, each epoch's seconds, images per epoch."""

    model: keras.Model
    metrics: dict[str, list]
    epoch_seconds: list[float]
    images_per_epoch: int


def predicted_unit(
    trained: TrainedModel, cfg: Config, valid: tuple | None, predict: dict[str, np.ndarray], start: float
) -> UnitOutput:
    """A fitted model's unit: it predicts its held-out rows (if any) and every set of `predict`; its history and
    timings (`start`: when the unit began, by time.perf_counter)."""
    predicting = time.perf_counter()
    held_out = {} if valid is None else {VALID: valid[0]}
    probabilities = predict_sets(trained.model, {**held_out, **predict}, cfg.tta)
    done = time.perf_counter()
    history = final_history(trained.metrics, trained.epoch_seconds, valid, probabilities.get(VALID))
    timings = {
        "epoch_seconds": sum(trained.epoch_seconds),
        "predict_seconds": done - predicting,
        "images_trained": trained.images_per_epoch * len(history),
    }
    return UnitOutput(probabilities, history, done - start, **timings)
