"""The model zoo (python run.py zoo COMPETITION): every registered model (or those named) trained on one fixed
stratified 90/10 split of train.csv, over the competition's own schedule, into one table.

Each model is the competition's config with `model=<name>`, trained once on the split of
common/commands/fixed_split.py, as a run trains a unit;
submissions/<competition>/zoo/zoo.md and zoo.csv are rewritten after each model, keeping the rows of models
trained earlier (a later run of a model replaces its row).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from common import runs
from common.commands.fixed_split import SplitModel, checked_config, prepare_split, train_split_model
from common.ground.config import Config
from common.ground.errors import UserError
from common.ground.spec import CompetitionSpec
from common.runs.metrics import accuracy
from common.training.models import MODELS

ZOO_TABLE = "zoo"
ZOO_HOLDOUT = 0.1
COUNT_COLUMNS = ("parameters", "images_per_second", "train_rows")  # shown with thousands separators


def zoo_configs(competition: str, models: Sequence[str] | None, overrides: Sequence[str]) -> dict[str, Config]:
    """Each model's config, `model=<name>` on the competition's and `overrides` (every registered model, in
    registration order, when none given); checked before anything trains."""
    names = list(models) if models else list(MODELS)
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UserError(f"zoo: --models names {twice[0]} twice")
    return {name: checked_config(competition, None, [*overrides, f"model={name}"]) for name in names}


def zoo_row(trained: SplitModel, model_name: str, labels: dict[str, np.ndarray]) -> dict[str, Any]:
    """A model's row of the zoo table: accuracies after its last epoch, size and speed. `labels` are the truth
    of the holdout ("valid") and of each extra set."""
    result = trained.result
    scores = {name: accuracy(truth, result.probabilities[name]) for name, truth in labels.items()}
    return {
        "model": model_name,
        "parameters": trained.model.count_params(),
        "val_accuracy": scores.pop("valid"),
        **{f"{name}_accuracy": score for name, score in scores.items()},
        "train_seconds": round(result.epoch_seconds, 1),
        "images_per_second": round(result.images_trained / max(result.epoch_seconds, 1e-9)),
        "epochs": len(result.history),
        "train_rows": trained.train_rows,
        "hardware": trained.hardware,
    }


def merged_table(folder: Path, rows: list[dict]) -> pd.DataFrame:
    """The new rows plus earlier rows of other models, best validation accuracy first."""
    new = pd.DataFrame(rows)
    previous = folder / f"{ZOO_TABLE}.csv"
    if previous.is_file():
        old = pd.read_csv(previous)
        new = pd.concat([old[~old["model"].isin(new["model"])], new], ignore_index=True)
    return new.sort_values("val_accuracy", ascending=False, kind="stable").reset_index(drop=True)


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """Strings for showing: accuracies to 5 decimals, counts with thousands separators."""
    shown = table.astype(object).copy()
    for column in table.columns:
        if column.endswith("_accuracy"):
            shown[column] = ["-" if pd.isna(value) else f"{value:.5f}" for value in table[column]]
        elif column in COUNT_COLUMNS:
            shown[column] = ["-" if pd.isna(value) else f"{int(value):,}" for value in table[column]]
    return shown.fillna("-").astype(str)


def write_zoo_table(folder: Path, competition: str, table: pd.DataFrame) -> None:
    title = f"# Model zoo: {competition}\n\nSame stratified {1 - ZOO_HOLDOUT:.0%}/{ZOO_HOLDOUT:.0%} split of "
    title += "train.csv and the competition's default config for every model; val = the held-out 10%.\n\n"
    markdown = formatted(table).to_markdown(index=False, tablefmt="pipe", stralign=None, disable_numparse=True)
    runs.atomic_write_bytes(folder / f"{ZOO_TABLE}.md", (title + markdown + "\n").encode())
    runs.atomic_write_bytes(folder / f"{ZOO_TABLE}.csv", table.to_csv(index=False).encode())


def run_zoo(
    spec: CompetitionSpec,
    models: list[str] | None = None,
    epochs: int | None = None,
    max_train_rows: int = 0,
    data_dir: str | None = None,
    out_root: Path | None = None,
) -> Path:
    """Trains each model on the same fixed split (90/10 of a stratified `max_train_rows` subset, or of all rows);
    writes the table after each model (earlier rows of other models kept), prints it; returns the zoo folder."""
    overrides = [f"epochs={epochs}"] if epochs is not None else []
    configs = zoo_configs(spec.name, models, overrides)  # bad names and values fail first
    if max_train_rows < 0:
        raise UserError(f"zoo: --max-train-rows must be 0 (all) or positive, got {max_train_rows}")
    seed = next(iter(configs.values())).seed  # the split the zoo has always used: the config's seed
    split = prepare_split(spec.name, ZOO_HOLDOUT, max_train_rows, seed, data_dir)
    labels = {"valid": split.holdout[1]} | {name: table.labels for name, table in split.data.extras.items()}
    folder = (out_root or runs.DEFAULT_ROOT) / spec.name / ZOO_TABLE
    rows: list[dict[str, Any]] = []
    for name, cfg in tqdm(configs.items(), desc=f"zoo {spec.name}", unit="model"):
        trained = train_split_model(cfg, split)
        rows.append(zoo_row(trained, name, labels))
        del trained
        keras.backend.clear_session()  # the next model starts from a clean graph
        write_zoo_table(folder, spec.name, merged_table(folder, rows))  # after each model: Ctrl-C keeps them
    table = merged_table(folder, rows)
    print(formatted(table).to_string(index=False))
    print(f"\ntable written to {folder / (ZOO_TABLE + '.md')} and {ZOO_TABLE}.csv")
    return folder
