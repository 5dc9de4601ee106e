"""The model registry: a name maps to a builder (config -> uncompiled keras.Model).

Every model takes uint8 images (28, 28, 1), rescales them itself, and ends in a float32 softmax
(so mixed precision never reaches the probabilities).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from common.ground.config import Config
from common.ground.model_keys import MODEL_READS, require_model_name
from common.ground.spec import IMAGE_SHAPE, N_CLASSES

ModelBuilder = Callable[[Config], keras.Model]
MODELS: dict[str, ModelBuilder] = {}


def register_model(builder: ModelBuilder) -> ModelBuilder:
    """Decorator: registers the builder under its function name, a name MODEL_READS lists with the model-shape
    keys it reads (common/ground/model_keys.py: known there without Keras)."""
    if builder.__name__ not in MODEL_READS:
        raise ValueError(f"register_model: add {builder.__name__!r} and the keys it reads to MODEL_READS first")
    MODELS[builder.__name__] = builder
    return builder


def require_model(name: str) -> ModelBuilder:
    """The builder registered as `name`; raises UserError on an unknown name."""
    require_model_name(name)
    return MODELS[name]


def create_model(name: str, cfg: Config) -> keras.Model:
    """Builds the registered model `name`; raises UserError on an unknown name."""
    return require_model(name)(cfg)


def _inputs() -> tuple[keras.KerasTensor, keras.KerasTensor]:
    inputs = keras.Input(IMAGE_SHAPE, dtype="uint8", name="image")
    return inputs, layers.Rescaling(1 / 255.0)(inputs)


def _head(x: keras.KerasTensor, dropout: float) -> keras.KerasTensor:
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(N_CLASSES, name="classifier")(x)
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
def vgg6(cfg: Config) -> keras.Model:
    """Six 3x3 convs in three VGG blocks (w, 2w, 4w; each conv -> BatchNorm -> LeakyReLU, then 2x2 max pooling
    and dropout), Dense 4w. At width 64 (64-64-128-128-256-256, Dense 256) it is the single CNN that reached the
    top 4% of Kannada-MNIST's public board (0.992) trained 75 epochs on all rows."""
    inputs, x = _inputs()
    for filters in (cfg.width, 2 * cfg.width, 4 * cfg.width):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same")(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.LeakyReLU(0.1)(x)
        x = layers.MaxPooling2D()(x)  # 28 -> 14 -> 7 -> 3
        x = layers.Dropout(cfg.dropout)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(4 * cfg.width)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.LeakyReLU(0.1)(x)
    return keras.Model(inputs, _head(x, cfg.dropout), name="vgg6")


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


# ---------------------------------------------------------------------------
# The zoo: classic baselines, for `python run.py zoo` (same split, same budget)
# ---------------------------------------------------------------------------


@register_model
def mlp(cfg: Config) -> keras.Model:
    """The Keras `mnist_mlp` example: pixels -> 512 -> 512 -> 10, ReLU, dropout between layers."""
    inputs, x = _inputs()
    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.Dropout(cfg.dropout)(x)
    x = layers.Dense(512, activation="relu")(x)
    return keras.Model(inputs, _head(x, cfg.dropout), name="mlp")


@register_model
def convnet3(cfg: Config) -> keras.Model:
    """A plain 3-conv ConvNet (no BatchNorm): w-2w-4w 3x3 convs, each followed by 2x2 max pooling, Dense 4w."""
    inputs, x = _inputs()
    for filters in (cfg.width, 2 * cfg.width, 4 * cfg.width):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(4 * cfg.width, activation="relu")(x)
    return keras.Model(inputs, _head(x, cfg.dropout), name="convnet3")


@register_model
def lenet5(cfg: Config) -> keras.Model:
    """LeCun et al. 1998: 6C5-pool-16C5-pool-120-84-10 with tanh and average pooling ("subsampling").

    The first conv pads 28x28 to keep it 28x28, as LeNet-5's 32x32 input (MNIST padded by 2) gave.
    No dropout: the original had none.
    """
    inputs, x = _inputs()
    x = layers.Conv2D(6, 5, padding="same", activation="tanh")(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Conv2D(16, 5, activation="tanh")(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(120, activation="tanh")(x)
    x = layers.Dense(84, activation="tanh")(x)
    return keras.Model(inputs, _head(x, 0.0), name="lenet5")


@register_model
def vgg8(cfg: Config) -> keras.Model:
    """VGG-style: four blocks of two 3x3 conv-BN (w, 2w, 4w, 8w), 2x2 max pooling after each, global pooling."""
    inputs, x = _inputs()
    for filters in (cfg.width, 2 * cfg.width, 4 * cfg.width, 8 * cfg.width):
        x = _conv_bn(x, filters, 3, padding="same")
        x = _conv_bn(x, filters, 3, padding="same")
        x = layers.MaxPooling2D()(x)  # 28 -> 14 -> 7 -> 3 -> 1
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, _head(x, cfg.dropout), name="vgg8")


@register_model
def keras_mnist_cnn(cfg: Config) -> keras.Model:
    """The Keras `mnist_cnn` example, the Kannada-MNIST paper's baseline; its fixed sizes and dropouts.

    32C3-64C3-MaxPool-Dropout(0.25)-Flatten-Dense128-Dropout(0.5)-Dense10.
    """
    inputs, x = _inputs()
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    return keras.Model(inputs, _head(x, 0.5), name="keras_mnist_cnn")
