"""Recipes: a name and config overrides, each trained as one model on the fixed split
(common/commands/fixed_split.py) by the budget benchmark (`python -m bench.bench`).

A recipe is `default` (the competition's config), a preset of configs/presets/ (`reference` is Chris Deotte's
published CNN), or NAME:key=value,... (on the preset NAME when there is one, or `preset=P`; on the
competition's config otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.commands.fixed_split import checked_config
from common.ground.config import Config
from common.ground.config_files import available_presets
from common.ground.errors import UserError

DEFAULT_RECIPE = "default"
REFERENCE_RECIPE = "reference"
PRESET_KEY = "preset"  # NAME:preset=P,... starts a recipe from preset P


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
    return checked_config(competition, recipe.preset, [*overrides, *recipe.overrides])


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
