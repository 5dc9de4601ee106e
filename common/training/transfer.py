"""Transfer between competitions: start each unit's model from another run's saved weights.

`init_from` (config key, or `--init-from` on the command line) names the source run as COMPETITION/RUN
(a run id, unique prefix, or 'latest', under the same submissions root) or as a run folder's path. It is
resolved to the folder's absolute path before the new run starts, so config.yaml records exactly which
weights were used and a resumed run or a cluster worker finds them again.

Unit (fold k, seed s) starts from the source's unit f<k mod folds>-s<s mod seeds>. When the source is the
same competition, that model never saw fold k's rows only if the folds are identical, so other folds are
refused: an out-of-fold score must stay out of fold.

`freeze_convs=true` keeps the copied convolutional layers (and their BatchNorm) fixed and gives the model a
fresh classifier, the usual set-up for a new small alphabet; otherwise every weight is copied and trained on.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from common import runs
from common.data.folds import same_folds
from common.ground.config import Config
from common.ground.errors import UserError

TRANSFER_KEYS = ("model", "width")  # the config keys that decide the weights' shapes


# ---------------------------------------------------------------------------
# Resolving the source run (before anything is written)
# ---------------------------------------------------------------------------


def find_source_run(key: str, value: str, root: Path) -> runs.Run:
    """The finished run that config key `key` (init_from, pseudo_from) names as `value`: a run folder's path, or
    COMPETITION/RUN under `root`."""
    path = Path(value).expanduser()
    if runs.is_run_folder(path):
        source = runs.load_run(path.resolve())
    else:
        competition, sep, run_id = value.partition("/")
        if not sep or not run_id or "/" in run_id:
            raise UserError(f"{key} {value!r}: expected COMPETITION/RUN (e.g. mnist/latest) or a run folder")
        source = runs.find_run(root, competition, run_id)
    return source.require_finished(f": {key} needs a finished run")


def resolve_init_from(cfg: Config, root: Path, competition: str, folds_table: pd.DataFrame) -> Config:
    """cfg with init_from as the source folder's absolute path; UserError when the source cannot serve."""
    if not cfg.init_from:  # Config refuses freeze_convs without it
        return cfg
    source = find_source_run("init_from", cfg.init_from, root)
    if source.is_blend:
        raise UserError(f"init_from: run {source.run_id} is a blend; name one of its sources, a trained run")
    for key in TRANSFER_KEYS:
        theirs = getattr(source.cfg, key)
        if theirs != getattr(cfg, key):
            raise UserError(
                f"init_from: run {source.run_id} has {key}={theirs}, this config {key}={getattr(cfg, key)}"
                f" (set {key}={theirs} to reuse its weights)"
            )
    if not source.cfg.folds:
        raise UserError(f"init_from: run {source.run_id} has no fold models; unit (k, s) starts from its unit (k, s)")
    if not source.unit_files(runs.MODEL_KERAS):
        raise UserError(f"init_from: run {source.run_id} saved no models (it was trained with save_models=false)")
    if source.competition == competition and not same_folds(source.folds(), folds_table):
        raise UserError(
            f"init_from: run {source.run_id} is {competition} with other folds; its models saw this run's held-out rows"
        )
    return replace(cfg, init_from=str(source.folder.resolve()))


# ---------------------------------------------------------------------------
# Warm-starting one unit's model
# ---------------------------------------------------------------------------


def source_model_file(cfg: Config, key: runs.UnitKey) -> Path | None:
    """The source unit's model.keras for unit `key`; None when init_from is not set."""
    if not cfg.init_from:
        return None
    source = runs.load_run(Path(cfg.init_from))
    source_cfg = source.cfg
    path = source.unit_dir(runs.UnitKey(key.fold % source_cfg.folds, key.seed % source_cfg.seeds)) / runs.MODEL_KERAS
    if not path.is_file():
        raise UserError(f"init_from: {path} is missing")
    return path


def warm_start(model, source_file: Path, freeze_convs: bool) -> None:
    """Copies the source model's weights into `model`, layer by layer; with freeze_convs, freezes the conv and
    BatchNorm layers and leaves the last layer with weights (the classifier) freshly initialised."""
    import keras

    source = keras.models.load_model(source_file, compile=False)
    target_layers = [layer for layer in model.layers if layer.weights]
    source_layers = [layer for layer in source.layers if layer.weights]
    shapes = [[tuple(w.shape) for w in layer.weights] for layer in target_layers]
    if shapes != [[tuple(w.shape) for w in layer.weights] for layer in source_layers]:
        raise UserError(f"init_from: {source_file} has other layers than model {model.name!r}")
    copied = target_layers[:-1] if freeze_convs else target_layers
    for target, origin in zip(copied, source_layers, strict=False):
        target.set_weights([np.asarray(w) for w in origin.get_weights()])
        if freeze_convs and isinstance(target, keras.layers.Conv2D | keras.layers.BatchNormalization):
            target.trainable = False  # a frozen BatchNorm also runs in inference mode: its statistics stay
