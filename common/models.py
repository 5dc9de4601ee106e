"""The model registry: a name maps to a builder (config -> uncompiled keras.Model).

Every model takes uint8 images (28, 28, 1), rescales them itself, and ends in a float32 softmax
(so mixed precision never reaches the probabilities).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from common.config import Config
from common.errors import UserError
from common.spec import IMAGE_SHAPE, N_CLASSES

ModelBuilder = Callable[[Config], keras.Model]
MODELS: dict[str, ModelBuilder] = {}


def register_model(builder: ModelBuilder) -> ModelBuilder:
    """Decorator: registers `builder` under its function name."""
    MODELS[builder.__name__] = builder
    return builder


def require_model(name: str) -> ModelBuilder:
    """The builder registered as `name`; raises UserError on an unknown name."""
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}: expected one of {', '.join(sorted(MODELS))}")
    return MODELS[name]


def create_model(name: str, cfg: Config) -> keras.Model:
    """Builds the registered model `name`; raises UserError on an unknown name."""
    return require_model(name)(cfg)


def _inputs() -> tuple[keras.KerasTensor, keras.KerasTensor]:
    inputs = keras.Input(IMAGE_SHAPE, dtype="uint8", name="image")
    return inputs, layers.Rescaling(1 / 255.0)(inputs)


def _head(x: keras.KerasTensor, dropout: float) -> keras.KerasTensor:
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(N_CLASSES)(x)
    return layers.Activation("softmax", dtype="float32", name="probabilities")(x)


def _conv_bn(x: keras.KerasTensor, filters: int, kernel: int, strides: int = 1, padding: str = "valid"):
    # Conv -> ReLU -> BatchNorm, the order of Chris Deotte's kernel. Momentum 0.9 (not Keras' 0.99) so the
    # moving statistics settle within the few hundred steps of a small or short run.
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, activation="relu")(x)
    return layers.BatchNormalization(momentum=0.9)(x)


@register_model
def deotte(cfg: Config) -> keras.Model:
    """Chris Deotte's digit-recognizer CNN: 32C3-32C3-32C5S2, 64C3-64C3-64C5S2, 128C4, BatchNorm, Dropout."""
    inputs, x = _inputs()
    w = cfg.width
    for filters in (w, 2 * w):
        x = _conv_bn(x, filters, 3)
        x = _conv_bn(x, filters, 3)
        x = _conv_bn(x, filters, 5, strides=2, padding="same")
        x = layers.Dropout(cfg.dropout)(x)
    x = _conv_bn(x, 4 * w, 4)
    x = layers.Flatten()(x)
    return keras.Model(inputs, _head(x, cfg.dropout), name="deotte")


@register_model
def small(cfg: Config) -> keras.Model:
    """A small, fast 3-conv net: for smoke runs and tests, about 20x cheaper than `deotte`."""
    inputs, x = _inputs()
    w = max(cfg.width // 2, 8)
    x = _conv_bn(x, w, 3, padding="same")
    x = layers.MaxPooling2D()(x)
    x = _conv_bn(x, 2 * w, 3, padding="same")
    x = layers.MaxPooling2D()(x)
    x = _conv_bn(x, 4 * w, 3, padding="same")
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, _head(x, cfg.dropout), name="small")
