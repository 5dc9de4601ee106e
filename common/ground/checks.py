"""What a run's config can be refused for in the light of its competition, before Keras or any data loads: the
model and the keys it reads, rows enough for the folds, the extra sets the competition has, something to score a
run without fold models.
run.py calls it before anything slow starts; the pipeline again, for every other caller."""

from __future__ import annotations

from common.ground.config import Config
from common.ground.errors import UserError
from common.ground.model_keys import check_model_keys
from common.ground.spec import N_CLASSES, CompetitionSpec


def check_run_config(spec: CompetitionSpec, cfg: Config, chosen: set[str] = frozenset()) -> None:
    """UserError for a config `spec` cannot train; `chosen`: the keys the user set by hand (check_model_keys)."""
    check_model_keys(cfg.model, set(chosen))
    check_rows(cfg)
    check_extra_train(spec, cfg)
    check_scored(spec, cfg)


def check_rows(cfg: Config) -> None:
    """max_train_rows must leave every class a row in each fold (a row of each, for a run without folds); how
    many of each label a subset gets is the data's to say (common/data/trainset.py), once it is read."""
    rows = cfg.max_train_rows
    if rows < 0:
        raise UserError(f"config: max_train_rows must be 0 (every row) or positive, got {rows}")
    least = N_CLASSES * max(cfg.folds, 1)
    if 0 < rows < least:
        per_class = f"{rows} rows over {N_CLASSES} classes is {rows // N_CLASSES} per class"
        need = f"fewer than the {cfg.folds} folds (one row of each class per fold)" if cfg.folds else "not one"
        raise UserError(
            f"config: max_train_rows {rows} leaves too few rows per class"
            f"{f' for {cfg.folds} folds' if cfg.folds else ''}: {per_class}, {need}; the least is"
            f" max_train_rows={least} (0 = every row)"
        )


def check_extra_train(spec: CompetitionSpec, cfg: Config) -> None:
    """extra_train must name one of the competition's extra labelled sets."""
    if cfg.extra_train and cfg.extra_train not in spec.extra_sets:
        known = ", ".join(spec.extra_sets) or "none"
        raise UserError(f"config: extra_train {cfg.extra_train!r} is not an extra set of {spec.name} ({known})")


def check_scored(spec: CompetitionSpec, cfg: Config) -> None:
    """A run without fold models gives no OOF: its holdout or an extra set it does not train on must score it."""
    scoring = [name for name in spec.extra_sets if name != cfg.extra_train]
    if cfg.folds == 0 and not cfg.holdout and not scoring:
        raise UserError(
            f"config: folds 0 leaves nothing to score the run: {spec.name} has no extra labelled set it does not"
            " train on; set holdout (e.g. holdout=0.1) or folds of 2 or more"
        )
