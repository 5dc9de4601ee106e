"""Transfer between competitions: start each unit's model from another run's saved weights.

`init_from` (config key, or `--init-from` on the command line) names the source run as COMPETITION/RUN
(a run id, unique prefix, or 'latest', under the same submissions root) or as a run folder's path. It is
resolved to the folder's absolute path before the new run starts, so config.yaml records exactly which
weights were used and a resumed run or a cluster worker finds them again.

Fold model (k, s) starts from the source's fold model f<k mod folds>-s<s mod seeds>. When the source is the
same competition, that model never saw fold k's rows only if the folds are identical, so other folds are
refused: an out-of-fold score must stay out of fold. A full-data model all-s<s> starts from the source's
full-data model all-s<s mod full_models>, or, where the source has none, from its fold model
f0-s<s mod seeds>; it holds nothing out, so only a holdout this run scores must be unseen by the source. A
source without fold models (folds 0) starts fold models of another competition from its full-data models.
The run's log says which source model each kind of unit starts from, and run.json records it unit by unit.

`freeze_convs=true` keeps the copied convolutional layers (and their BatchNorm) fixed and gives the model a
fresh classifier, the usual set-up for a new small alphabet; otherwise every weight is copied and trained on.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from common import runs
from common.data.folds import same_folds
from common.ground.config import Config
from common.ground.errors import UserError
from common.runs.units import all_units, unit_config

log = logging.getLogger("digits")


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
        try:
            source = runs.find_run(root, competition, run_id)
        except UserError as error:  # say where it looked: a run under another --out is named by its path
            raise UserError(f"{key}: {error}, in {root / competition} (name a run elsewhere by its folder)") from None
    return source.require_finished(f": {key} needs a finished run")


def resolve_init_from(cfg: Config, root: Path, competition: str, folds_table: pd.DataFrame) -> Config:
    """cfg with init_from as the source folder's absolute path; UserError when the source cannot serve."""
    if not cfg.init_from:  # Config refuses freeze_convs without it
        return cfg
    source = find_source_run("init_from", cfg.init_from, root)
    if source.is_blend:
        raise UserError(f"init_from: run {source.run_id} is a blend; name one of its sources, a trained run")
    if source.cfg.model != cfg.model:
        raise UserError(
            f"init_from: run {source.run_id} has model={source.cfg.model}, this config model={cfg.model}"
            f" (set model={source.cfg.model} to reuse its weights)"
        )
    plan = transfer_plan(source.cfg, cfg)
    for key, origin in plan.items():
        check_width(source, cfg, key, origin)
    if source.competition == competition:
        check_unseen(source, cfg, plan, folds_table)
    if not source.unit_files(runs.MODEL_KERAS):
        raise UserError(f"init_from: run {source.run_id} saved no models (it was trained with save_models=false)")
    for origin in sorted(set(plan.values())):
        source_model(source, origin)  # each is there before the run starts
    return replace(cfg, init_from=str(source.folder.resolve()))


def check_width(source: runs.Run, cfg: Config, key: runs.UnitKey, origin: runs.UnitKey) -> None:
    """The source model's width must be the unit's (a full-data model's is full_width, when set)."""
    theirs, ours = unit_config(source.cfg, origin).width, unit_config(cfg, key).width
    if theirs != ours:
        name = "width" if key.holds_out else "full_width"
        raise UserError(
            f"init_from: run {source.run_id}'s {model_kind(origin)} {origin} has width={theirs} but this run's"
            f" {model_kind(key)}s have width={ours} (set {name}={theirs} to reuse its weights)"
        )


