"""bench/harness/recipes.py: recipes (a name and config overrides) and their configs."""

from __future__ import annotations

import pytest

from bench.harness.recipes import Recipe, parse_recipes, recipe_config, recipe_configs
from common.ground.errors import UserError


def test_recipes_are_presets_default_or_named_overrides():
    recipes = parse_recipes("reference, default,wide:width=48,epochs=20,ref10:preset=reference,epochs=10,reference2:")
    assert recipes == [
        Recipe("reference", "reference"),
        Recipe("default"),
        Recipe("wide", None, ("width=48", "epochs=20")),
        Recipe("ref10", "reference", ("epochs=10",)),
        Recipe("reference2"),  # not a preset: the competition's config under its own name
    ]
    assert parse_recipes("reference:epochs=10") == [Recipe("reference", "reference", ("epochs=10",))]
    assert [recipe.spelled() for recipe in recipes] == [
        "reference",
        "default",
        "wide:width=48,epochs=20",
        "ref10:preset=reference,epochs=10",
        "reference2",
    ]
    with pytest.raises(UserError, match="starts with 'epochs=3': give a name first"):
        parse_recipes("epochs=3,default")
    with pytest.raises(UserError, match="needs a name before ':'"):
        parse_recipes(":width=48")


def test_a_recipes_config_is_the_competitions_then_preset_then_overrides():
    wide = recipe_config("digits", parse_recipes("wide:width=48,epochs=20")[0], ["epochs=3", "lr=0.01"])
    assert (wide.model, wide.width, wide.epochs, wide.lr) == ("small", 48, 20, 0.01)  # the recipe's own win
    short = recipe_config("digits", parse_recipes("reference:epochs=10")[0])
    assert (short.model, short.schedule, short.epochs) == ("deotte", "exponential", 10)
    resolved = recipe_configs("digits", parse_recipes("default,fast"), ["epochs=2"])
    assert [(recipe.name, cfg.epochs) for recipe, cfg in resolved] == [("default", 2), ("fast", 2)]
    with pytest.raises(UserError, match="unknown preset 'nosuch'"):
        recipe_config("digits", Recipe("x", "nosuch"))
    with pytest.raises(UserError, match="unknown model 'nosuch'"):
        recipe_config("digits", Recipe("x", None, ("model=nosuch",)))
