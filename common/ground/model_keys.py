"""The models of the registry (common/training/models.py) by name, and the model-shape config keys each reads.

Known here, without Keras, so that an unknown model or a key the chosen model ignores is refused at once, before
Keras (seconds) and the data load. The registry registers a builder only under a name listed here.
"""

from __future__ import annotations

from common.ground.errors import UserError

SHAPE_KEYS = ("width", "dropout")  # config keys that only some models read
MODEL_READS: dict[str, frozenset[str]] = {
    "deotte": frozenset({"width", "dropout"}),
    "vgg6": frozenset({"width", "dropout"}),
    "small": frozenset({"width", "dropout"}),
    "mlp": frozenset({"dropout"}),
    "convnet3": frozenset({"width", "dropout"}),
    "lenet5": frozenset(),
    "vgg8": frozenset({"width", "dropout"}),
    "keras_mnist_cnn": frozenset(),
}


def require_model_name(name: str) -> None:
    """UserError unless `name` is a model of the registry."""
    if name not in MODEL_READS:
        raise UserError(f"unknown model {name!r}: expected one of {', '.join(sorted(MODEL_READS))}")


def check_model_keys(model: str, chosen: set[str]) -> None:
    """A model-shape key the user set by hand (--config, key=value) that the model does not read is a mistake;
    one the competition's defaults or a preset set is not (they serve their own model)."""
    require_model_name(model)
    chosen = chosen | ({"width"} if "full_width" in chosen else set())  # the full-data models' width
    ignored = [key for key in SHAPE_KEYS if key in chosen and key not in MODEL_READS[model]]
    if not ignored:
        return
    reads = [key for key in SHAPE_KEYS if key in MODEL_READS[model]]
    what = f"it reads {' and '.join(reads)} only" if reads else f"it reads neither {' nor '.join(SHAPE_KEYS)}"
    raise UserError(
        f"config: model {model} does not read {' or '.join(ignored)} ({what}); leave"
        f" {'it' if len(ignored) == 1 else 'them'} out or choose a model that reads {' and '.join(ignored)}"
    )
