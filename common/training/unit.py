"""Training one unit of a run: its rows, its seed, its source model; the fitted model and its outputs."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.data.files import Dataset
from common.data.trainset import TrainSet
from common.ground.config import Config
from common.runs import MODEL_KERAS, TENSORBOARD, unit_dir
from common.runs.units import UnitKey, UnitOutput, unit_config

if TYPE_CHECKING:  # imported late at run time: it loads Keras
    from common.training.train import UnitJob

FULL_DATA_SEED_OFFSET = 5_000


def unit_seed(cfg: Config, key: UnitKey) -> int:
    """The random seed of a unit's model and augmentation: fold K, seed index S trains with seed + 10,000 S + K.
    A full-data model trains with seed + 10,000 S + 5,000: never a fold model's seed (folds stay far below
    5,000), so it does not start from fold 0's weights and draw fold 0's augmentations (models that share them
    err alike, and their average gains less), and the same whatever the run's folds, so a run grown by more
    folds or full-data models keeps every model it has."""
    return cfg.seed + 10_000 * key.seed + (key.fold if key.holds_out else FULL_DATA_SEED_OFFSET)


def held_out_rows(train: TrainSet, key: UnitKey) -> np.ndarray:
    """Which rows of the train set the unit keeps out of its training: its fold's (none for a full-data model)."""
    return train.folds == key.fold if key.holds_out else np.zeros(len(train.labels), bool)


def fit_units(
    cfg: Config,
    keys: list[UnitKey],
    train: TrainSet,
    data: Dataset,
    hardware,
    progress=None,
    folder: Path | None = None,
) -> list[UnitOutput]:
    """Trains the units of `keys` (one unit, or a group of stack_groups: one config, one compiled program),
    each on the other folds (a full-data model: on every row), and predicts its fold (none for a full-data
    model), the test set and extra sets; the outputs in the order of `keys`. `folder`: the run's, where
    tensorboard=true puts each unit's TensorBoard logs (none without it)."""
    from common.training.stacked import train_units  # imported late: TensorFlow takes seconds to load

    cfg = unit_config(cfg, keys[0])
    jobs = [unit_job(cfg, key, train, data, folder) for key in keys]
    trained = train_units(jobs, hardware, progress)
    return [finished_unit(cfg, model, result, hardware, stacked=len(keys)) for model, result in trained]


def stack_groups(cfg: Config, keys: list[UnitKey]) -> list[list[UnitKey]]:
    """`keys` in order, in groups of up to `stack` units that train with the same config (fold models with fold
    models, full-data models with full-data models): each group trains in one program."""
    groups: list[list[UnitKey]] = []
    for key in keys:
        if groups and len(groups[-1]) < cfg.stack and unit_config(cfg, groups[-1][0]) == unit_config(cfg, key):
            groups[-1].append(key)
        else:
            groups.append([key])
    return groups


def unit_job(cfg: Config, key: UnitKey, train: TrainSet, data: Dataset, folder: Path | None) -> UnitJob:
    """What the unit trains on (its rows and any pseudo-labelled test images), its held-out rows, its seed, the
    sets it predicts and the saved model it starts from."""
    from common.training.pseudo import pseudo_labels
    from common.training.train import UnitJob
    from common.training.transfer import source_model_file

    held_out = held_out_rows(train, key)
    pseudo_images, pseudo_labelled = pseudo_labels(cfg, key.fold, data.test.images)  # none for full-data models
    if len(pseudo_labelled):
        log = logging.getLogger("digits")
        log.info("fold %d seed %d: %d pseudo-labelled test images", key.fold, key.seed, len(pseudo_labelled))
    rows = (
        np.concatenate([train.images[~held_out], pseudo_images]),
        np.concatenate([train.labels[~held_out], pseudo_labelled]),
    )
    valid = (train.images[held_out], train.labels[held_out]) if key.holds_out else None
    init, log_dir = source_model_file(cfg, key), fresh_log_dir(cfg, folder, key)
    return UnitJob(cfg, unit_seed(cfg, key), rows, valid, sets_to_predict(data), init, log_dir)


def sets_to_predict(data: Dataset) -> dict[str, np.ndarray]:
    return {"test": data.test.images} | {name: table.images for name, table in data.extras.items()}


def finished_unit(cfg: Config, model, result: UnitOutput, hardware, stacked: int = 1) -> UnitOutput:
    """The unit's outputs with its saved model and where it trained (and with how many units, when stacked)."""
    record = {"hardware": hardware.description, **hardware.to_dict()} | ({"stacked": stacked} if stacked > 1 else {})
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
