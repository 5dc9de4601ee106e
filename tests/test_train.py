"""common/training/train.py: the compiled training wrapper; with `ema`, the averaged weights are the ones kept."""

from __future__ import annotations

import numpy as np
import pytest

from common.ground.config import Config
from common.ground.errors import UserError
from common.training.backend import setup_hardware
from common.training.batches import TrainBatches
from common.training.train import compiled_model


def test_with_ema_the_plain_model_ends_with_the_averaged_weights():
    cfg = Config(model="mlp", epochs=2, batch_size=64, ema=0.5)
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (256, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 256)
    batches = TrainBatches(images, labels, cfg, seed=0)
    model, trainer = compiled_model(cfg, len(batches), setup_hardware(cfg))
    trainer.fit(batches, epochs=cfg.epochs, shuffle=False, verbose=0)
    averages = [np.asarray(v) for v in trainer.optimizer._model_variables_moving_average]  # Keras 3.15 internals
    assert len(averages) == len(model.trainable_weights)
    for weight, average in zip(model.trainable_weights, averages, strict=True):
        np.testing.assert_allclose(np.asarray(weight), average, rtol=1e-6)


def test_ema_momentum_must_be_below_one():
    with pytest.raises(UserError, match="ema"):
        Config(ema=1.0)
