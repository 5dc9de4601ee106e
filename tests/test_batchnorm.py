"""common/training/batchnorm.py: the fused training view steps BatchNorm as Keras' own layer does."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from common.training.batchnorm import FusedBatchNorm, fused_view

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the fused kernel is TensorFlow's")


def small_model(seed: int = 1) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, activation="relu")(inputs)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.Conv2D(6, 3)(x)
    x = layers.BatchNormalization(momentum=0.8, center=False)(x)
    return keras.Model(inputs, layers.Dense(2)(layers.Flatten()(x)))


def batches(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(2.0, 3.0, (16, 8, 8, 3)).astype("float32") for _ in range(n)]


def train_step(model: keras.Model, forward: keras.Model, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    import tensorflow as tf

    with tf.GradientTape() as tape:
        y = forward(x, training=True)
        loss = tf.reduce_sum(y**2)
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]


def moving_statistics(model: keras.Model) -> list[np.ndarray]:
    return [v.numpy() for v in model.non_trainable_variables]


def test_the_view_shares_every_weight_and_fuses_each_batch_norm():
    model = small_model()
    view = fused_view(model)
    assert sum(isinstance(layer, FusedBatchNorm) for layer in view.layers) == 2
    assert {id(v) for v in view.weights} == {id(v) for v in model.weights}


def test_training_steps_outputs_gradients_and_moving_statistics_match_keras_layer():
    keras_model, fused_model = small_model(), small_model()
    view = fused_view(fused_model)
    for x in batches():
        expected, expected_gradients = train_step(keras_model, keras_model, x)
        got, gradients = train_step(fused_model, view, x)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
        for g, e in zip(gradients, expected_gradients, strict=True):
            np.testing.assert_allclose(g, e, rtol=1e-3, atol=1e-3)
    for got, expected in zip(moving_statistics(fused_model), moving_statistics(keras_model), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    x = batches(1)[0]
    np.testing.assert_allclose(view(x, training=False), keras_model(x, training=False), rtol=1e-4, atol=1e-4)


def test_a_trained_model_saves_and_loads_as_plain_keras(tmp_path):
    model = small_model()
    view = fused_view(model)
    view.compile(optimizer="adam", loss="mse")
    x = batches(1)[0]
    view.fit(x, np.zeros((16, 2), "float32"), epochs=2, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)  # no custom objects
    assert not any(isinstance(layer, FusedBatchNorm) for layer in loaded.layers)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_a_frozen_batch_norm_keeps_its_statistics():
    model = small_model()
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    before = moving_statistics(model)
    fused_view(model)(batches(1)[0], training=True)
    for got, expected in zip(moving_statistics(model), before, strict=True):
        np.testing.assert_array_equal(got, expected)
