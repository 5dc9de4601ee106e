"""BatchNormalization through TensorFlow's fused kernel while a model trains; Keras' own layer everywhere else.

Keras 3's BatchNormalization computes a training step's statistics with `tf.nn.moments`, normalises with
`tf.nn.batch_normalization` and updates its moving statistics with more ops: a dozen small kernels forward and
more backward, where TensorFlow has one (`FusedBatchNormV3`, oneDNN on a CPU, cuDNN on a GPU) and one for the
gradient. On the default CNN's seven BatchNorm layers that is about a third of a training step on 2 CPU cores
(docs/results.md, "Training speed").

`fused_view(model)` is the model as the training wrapper calls it: the same layers, each BatchNormalization
behind a `FusedBatchNorm` that holds the layer itself and trains its variables through the fused kernel. No
weight is copied: the plain model trains in place, and what is saved and predicted with stays Keras' own layers,
which load anywhere without this project. On other backends the view is the model itself (JAX fuses the ops
through XLA). tests/test_batchnorm.py checks the outputs, gradients and moving statistics against Keras' layer.
"""

from __future__ import annotations

import keras
from keras import layers, ops


class FusedBatchNorm(keras.layers.Layer):
    """A BatchNormalization layer's training step through `FusedBatchNormV3`: batch statistics, normalisation and
    the moving-statistics update as Keras keeps them (momentum, biased variance); inference and frozen layers
    are the layer's own call."""

    def __init__(self, norm: layers.BatchNormalization, **kwargs) -> None:
        super().__init__(name=f"{norm.name}_fused", dtype=norm.dtype_policy, **kwargs)
        self.norm = norm

    def call(self, inputs, training=None, mask=None):
        norm = self.norm
        plain = mask is not None or norm.renorm or len(inputs.shape) != 4 or norm.axis not in (-1, 3)
        if plain or not (training and norm.trainable):
            return norm(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = ops.cast(inputs, "float32")  # as Keras' layer: the statistics in float32 under mixed precision
        channels = x.shape[-1]
        scale = norm.gamma if norm.scale else ops.ones((channels,))
        offset = norm.beta if norm.center else ops.zeros((channels,))
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, scale, offset, epsilon=norm.epsilon, data_format="NHWC", is_training=True
        )
        # The kernel returns the unbiased variance (n / (n - 1)); Keras' moving variance averages the biased one.
        n = ops.cast(ops.size(x) // channels, "float32")
        variance = variance * (n - 1.0) / n
        momentum = norm.momentum
        norm.moving_mean.assign(norm.moving_mean * momentum + mean * (1.0 - momentum))
        norm.moving_variance.assign(norm.moving_variance * momentum + variance * (1.0 - momentum))
        return ops.cast(y, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def fused_view(model: keras.Model) -> keras.Model:
    """`model` with each BatchNormalization behind a FusedBatchNorm, sharing every weight (TensorFlow); the model
    itself on other backends or when it has no BatchNormalization."""
    if keras.backend.backend() != "tensorflow" or not any(
        isinstance(layer, layers.BatchNormalization) for layer in model.layers
    ):
        return model

    def share_or_fuse(layer: keras.layers.Layer) -> keras.layers.Layer:
        return (
            FusedBatchNorm(layer) if isinstance(layer, layers.BatchNormalization) else layer
        )  # the layer itself: shared

    return keras.models.clone_model(model, clone_function=share_or_fuse)
