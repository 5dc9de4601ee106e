"""common/training/models.py: every registered model builds and trains one step on random 28x28 input."""

from __future__ import annotations

import numpy as np
import pytest

from common.ground.config import Config
from common.ground.errors import UserError
from common.training.models import MODEL_KEYS, MODELS, check_model_keys, create_model, register_model


# The two largest take seconds each to build and trace: with the slow tests.
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.slow) if name in ("deotte", "vgg6", "vgg8") else name
        for name in sorted(MODELS)
    ],
)
def test_model_builds_and_trains_one_step(name):
    model = create_model(name, Config(model=name))
    images = np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1), dtype=np.uint8)
    targets = np.eye(10, dtype=np.float32)[np.arange(8) % 10]
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(images, targets)
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    probabilities = model.predict(images, verbose=0)
    assert probabilities.shape == (8, 10) and probabilities.dtype == np.float32
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_unknown_model_name_raises():
    with pytest.raises(UserError, match="unknown model 'resnet9000': expected one of .*deotte"):
        create_model("resnet9000", Config())


def test_register_model_adds_a_builder_under_its_name():
    def tiny_test_model(cfg):
        return create_model("small", cfg)

    try:
        register_model(reads=("width",))(tiny_test_model)
        assert MODELS["tiny_test_model"] is tiny_test_model and MODEL_KEYS["tiny_test_model"] == {"width"}
    finally:
        MODELS.pop("tiny_test_model", None)
        MODEL_KEYS.pop("tiny_test_model", None)


def test_a_model_shape_key_the_model_ignores_is_refused_when_the_user_set_it():
    with pytest.raises(UserError, match="model lenet5 does not use width"):
        check_model_keys("lenet5", {"width", "epochs"})
    check_model_keys("lenet5", {"epochs", "lr"})  # keys every model's training reads
    check_model_keys("deotte", {"width", "dropout"})
    with pytest.raises(ValueError, match="not model-shape keys"):
        register_model(reads=("lr",))
