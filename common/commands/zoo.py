"""The model zoo: every registered model trained on the same holdout split under the same budget.

One fixed, stratified 90/10 split of train.csv (optionally of a stratified subset of it) and the
competition's default config with only `model` (and `epochs`) changed, so the table compares architectures
and nothing else. The table goes to submissions/<competition>/zoo/zoo.md and zoo.csv; rows of models trained
earlier are kept (a later run of the same model replaces its row), so the zoo can be filled a few models at
a time. The `epochs`, `train_rows` and `hardware` columns show each row's budget.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from common import runs
from common.data.files import Dataset, load_dataset
from common.data.folds import stratified_subset
from common.ground.config import Config, load_config
from common.ground.errors import UserError
from common.ground.spec import CompetitionSpec
from common.training.models import MODELS, require_model

VALID_FRACTION = 0.1
TABLE_NAME = "zoo"


# ---------------------------------------------------------------------------
# The split and the configs
# ---------------------------------------------------------------------------


def zoo_models(models: list[str] | None) -> list[str]:
    """The models to train, checked: every registered model (in registration order) when none are given."""
    chosen = list(models) if models else list(MODELS)
    for name in chosen:
        require_model(name)  # UserError naming the known models
    if len(set(chosen)) != len(chosen):
        raise UserError(f"zoo: a model is listed twice in {','.join(chosen)}")
    return chosen


def zoo_config(competition: str, model: str, epochs: int | None) -> Config:
    """The competition's default config with only the model (and the epochs) changed."""
    overrides = [f"model={model}"] + ([f"epochs={epochs}"] if epochs is not None else [])
    return load_config(competition, overrides=overrides)[0]


def validation_split(labels: np.ndarray, max_train_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, valid) of train.csv: a fixed stratified 90/10 split, the same for every model."""
    rows = stratified_subset(labels, max_train_rows, seed)
    train, valid = train_test_split(rows, test_size=VALID_FRACTION, stratify=labels[rows], random_state=seed)
    return np.sort(train), np.sort(valid)


# ---------------------------------------------------------------------------
# Training one model and scoring it
# ---------------------------------------------------------------------------


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(probabilities.argmax(axis=1) == labels))


def zoo_row(cfg: Config, data: Dataset, split: tuple[np.ndarray, np.ndarray], hardware) -> dict:
    """Trains cfg.model on the split's train rows; its table row (accuracies, size, speed)."""
    import keras
    from tqdm.keras import TqdmCallback

    from common.training.train import train_unit

    train, valid = split
    images, labels = data.train.images, data.train.labels
    extras = {name: table.images for name, table in data.extras.items()}
    progress = TqdmCallback(epochs=cfg.epochs, verbose=0, leave=False, desc=cfg.model)
    model, result = train_unit(
        cfg, cfg.seed, (images[train], labels[train]), (images[valid], labels[valid]), extras, hardware, progress
    )
    epochs_run = len(result.history)  # fewer than cfg.epochs when early stopping fired
    row = {
        "model": cfg.model,
        "parameters": model.count_params(),
        "val_accuracy": accuracy(result.probabilities["valid"], labels[valid]),
        **{f"{name}_accuracy": accuracy(result.probabilities[name], t.labels) for name, t in data.extras.items()},
        "train_seconds": round(result.seconds, 1),
        "images_per_second": round(result.images_trained / result.epoch_seconds),  # inside the epochs
        "epochs": epochs_run,
        "train_rows": len(train),
        "hardware": hardware.description,
    }
    del model
    keras.backend.clear_session()  # each model starts from a clean graph; memory does not grow with the zoo
    return row


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------


def merged_table(folder: Path, rows: list[dict]) -> pd.DataFrame:
    """The new rows plus earlier rows of other models, best validation accuracy first."""
    new = pd.DataFrame(rows)
    previous = folder / f"{TABLE_NAME}.csv"
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
        elif column in ("parameters", "images_per_second", "train_rows"):
            shown[column] = ["-" if pd.isna(value) else f"{int(value):,}" for value in table[column]]
    return shown.fillna("-").astype(str)


def markdown_table(table: pd.DataFrame) -> str:
    shown = formatted(table)
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + " --- |" * len(shown.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_table(folder: Path, competition: str, table: pd.DataFrame) -> None:
    title = f"# Model zoo: {competition}\n\nSame stratified {1 - VALID_FRACTION:.0%}/{VALID_FRACTION:.0%} split of "
    title += "train.csv and the competition's default config for every model; val = the held-out 10%.\n\n"
    runs.atomic_write_bytes(folder / f"{TABLE_NAME}.md", (title + markdown_table(table)).encode())
    runs.atomic_write_bytes(folder / f"{TABLE_NAME}.csv", table.to_csv(index=False).encode())


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


def run_zoo(
    spec: CompetitionSpec,
    models: list[str] | None = None,
    epochs: int | None = None,
    max_train_rows: int = 0,
    data_dir: str | None = None,
    out_root: Path | None = None,
) -> Path:
    """Trains each model on the same split; writes and prints the table; returns the zoo folder."""
    from common.training.backend import setup_hardware

    names = zoo_models(models)
    configs = [zoo_config(spec.name, name, epochs) for name in names]  # bad epochs fail before any training
    if max_train_rows < 0:
        raise UserError(f"zoo: --max-train-rows must be 0 (all) or positive, got {max_train_rows}")
    data = load_dataset(spec, data_dir)
    split = validation_split(data.train.labels, max_train_rows, configs[0].seed)
    folder = (out_root or runs.DEFAULT_ROOT) / spec.name / "zoo"
    hardware = setup_hardware(configs[0])
    rows = []
    for cfg in tqdm(configs, desc=f"zoo {spec.name}", unit="model"):
        rows.append(zoo_row(cfg, data, split, hardware))
        write_table(folder, spec.name, merged_table(folder, rows))  # saved after each model: Ctrl-C keeps them
    table = merged_table(folder, rows)
    print(formatted(table).to_string(index=False))
    print(f"\ntable written to {folder / (TABLE_NAME + '.md')} and {TABLE_NAME}.csv")
    return folder
