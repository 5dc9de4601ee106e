"""Training one unit of a run: its rows, its seed, its source model; the fitted model and its outputs."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from common.data.files import Dataset
from common.data.trainset import TrainSet
from common.ground.config import Config
from common.runs import MODEL_KERAS, TENSORBOARD, as_key, unit_dir
from common.runs.units import UnitKey, UnitOutput


def unit_seed(cfg: Config, key: UnitKey | tuple[int, int]) -> int:
    key = as_key(key)
    if not key.holds_out:
        raise ValueError(f"unit {key}: this trainer trains fold models only")
    return cfg.seed + 10_000 * key.seed + key.fold


def fit_unit(
    cfg: Config,
    key: UnitKey | tuple[int, int],
    train: TrainSet,
    data: Dataset,
    hardware,
    progress=None,
    folder: Path | None = None,
) -> UnitOutput:
    """Trains the unit's model on the other folds and predicts its fold, the test set and extra sets. `folder`:
    the run's, where tensorboard=true puts the unit's TensorBoard logs (none without it)."""
    key = as_key(key)
    from common.training.pseudo import pseudo_labels
    from common.training.train import train_unit  # imported late: TensorFlow takes seconds to load
    from common.training.transfer import source_model_file

    seed = unit_seed(cfg, key)
    held_out = train.folds == key.fold
    pseudo_images, pseudo_labelled = pseudo_labels(cfg, key.fold, data.test.images)
    if len(pseudo_labelled):
        log = logging.getLogger("digits")
        log.info("fold %d seed %d: %d pseudo-labelled test images", key.fold, key.seed, len(pseudo_labelled))
    model, result = train_unit(
        cfg,
        seed,
        (
            np.concatenate([train.images[~held_out], pseudo_images]),
            np.concatenate([train.labels[~held_out], pseudo_labelled]),
        ),
        (train.images[held_out], train.labels[held_out]),
        {"test": data.test.images} | {name: table.images for name, table in data.extras.items()},
        hardware,
        progress,
        source_model_file(cfg, key),
        fresh_log_dir(cfg, folder, key),
    )
    record = {"hardware": hardware.description, **hardware.to_dict()}
    saved = model_bytes(model) if cfg.save_models else None
    return replace(result, model_bytes=saved, record=record)


def model_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / MODEL_KERAS
        model.save(path)
        return path.read_bytes()


def fresh_log_dir(cfg: Config, folder: Path | None, key: UnitKey) -> Path | None:
    """The unit's TensorBoard folder, emptied (a killed attempt's events would mix with this one's); None when
    tensorboard is off or the unit trains away from its run folder."""
    if not cfg.tensorboard or folder is None:
        return None
    log_dir = unit_dir(folder, key) / TENSORBOARD
    shutil.rmtree(log_dir, ignore_errors=True)
    return log_dir
