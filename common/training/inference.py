"""Predicting new images with a finished run's saved models (the run's own ensemble)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.ground.spec import N_CLASSES
from common.runs import Run


def predict_with_models(files: list[Path], images: np.ndarray, tta: int = 0) -> np.ndarray:
    """(n, 10) float32: the mean of every model's softmax over uint8 images (n, 28, 28, 1), each model's
    averaged over `tta` shifted views as in training (pass the run's config value)."""
    from common.training.backend import start_backend_quietly

    start_backend_quietly()  # TensorFlow's start-up lines and its CUDA probe on a machine without a GPU
    import keras  # imported late: TensorFlow takes seconds to load

    from common.training.train import predict_probabilities

    total = np.zeros((len(images), N_CLASSES), np.float64)
    for file in files:
        total += predict_probabilities(keras.models.load_model(file, compile=False), images, tta)
    return (total / len(files)).astype(np.float32)


def predict_ensemble(run: Run, images: np.ndarray) -> np.ndarray:
    """(n, 10) float32: the run's own ensemble on `images`. A trained run's models are averaged; a blend's
    sources' are, each source with its weight in the blend (Run.members)."""
    total = np.zeros((len(images), N_CLASSES), np.float64)
    for member in run.members():
        total += member.weight * predict_with_models(member.model_files, images, member.tta)
    return total.astype(np.float32)
