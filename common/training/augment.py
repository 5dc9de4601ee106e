"""Augmentation: the affine family inside the training step, on any Keras backend; test-time shifts.

The affine transform (rotate, scale, shift, shear) is drawn per image and applied to the whole batch in one
bilinear resampling written with `keras.ops` and `keras.random`, so it runs in the compiled training step on
TensorFlow, JAX or PyTorch, on a CPU or a GPU, with no Python per image. It is a layer of the training-only
wrapper (common/training/train.py), never of the saved model.

albumentations' `A.Affine` is the reference: the parameters are drawn from the ranges it would draw from
(x and y scale and shear apart, translation in whole pixels), and tests/test_augment.py checks that the warp
agrees with `A.Affine` itself for each parameter fixed. Per-image distortions that have no batched form
(elastic, grid) stay with albumentations, in common/training/batches.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from common.ground.config import TTA_SHIFTS, Config

# The order of the columns of a parameter table (batch, 7): each image's own affine transform.
PARAMETERS = ("rotate", "scale_x", "scale_y", "shear_x", "shear_y", "shift_x", "shift_y")


@dataclass(frozen=True)
class AffineRanges:
    """What the config asks for, as `A.Affine` reads it: each value drawn uniformly in [-r, r] (scale 1 +- r)."""

    rotate: float  # degrees
    scale: float  # fraction; x and y drawn apart (A.Affine's keep_ratio=False)
    shift: float  # fraction of the image size; truncated to whole pixels as A.Affine does
    shear: float  # degrees; x and y drawn apart
    probability: float  # share of images transformed at all

    @classmethod
    def from_config(cls, cfg: Config) -> AffineRanges:
        return cls(cfg.rotate, cfg.scale, cfg.shift, cfg.shear, cfg.aug_probability)

    @property
    def active(self) -> bool:
        return self.probability > 0 and any((self.rotate, self.scale, self.shift, self.shear))


def draw_parameters(ranges: AffineRanges, batch: int, size: int, seed) -> keras.KerasTensor:
    """(batch, 7) parameters in PARAMETERS order; images left alone (1 - probability) get the identity."""
    unit = keras.random.uniform((batch, 8), seed=seed)
    signed = 2.0 * unit[:, :7] - 1.0  # uniform in [-1, 1)
    shift = signed[:, 5:7] * (ranges.shift * size)
    shift = ops.sign(shift) * ops.floor(ops.abs(shift))  # int() in A.Affine: towards zero
    drawn = ops.concatenate(
        [
            signed[:, 0:1] * ranges.rotate,
            1.0 + signed[:, 1:3] * ranges.scale,
            signed[:, 3:5] * ranges.shear,
            shift,
        ],
        axis=1,
    )
    identity = ops.convert_to_tensor([[0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    applied = ops.expand_dims(unit[:, 7] < ranges.probability, 1)
    return ops.where(applied, drawn, identity)


def inverse_transforms(parameters, height: int, width: int):
    """(batch, 8) rows [a0, a1, a2, b0, b1, b2, 0, 0]: each output pixel (x, y) samples the input at
    (a0 x + a1 y + a2, b0 x + b1 y + b2), the layout of `keras.ops.image.affine_transform`.

    A.Affine's forward map is p -> A (p - c) + c + t with c the image centre ((w - 1) / 2, (h - 1) / 2),
    A = shear @ rotate @ scale and shear angles negated; cv2.warpAffine samples the input at its inverse,
    p = A^-1 (q - c - t) + c.
    """
    p = {name: parameters[:, i] for i, name in enumerate(PARAMETERS)}
    theta = p["rotate"] * (math.pi / 180.0)
    cos, sin = ops.cos(theta), ops.sin(theta)
    tan_x, tan_y = ops.tan(-p["shear_x"] * (math.pi / 180.0)), ops.tan(-p["shear_y"] * (math.pi / 180.0))
    # A = [[1, tan_x], [tan_y, 1]] @ [[cos, sin], [-sin, cos]] @ diag(scale_x, scale_y)
    a = (cos - tan_x * sin) * p["scale_x"]
    b = (sin + tan_x * cos) * p["scale_y"]
    c = (tan_y * cos - sin) * p["scale_x"]
    d = (tan_y * sin + cos) * p["scale_y"]
    det = a * d - b * c
    inverse = (d / det, -b / det, -c / det, a / det)  # A^-1, row by row
    centre_x, centre_y = (width - 1) / 2.0, (height - 1) / 2.0
    moved_x, moved_y = centre_x + p["shift_x"], centre_y + p["shift_y"]  # c + t: where the centre goes
    a0, a1, b0, b1 = inverse
    a2 = centre_x - a0 * moved_x - a1 * moved_y
    b2 = centre_y - b0 * moved_x - b1 * moved_y
    zeros = ops.zeros_like(a0)
    return ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def warp(images, parameters, kernel: str = "native"):
    """uint8 images (batch, h, w, 1) resampled bilinearly at their own affine transforms, zeros coming in.
    kernel "native": one call of the backend's own kernel (TensorFlow's ImageProjectiveTransformV3, JAX's
    map_coordinates); "gathers": four gathers per output pixel in keras.ops, for TensorFlow under XLA, which
    cannot compile ImageProjectiveTransformV3."""
    transforms = inverse_transforms(parameters, images.shape[1], images.shape[2])
    pixels = ops.cast(images, "float32")
    if kernel == "native":
        warped = ops.image.affine_transform(pixels, transforms, interpolation="bilinear", fill_mode="constant")
    else:
        warped = ops.reshape(gathered_bilinear(pixels, transforms), ops.shape(images))
    return ops.cast(ops.clip(ops.round(warped), 0, 255), "uint8")  # A.Affine's uint8 output rounds too


def gathered_bilinear(pixels, transforms):
    """(batch, h * w) bilinear samples of float32 images (batch, h, w, 1) at `transforms` (inverse_transforms'
    rows), each of the four neighbours zero outside the image, as affine_transform's constant fill."""
    batch, height, width = ops.shape(pixels)[0], pixels.shape[1], pixels.shape[2]
    flat = ops.reshape(pixels, (batch, height * width))
    grid_y, grid_x = np.meshgrid(np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32), indexing="ij")
    grid_x, grid_y = (ops.convert_to_tensor(g.reshape(1, -1)) for g in (grid_x, grid_y))
    row = [ops.expand_dims(transforms[:, i], 1) for i in range(6)]
    x = row[0] * grid_x + row[1] * grid_y + row[2]
    y = row[3] * grid_x + row[4] * grid_y + row[5]
    x0, y0 = ops.floor(x), ops.floor(y)
    fx, fy = x - x0, y - y0
    total = ops.zeros_like(x)
    for oy, ox, weight in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + ox, y0 + oy
        inside = (xi >= 0) & (xi <= width - 1) & (yi >= 0) & (yi <= height - 1)
        index = ops.cast(ops.clip(yi, 0, height - 1) * width + ops.clip(xi, 0, width - 1), "int32")
        total = total + ops.where(inside, weight * ops.take_along_axis(flat, index, axis=1), 0.0)
    return total


