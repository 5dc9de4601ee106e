"""common/training/models.py: every registered model builds and trains one step on random 28x28 input."""

from __future__ import annotations

import numpy as np
import pytest

from common.ground.config import Config
from common.ground.errors import UserError
from common.ground.model_keys import MODEL_READS, check_model_keys
from common.training.models import MODELS, create_model, register_model


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


def test_register_model_adds_a_builder_listed_in_model_reads(monkeypatch):
    def tiny_test_model(cfg):
        return create_model("small", cfg)

    with pytest.raises(ValueError, match="add 'tiny_test_model' and the keys it reads to MODEL_READS first"):
        register_model(tiny_test_model)
    monkeypatch.setitem(MODEL_READS, "tiny_test_model", frozenset({"width"}))
    monkeypatch.setitem(MODELS, "tiny_test_model", None)  # taken out again after the test
    assert register_model(tiny_test_model) is tiny_test_model and MODELS["tiny_test_model"] is tiny_test_model


def test_every_listed_model_is_registered():
    assert set(MODELS) == set(MODEL_READS)


def test_a_model_shape_key_the_model_ignores_is_refused_when_the_user_set_it():
    with pytest.raises(UserError) as refused:
        check_model_keys("mlp", {"width", "epochs"})
    assert str(refused.value) == (
        "config: model mlp does not read width (it reads dropout only); leave it out or choose a model that reads width"
    )
    with pytest.raises(UserError, match=r"model lenet5 does not read width or dropout \(it reads neither width nor"):
        check_model_keys("lenet5", {"width", "dropout"})
    check_model_keys("lenet5", {"epochs", "lr"})  # keys every model's training reads
    check_model_keys("deotte", {"width", "dropout"})
