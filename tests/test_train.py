"""common/training/train.py: the compiled training wrapper; with `ema`, the averaged weights are the ones kept."""

from __future__ import annotations

import numpy as np
import pytest

from common.ground.config import Config
from common.ground.errors import UserError
from common.training.backend import setup_hardware
from common.training.batches import TrainBatches
from common.training.train import UnitJob, compiled_model


def tiny_training(cfg: Config, rows: int):
    """(plain model, compiled trainer, batches) of `rows` random images."""
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (rows, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, rows)
    batches = TrainBatches(images, labels, cfg, seed=0)
    return (*compiled_model(cfg, len(batches), setup_hardware(cfg)), batches)


def test_with_ema_the_plain_model_ends_with_the_averaged_weights():
    cfg = Config(model="mlp", epochs=2, batch_size=64, ema=0.5)
    model, trainer, batches = tiny_training(cfg, 256)
    trainer.fit(batches, epochs=cfg.epochs, shuffle=False, verbose=0)
    averages = [np.asarray(v) for v in trainer.optimizer._model_variables_moving_average]  # Keras 3.15 internals
    assert len(averages) == len(model.trainable_weights)
    for weight, average in zip(model.trainable_weights, averages, strict=True):
        np.testing.assert_allclose(np.asarray(weight), average, rtol=1e-6)


def test_ema_momentum_must_be_below_one():
    with pytest.raises(UserError, match="ema"):
        Config(ema=1.0)


def test_ema_and_early_stopping_are_refused_together():
    with pytest.raises(UserError, match="ema and early_stopping"):
        Config(ema=0.99, early_stopping=2)


def test_a_unit_traces_its_train_step_once_and_trains_as_without_the_early_build(monkeypatch):
    """build_before_fit creates the optimiser's and metrics' variables before fit, so TensorFlow traces the train
    function once, not twice; the trained weights are the same as when fit creates them itself."""
    import keras

    from common.training import train

    cfg = Config(model="mlp", epochs=1, batch_size=64)
    traces, step = [], keras.Model.train_step
    monkeypatch.setattr(keras.Model, "train_step", lambda self, data: traces.append(1) or step(self, data))
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (192, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 192)
    hardware = setup_hardware(cfg)
    job = UnitJob(cfg, 0, (images, labels), None, {"test": images[:8]})
    built, _ = train.train_unit(job, hardware)
    assert len(traces) == 1
    monkeypatch.setattr(train, "build_before_fit", lambda trainer, batches: None)
    unbuilt, _ = train.train_unit(job, hardware)
    assert len(traces) == 3  # built by fit itself: traced twice
    for a, b in zip(built.get_weights(), unbuilt.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