def check_unseen(
    source: runs.Run, cfg: Config, plan: dict[runs.UnitKey, runs.UnitKey], folds_table: pd.DataFrame
) -> None:
    """A source of the same competition: no unit may start from a model that saw a row the unit is scored on.
    A fold model needs the very same folds; a full-data model, a source that trained on no row this run scores
    without training on it (its holdout, an extra set)."""
    theirs = source.folds()
    if any(key.holds_out for key in plan):
        if not all(origin.holds_out for key, origin in plan.items() if key.holds_out):
            raise UserError(
                f"init_from: run {source.run_id} is {source.competition} without fold models; its full-data models"
                " saw the rows this run's fold models hold out"
            )
        if not same_folds(theirs, folds_table):
            raise UserError(
                f"init_from: run {source.run_id} is {source.competition} with other folds; its models saw this"
                " run's held-out rows"
            )
    unseen = theirs[~theirs["row"].isin(folds_table["row"])]  # rows the source trained on and this run does not
    extra = sorted(set(unseen.get("origin", pd.Series(dtype=str))) - {"train"})
    if extra:
        raise UserError(
            f"init_from: run {source.run_id} trained on {extra[0]} (extra_train), which this run scores; its models"
            " would be scored on rows they saw"
        )
    if cfg.holdout and source.cfg.holdout != cfg.holdout and len(unseen):  # one share holds out the same rows
        raise UserError(
            f"init_from: run {source.run_id} kept holdout={source.cfg.holdout} and trained on {len(unseen)} rows"
            f" that this run does not; this run scores holdout={cfg.holdout}, perhaps on rows its models saw"
            f" (start from a run with holdout={cfg.holdout})"
        )


# ---------------------------------------------------------------------------
# Which source model each unit starts from
# ---------------------------------------------------------------------------


def source_unit(source_cfg: Config, key: runs.UnitKey) -> runs.UnitKey:
    """The source's unit that unit `key` starts from: a fold model from the fold model of its fold and seed (mod
    the source's), a full-data model from a full-data model, else from fold 0's model of its seed (mod the
    source's); a source without fold models gives its full-data models to fold models too."""
    if key.holds_out and source_cfg.folds:
        return runs.UnitKey(key.fold % source_cfg.folds, key.seed % source_cfg.seeds)
    if source_cfg.full_models:
        return runs.UnitKey(None, key.seed % source_cfg.full_models)
    return runs.UnitKey(0, key.seed % source_cfg.seeds)


def transfer_plan(source_cfg: Config, cfg: Config) -> dict[runs.UnitKey, runs.UnitKey]:
    """Every unit of `cfg` with the source unit it starts from."""
    return {key: source_unit(source_cfg, key) for key in all_units(cfg)}


def model_kind(key: runs.UnitKey) -> str:
    return "fold model" if key.holds_out else "full-data model"


def source_model(source: runs.Run, origin: runs.UnitKey) -> Path:
    path = source.unit_dir(origin) / runs.MODEL_KERAS
    if not path.is_file():
        raise UserError(f"init_from: {path} is missing")
    return path


def source_model_file(cfg: Config, key: runs.UnitKey) -> Path | None:
    """The source unit's model.keras for unit `key`; None when init_from is not set."""
    if not cfg.init_from:
        return None
    source = runs.load_run(Path(cfg.init_from))
    return source_model(source, source_unit(source.cfg, key))


def transfer_lines(source: runs.Run, plan: dict[runs.UnitKey, runs.UnitKey], freeze_convs: bool) -> list[str]:
    """What the log says: which of the source's models the fold models start from, and each full-data model's."""
    kept = "; conv layers kept as they are, a fresh classifier (freeze_convs)" if freeze_convs else ""
    theirs = f"run {source.run_id}'s"
    folds = {key: origin for key, origin in plan.items() if key.holds_out}
    lines = []
    if folds:
        kind = model_kind(next(iter(folds.values())))
        pairs = ", ".join(f"{key} from {origin}" for key, origin in folds.items())
        lines.append(f"init_from: fold models start from {theirs} {kind}s ({pairs}){kept}")
    for key, origin in plan.items():
        if not key.holds_out:
            why = " (that run has no full-data model)" if origin.holds_out else ""
            lines.append(
                f"init_from: full-data model {key} starts from {theirs} {model_kind(origin)} {origin}{why}{kept}"
            )
    return lines


def record_transfer(folder: Path, cfg: Config) -> None:
    """Logs which source model each unit starts from (train.log and the console) and records it in run.json,
    unit by unit (init_from: unit -> the source's model.keras); nothing without init_from."""
    if not cfg.init_from:
        return
    source = runs.load_run(Path(cfg.init_from))
    plan = transfer_plan(source.cfg, cfg)
    for line in transfer_lines(source, plan, cfg.freeze_convs):
        log.info(line)
    runs.update_record(folder, init_from={key.name: str(source_model(source, origin)) for key, origin in plan.items()})


# ---------------------------------------------------------------------------
# Warm-starting one unit's model
# ---------------------------------------------------------------------------


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