class RandomAffine(keras.layers.Layer):
    """Training only: each image of the batch through its own random affine transform; identity otherwise. A layer
    of the training wrapper, which is never saved: it has no config to serialise."""

    def __init__(self, ranges: AffineRanges, seed: int | None = None, kernel: str = "native", **kwargs) -> None:
        super().__init__(**kwargs)
        self.ranges, self.kernel = ranges, kernel
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training or not self.ranges.active:
            return images
        parameters = draw_parameters(self.ranges, ops.shape(images)[0], images.shape[1], self.seed_generator)
        return warp(images, parameters, self.kernel)

    def compute_output_shape(self, input_shape):
        return input_shape


# ---------------------------------------------------------------------------
# Test-time augmentation: one-pixel shifts, the cheapest views that keep a digit's shape exactly
# ---------------------------------------------------------------------------


def shift_images(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """uint8 images (n, 28, 28, 1) moved by (dy, dx) pixels; what leaves the frame is lost, zeros come in."""
    shifted = np.zeros_like(images)
    height, width = images.shape[1:3]
    rows_to, rows_from = slice(max(dy, 0), height + min(dy, 0)), slice(max(-dy, 0), height + min(-dy, 0))
    cols_to, cols_from = slice(max(dx, 0), width + min(dx, 0)), slice(max(-dx, 0), width + min(-dx, 0))
    shifted[:, rows_to, cols_to] = images[:, rows_from, cols_from]
    return shifted


def tta_views(images: np.ndarray, views: int) -> list[np.ndarray]:
    """The images themselves, then `views` shifted copies (the first `views` of TTA_SHIFTS)."""
    if not 0 <= views <= len(TTA_SHIFTS):
        raise ValueError(f"tta views must be between 0 and {len(TTA_SHIFTS)}, got {views}")
    return [images, *(shift_images(images, dy, dx) for dy, dx in TTA_SHIFTS[:views])]
