"""Writes a small offline competition, in Kaggle's exact layout, from scikit-learn's bundled digits."""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

from common.ground.atomic import atomic_path
from common.ground.spec import PIXEL_COLUMNS

N_TEST = 300
N_EXTRA_TEST = 197  # sklearn_test.csv: a labelled test set, scored with every run
SPLIT_SEED = 0


def digits_as_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 digits (0-16) as MNIST-like 28x28 uint8 images: a 20x20 digit centred in 28x28."""
    digits = load_digits()
    images = np.zeros((len(digits.images), 28, 28), np.uint8)
    for i, small in enumerate(digits.images):
        big = cv2.resize((small * (255.0 / 16.0)).astype(np.float32), (20, 20), interpolation=cv2.INTER_LINEAR)
        images[i, 4:24, 4:24] = np.clip(np.rint(big), 0, 255).astype(np.uint8)
    return images, digits.target.astype(np.int64)


def _pixel_frame(images: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(images.reshape(len(images), -1), columns=list(PIXEL_COLUMNS))


def write_sklearn_digits_competition(folder: Path) -> Path:
    """Writes `sklearn-digits.zip` (train, test, sklearn_test, sample_submission) into `folder`."""
    images, labels = digits_as_mnist()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    test_rows, extra_rows = order[:N_TEST], order[N_TEST : N_TEST + N_EXTRA_TEST]
    train_rows = order[N_TEST + N_EXTRA_TEST :]

    train = _pixel_frame(images[train_rows])
    train.insert(0, "label", labels[train_rows])
    extra_test = _pixel_frame(images[extra_rows])
    extra_test.insert(0, "label", labels[extra_rows])
    test = _pixel_frame(images[test_rows])
    test.insert(0, "id", np.arange(N_TEST))
    sample = pd.DataFrame({"id": np.arange(N_TEST), "label": 0})

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "sklearn-digits.zip"
    files = {"train.csv": train, "test.csv": test, "sklearn_test.csv": extra_test, "sample_submission.csv": sample}
    with atomic_path(target) as temporary, zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, frame in files.items():
            archive.writestr(name, frame.to_csv(index=False))
    return target


# The writers of offline competitions' files, by the name a spec gives as its `writer` (common/ground/spec.py).
WRITERS = {"sklearn_digits": write_sklearn_digits_competition}
