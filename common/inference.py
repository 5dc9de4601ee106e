"""Predicting new images with a finished run's saved models (the run's own ensemble)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import UserError
from common.runs import Run


def model_files(run: Run) -> list[Path]:
    """Every unit's model.keras, in unit order; raises UserError when the run saved none."""
    files = sorted((run.folder / "units").glob("*/model.keras"))
    if not files:
        raise UserError(f"{run.folder}: no saved models (was it trained with save_models=false?)")
    return files


def predict_with_models(files: list[Path], images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """(n, 10) float32: the mean of every model's softmax over uint8 images (n, 28, 28, 1)."""
    import keras  # imported late: TensorFlow takes seconds to load

    total = np.zeros((len(images), 10), np.float64)
    for file in files:
        model = keras.models.load_model(file, compile=False)
        total += model.predict(images, batch_size=batch_size, verbose=0)
    return (total / len(files)).astype(np.float32)
