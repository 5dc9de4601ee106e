"""Augmentation with albumentations, fed through tf.data.

Each batch is augmented by one numpy call whose random state is seeded from (run seed, batch number),
so the stream is repeatable even with parallel map calls, and the Python overhead is paid per batch.
"""

from __future__ import annotations

import threading

import albumentations as A
import cv2
import numpy as np
import tensorflow as tf

from common.config import Config


def build_augmenter(cfg: Config) -> A.Compose | None:
    """An albumentations pipeline from the config; None when augmentation is off."""
    if cfg.aug_probability <= 0:
        return None
    affine = A.Affine(
        rotate=(-cfg.rotate, cfg.rotate),
        scale=(1 - cfg.scale, 1 + cfg.scale),
        translate_percent=(-cfg.shift, cfg.shift),
        shear=(-cfg.shear, cfg.shear),
        interpolation=cv2.INTER_LINEAR,
        border_mode=cv2.BORDER_CONSTANT,
        fill=0,
        p=cfg.aug_probability,
    )
    # strict=True: albumentations 2.0.8 otherwise ignores misspelt arguments silently.
    return A.Compose([affine], strict=True)


class BatchAugmenter:
    """Applies an albumentations pipeline image by image to a uint8 batch (b, 28, 28, 1)."""

    def __init__(self, cfg: Config, seed: int) -> None:
        self.cfg = cfg
        self.seed = seed
        self.local = threading.local()  # one Compose per tf.data worker thread: they keep random state

    def __call__(self, batch: np.ndarray, batch_number: np.ndarray) -> np.ndarray:
        if not hasattr(self.local, "compose"):
            self.local.compose = build_augmenter(self.cfg)
        compose = self.local.compose
        compose.set_random_seed(int(self.seed * 1_000_003 + int(batch_number)) % (2**32))
        return np.stack([compose(image=image)["image"] for image in batch]).reshape(batch.shape)


def train_dataset(images: np.ndarray, labels: np.ndarray, cfg: Config, seed: int) -> tf.data.Dataset:
    """An endless, shuffled, augmented stream of (uint8 batch, one-hot labels); fit with steps_per_epoch."""
    one_hot = np.eye(10, dtype=np.float32)[labels]
    data = tf.data.Dataset.from_tensor_slices((images, one_hot))
    data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()
    data = data.batch(cfg.batch_size, drop_remainder=True).enumerate()
    augment = BatchAugmenter(cfg, seed) if build_augmenter(cfg) else None

    def apply(number: tf.Tensor, batch: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        x, y = batch
        if augment is not None:
            x = tf.numpy_function(augment, [x, number], tf.uint8, stateful=False)
            x = tf.ensure_shape(x, (cfg.batch_size, 28, 28, 1))
        return x, y

    return data.map(apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


# Test-time augmentation: one-pixel shifts, the cheapest views that keep a digit's shape exactly.
TTA_SHIFTS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))


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


def eval_dataset(images: np.ndarray, labels: np.ndarray | None = None, batch_size: int = 1024) -> tf.data.Dataset:
    """Unaugmented batches in row order, for validation and prediction."""
    items = images if labels is None else (images, np.eye(10, dtype=np.float32)[labels])
    return tf.data.Dataset.from_tensor_slices(items).batch(batch_size).prefetch(tf.data.AUTOTUNE)
