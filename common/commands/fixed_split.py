"""One fixed stratified split of train.csv, and one model of a config trained on it through the trainer a run
uses (`train_unit`). The model zoo (`python run.py zoo`) and the budget benchmark (`python -m bench.bench`,
whose recipes are bench/harness/recipes.py) train on it, so their models compare on the same rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from common.data.files import Dataset, load_dataset
from common.data.folds import HOLDOUT_SEED, holdout_split, stratified_subset
from common.ground.config import Config
from common.ground.config_files import chosen_keys, load_config
from common.ground.model_keys import check_model_keys
from common.ground.spec import get_spec
from common.runs.units import UnitOutput
from common.training.backend import setup_hardware
from common.training.train import UnitJob, train_unit


def checked_config(competition: str, preset: str | None, overrides: Sequence[str]) -> Config:
    """The competition's config, then the preset, then `overrides`; refused when the model is unknown or ignores
    a key the overrides set."""
    cfg = load_config(competition, preset, overrides=list(overrides))[0]
    check_model_keys(cfg.model, chosen_keys(None, list(overrides)))
    return cfg


@dataclass(frozen=True)
class FixedSplit:
    data: Dataset
    train_rows: np.ndarray  # rows of train.csv the models train on (each config's own cap aside)
    holdout_rows: np.ndarray
    seed: int

    def training(self, *limits: int) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of the train rows, a stratified subset of the smallest positive limit (all when
        every limit is 0)."""
        rows = capped_rows(self.data.train.labels, self.train_rows, *limits)
        return self.data.train.images[rows], self.data.train.labels[rows]

    @property
    def holdout(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data.train.images[self.holdout_rows], self.data.train.labels[self.holdout_rows]

    @property
    def extra_images(self) -> dict[str, np.ndarray]:
        """Every extra labelled set's images, by the competition's name for it (Kannada's dig_mnist)."""
        return {name: table.images for name, table in self.data.extras.items()}


def fixed_split(labels: np.ndarray, fraction: float, subset_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted row indices (train, holdout): a stratified subset of `subset_rows` rows (all when 0), of which a
    stratified `fraction` is held out. With subset_rows 0 and HOLDOUT_SEED, the config key `holdout`'s rows."""
    rows = stratified_subset(labels, subset_rows, seed)
    train, held = holdout_split(labels[rows], fraction, seed)
    return rows[train], rows[held]


def prepare_split(
    competition: str, fraction: float, subset_rows: int = 0, seed: int = HOLDOUT_SEED, data_dir: str | None = None
) -> FixedSplit:
    """The competition's files, split by `fixed_split`."""
    data = load_dataset(get_spec(competition), data_dir)
    train, held = fixed_split(data.train.labels, fraction, subset_rows, seed)
    return FixedSplit(data, train, held, seed)


def capped_rows(labels: np.ndarray, rows: np.ndarray, *limits: int) -> np.ndarray:
    """A stratified subset of `rows` of the smallest positive limit (all of them when every limit is 0)."""
    positive = [limit for limit in limits if limit > 0]
    keep = stratified_subset(labels[rows], min(positive) if positive else 0, HOLDOUT_SEED)
    return rows[keep]


@dataclass(frozen=True)
class SplitModel:
    """One config trained on the split: the plain model, what the trainer measured, the rows it trained on."""

    model: keras.Model
    result: UnitOutput  # probabilities: "valid" is the split's holdout, then each extra set by name
    hardware: str
    train_rows: int


def train_split_model(
    cfg: Config, split: FixedSplit, max_train_rows: int = 0, callbacks: Sequence[keras.callbacks.Callback] = ()
) -> SplitModel:
    """One model of `cfg` on the split's train rows (capped by `max_train_rows` and the config's own cap),
    through `train_unit`, seeded by the config. Models are compared on the image alone, over their whole
    schedule: test-time shifts and early stopping are left out. `callbacks` watch (or cut) the training.
    The caller clears the Keras session once it is done with the model."""
    hardware = setup_hardware(cfg)  # per config: the precision policy follows it
    plain = dataclasses.replace(cfg, tta=0, early_stopping=0)
    train = split.training(max_train_rows, cfg.max_train_rows)
    watchers = keras.callbacks.CallbackList(list(callbacks)) if callbacks else None
    model, result = train_unit(UnitJob(plain, cfg.seed, train, split.holdout, split.extra_images), hardware, watchers)
    return SplitModel(model, result, hardware.description, len(train[1]))
