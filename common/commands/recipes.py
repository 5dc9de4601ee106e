"""Recipes (a name and config overrides) and the fixed split they train on, side by side: one model each.

A recipe is `default` (the competition's config), a preset of configs/presets/ (`reference` is Chris Deotte's
published CNN), or NAME:key=value,... (on the preset NAME when there is one, or `preset=P`; on the
competition's config otherwise). Every recipe trains one model on the same stratified split of train.csv,
through the trainer a run uses (`train_unit`). The model zoo (`python run.py zoo`) and the budget benchmark
(`python -m bench.bench`) are its two uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from common.data.files import Dataset, load_dataset
from common.data.folds import HOLDOUT_SEED, holdout_split, stratified_subset
from common.ground.config import Config, available_presets, chosen_keys, load_config
from common.ground.errors import UserError
from common.ground.model_keys import check_model_keys
from common.ground.spec import get_spec
from common.runs.units import UnitOutput
from common.training.backend import setup_hardware
from common.training.train import UnitJob, train_unit

DEFAULT_RECIPE = "default"
REFERENCE_RECIPE = "reference"
PRESET_KEY = "preset"  # NAME:preset=P,... starts a recipe from preset P


# ---------------------------------------------------------------------------
# Recipes: a name and config overrides
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    name: str
    preset: str | None = None  # None: the competition's own config
    overrides: tuple[str, ...] = ()  # key=value, applied after the preset and the options' overrides

    def spelled(self) -> str:
        """How the recipe reads on the command line."""
        pairs = [f"{PRESET_KEY}={self.preset}"] if self.preset not in (None, self.name) else []
        pairs += self.overrides
        return f"{self.name}:{','.join(pairs)}" if pairs else self.name


def parse_recipes(text: str) -> list[Recipe]:
    """`reference,default,wide:width=48,epochs=20` -> three recipes: a key=value word with no name before it
    belongs to the recipe on its left."""
    groups: list[list[str]] = []
    for word in (part.strip() for part in text.split(",")):
        if not word:
            continue
        if "=" in word and ":" not in word.partition("=")[0]:
            if not groups:
                raise UserError(f"recipe list {text!r} starts with {word!r}: give a name first, e.g. wide:{word}")
            groups[-1].append(word)
        else:
            groups.append([word])
    return [recipe_from(group) for group in groups]


def recipe_from(words: list[str]) -> Recipe:
    """One recipe from its words: NAME, or NAME:key=value followed by more key=value words."""
    name, colon, first = (part.strip() for part in words[0].partition(":"))
    if not name:
        raise UserError(f"recipe {words[0]!r} needs a name before ':', e.g. wide:width=48")
    pairs = [pair for pair in [first, *words[1:]] if pair]
    presets = [pair.partition("=")[2] for pair in pairs if pair.partition("=")[0] == PRESET_KEY]
    if len(presets) > 1:
        raise UserError(f"recipe {name!r} names {len(presets)} presets: give preset= once")
    overrides = tuple(pair for pair in pairs if pair.partition("=")[0] != PRESET_KEY)
    if presets:
        return Recipe(name, presets[0], overrides)
    if name == DEFAULT_RECIPE or (colon and name not in available_presets()):
        return Recipe(name, None, overrides)
    return Recipe(name, name, overrides)  # a preset (an unknown one is refused when the config is loaded)


def recipe_config(competition: str, recipe: Recipe, overrides: Sequence[str] = ()) -> Config:
    """The recipe's resolved config: the competition's, the preset, the options' overrides, the recipe's own."""
    pairs = [*overrides, *recipe.overrides]
    cfg = load_config(competition, recipe.preset, overrides=pairs)[0]
    check_model_keys(cfg.model, chosen_keys(None, pairs))  # an unknown model, or a key the model ignores
    return cfg


def recipe_configs(
    competition: str, recipes: Sequence[Recipe], overrides: Sequence[str] = ()
) -> list[tuple[Recipe, Config]]:
    """Every recipe with its config, checked before anything trains."""
    if not recipes:
        raise UserError("bench: --recipes needs at least one recipe, e.g. reference,default")
    names = [recipe.name for recipe in recipes]
    if len(set(names)) != len(names):
        raise UserError(f"bench: a recipe is listed twice in {','.join(names)}")
    return [(recipe, recipe_config(competition, recipe, overrides)) for recipe in recipes]


# ---------------------------------------------------------------------------
# Options and the split
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FixedSplit:
    data: Dataset
    train_rows: np.ndarray  # rows of train.csv the recipes train on (each recipe's own cap aside)
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


# ---------------------------------------------------------------------------
# Training one recipe on the split
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipeModel:
    """One recipe trained on the split: the plain model, what the trainer measured, the rows it trained on."""

    model: keras.Model
    result: UnitOutput  # probabilities: "valid" is the split's holdout, then each extra set by name
    hardware: str
    train_rows: int


def train_recipe_model(
    cfg: Config, split: FixedSplit, max_train_rows: int = 0, callbacks: Sequence[keras.callbacks.Callback] = ()
) -> RecipeModel:
    """One model of `cfg` on the split's train rows (capped by `max_train_rows` and the config's own cap),
    through `train_unit`, seeded by the config. Recipes are compared on the image alone, over their whole
    schedule: test-time shifts and early stopping are left out. `callbacks` watch (or cut) the training.
    The caller clears the Keras session once it is done with the model."""
    hardware = setup_hardware(cfg)  # per recipe: the precision policy follows the recipe's config
    plain = dataclasses.replace(cfg, tta=0, early_stopping=0)
    train = split.training(max_train_rows, cfg.max_train_rows)
    watchers = keras.callbacks.CallbackList(list(callbacks)) if callbacks else None
    model, result = train_unit(UnitJob(plain, cfg.seed, train, split.holdout, split.extra_images), hardware, watchers)
    return RecipeModel(model, result, hardware.description, len(train[1]))
