"""Pseudo-labelling: a second round of training that adds the test images an earlier run is sure about.

`pseudo_from` (config key, or `--pseudo-from`) names the first-round run as COMPETITION/RUN or a run folder;
like `init_from` it is resolved to the folder's absolute path before the new run starts.

Unit (fold k, seed s) adds the test images whose first-round prediction reaches `pseudo_threshold`, labelled
with that prediction. The prediction is the mean over the source's fold-k models only: they never saw fold
k's rows, so fold k's score stays out of fold. That needs the very same folds, which is checked.
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
from common.runs.units import mean_of_units
from common.training.transfer import find_source_run


def resolve_pseudo_from(cfg: Config, root: Path, competition: str, folds_table: pd.DataFrame) -> Config:
    """cfg with pseudo_from as the source folder's absolute path; UserError when the source cannot serve."""
    if not cfg.pseudo_from:
        return cfg
    source = find_source_run("pseudo_from", cfg.pseudo_from, root)
    if source.is_blend:
        raise UserError(f"pseudo_from: run {source.run_id} is a blend: it has no fold models of its own")
    if source.competition != competition:
        raise UserError(
            f"pseudo_from: run {source.run_id} is {source.competition}; its test set is not {competition}'s"
        )
    if not same_folds(source.folds(), folds_table):
        raise UserError(
            f"pseudo_from: run {source.run_id} has other rows or folds; fold k's pseudo-labels must come from models"
            " that never saw fold k (set the same folds, seed, max_train_rows, holdout and extra_train)"
        )
    return replace(cfg, pseudo_from=str(source.folder.resolve()))


def pseudo_labels(cfg: Config, fold: int | None, test_images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of the test images the source's fold-`fold` models predict with at least
    pseudo_threshold; empty arrays when pseudo_from is not set or the unit has no fold (Config refuses
    pseudo_from with full-data models)."""
    if not cfg.pseudo_from or fold is None:
        return test_images[:0], np.zeros(0, np.int64)
    source = Path(cfg.pseudo_from)
    probabilities = mean_of_units(source, runs.TEST, [key for key in runs.unit_keys(source) if key.fold == fold])
    if probabilities is None:
        raise UserError(f"pseudo_from: {source / runs.UNITS} has no test predictions of fold {fold}")
    if len(probabilities) != len(test_images):
        raise UserError(
            f"pseudo_from: fold {fold}'s test.npy in {source / runs.UNITS} has {len(probabilities)} rows, test.csv"
            f" {len(test_images)}"
        )
    sure = probabilities.max(axis=1) >= cfg.pseudo_threshold
    return test_images[sure], probabilities[sure].argmax(axis=1).astype(np.int64)
