"""Training batches from memory, the same on every backend: shuffled rows, fixed-size batches.

Every batch has exactly `batch_size` rows (the remainder is left out, a different one each epoch), so a
compiled training step never sees a second shape. The order of each epoch is drawn from (seed, epoch), so a
unit repeats. The affine augmentation is not here: it runs inside the training step (common/training/augment.py).

Per-image distortions that have no batched form (`distort: elastic,grid`) are albumentations' work; they run
here, in `keras.utils.PyDataset` worker processes (albumentations holds the GIL), seeded by (seed, epoch,
batch), so they repeat too.
"""

from __future__ import annotations

import multiprocessing

import albumentations as A
import cv2
import keras
import numpy as np

from common.ground.config import DISTORTIONS, Config
from common.ground.spec import N_CLASSES


def build_distortions(names: list[str]) -> A.Compose | None:
    """The albumentations pipeline for `distort` (its table: DISTORTIONS); None when there is nothing to apply."""
    if not names:
        return None
    transforms = [DISTORTIONS[name] for name in names]
    # strict=True: albumentations 2 otherwise ignores misspelt arguments silently.
    return A.Compose(
        [getattr(A, kind)(**arguments, border_mode=cv2.BORDER_CONSTANT, p=0.5) for kind, arguments in transforms],
        strict=True,
    )


class TrainBatches(keras.utils.PyDataset):
    """(uint8 images (b, 28, 28, 1), one-hot float32 labels (b, 10)) for one epoch of `len(self)` batches."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, cfg: Config, seed: int) -> None:
        distortions = build_distortions(cfg.distortions)
        workers = 2 if distortions else 1
        # albumentations holds the GIL, so processes; a daemonic process (a Dask worker) may not start them.
        processes = workers > 1 and not multiprocessing.current_process().daemon
        super().__init__(workers=workers, use_multiprocessing=processes, max_queue_size=16)
        self.images, self.one_hot = images, np.eye(N_CLASSES, dtype=np.float32)[labels]
        self.batch_size = min(cfg.batch_size, len(images))
        self.seed, self.epoch = seed, 0
        self.distortions = distortions
        self.order = self.epoch_order()

    def epoch_order(self) -> np.ndarray:
        return np.random.default_rng((self.seed, self.epoch)).permutation(len(self.images))

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        images = self.images[rows]
        if self.distortions is not None:
            images = self.distort(images, index)
        return images, self.one_hot[rows]

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """A batch of the shapes and types training sees (the first rows, not augmented), to build a trainer."""
        return self.images[: self.batch_size], self.one_hot[: self.batch_size]

    def distort(self, images: np.ndarray, index: int) -> np.ndarray:
        self.distortions.set_random_seed(int(np.random.default_rng((self.seed, self.epoch, index)).integers(2**31)))
        return np.stack([self.distortions(image=image)["image"] for image in images]).reshape(images.shape)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self.epoch_order()


def padded(images: np.ndarray, batch_size: int) -> np.ndarray:
    """`images` with zero rows appended up to a multiple of batch_size: every prediction batch has one shape."""
    extra = -len(images) % batch_size
    return np.concatenate([images, np.zeros((extra, *images.shape[1:]), images.dtype)]) if extra else images
