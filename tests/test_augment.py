"""common/augment.py: albumentations through tf.data, repeatable from a seed."""

from __future__ import annotations

import numpy as np

from common.augment import build_augmenter, eval_dataset, train_dataset
from common.config import Config

IMAGES = np.zeros((64, 28, 28, 1), np.uint8)
IMAGES[:, 10:18, 12:16] = 255  # a bar that an affine transform visibly moves
LABELS = np.arange(64) % 10


def first_batches(cfg: Config, seed: int, n: int = 2) -> list[np.ndarray]:
    return [x.numpy() for x, _ in train_dataset(IMAGES, LABELS, cfg, seed).take(n)]


def test_batches_have_the_right_shape_type_and_one_hot_labels():
    cfg = Config(batch_size=16)
    x, y = next(iter(train_dataset(IMAGES, LABELS, cfg, 0)))
    assert x.shape == (16, 28, 28, 1) and x.dtype.name == "uint8"
    assert y.shape == (16, 10) and np.allclose(y.numpy().sum(axis=1), 1)


def test_augmentation_changes_images_and_is_repeatable_from_the_seed():
    cfg = Config(batch_size=16, rotate=20.0, shift=0.1)
    a, b, c = first_batches(cfg, 1), first_batches(cfg, 1), first_batches(cfg, 2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    assert not all(np.array_equal(image, IMAGES[0]) for image in a[0])


def test_probability_zero_turns_augmentation_off():
    cfg = Config(batch_size=16, aug_probability=0.0)
    assert build_augmenter(cfg) is None
    batch = first_batches(cfg, 3, 1)[0]
    assert all(any(np.array_equal(image, original) for original in IMAGES[:1]) for image in batch)


def test_eval_dataset_keeps_row_order():
    images = np.arange(5 * 784, dtype=np.uint32).reshape(5, 28, 28, 1).astype(np.uint8)
    batches = [x.numpy() for x in eval_dataset(images, batch_size=2)]
    assert np.array_equal(np.concatenate(batches), images)
