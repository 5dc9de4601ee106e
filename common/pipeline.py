"""The whole path for one competition: data -> folds -> units (fold x seed) -> ensemble -> run folder.

Everything is validated before the run folder is created, so bad input leaves nothing behind.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm
from tqdm.keras import TqdmCallback

from common import runs
from common.config import Config
from common.data import Dataset, load_dataset
from common.folds import make_folds, stratified_subset
from common.metrics import accuracy, oof_from_units, per_class_table, run_metrics
from common.models import require_model
from common.report import write_report
from common.spec import CompetitionSpec
from common.submission import build_submission, check_submission, write_submission
from common.train import Hardware, setup_hardware, train_unit

log = logging.getLogger("digits")


@dataclass(frozen=True)
class TrainSet:
    """The rows trained on (all of train.csv, or a stratified subset) and their folds."""

    rows: np.ndarray  # indices into train.csv
    images: np.ndarray
    labels: np.ndarray
    folds: np.ndarray


def prepare_train_set(data: Dataset, cfg: Config) -> TrainSet:
    rows = stratified_subset(data.train.labels, cfg.max_train_rows, cfg.seed)
    labels = data.train.labels[rows]
    return TrainSet(rows, data.train.images[rows], labels, make_folds(labels, cfg.folds, cfg.seed))


def unit_seed(cfg: Config, fold: int, seed_index: int) -> int:
    return cfg.seed + 10_000 * seed_index + fold


def save_unit(folder: Path, model, result) -> None:
    """Each file written atomically; unit.json last, so its presence means the unit is complete."""
    for name, probabilities in result.probabilities.items():
        runs.save_array(folder / f"{name}.npy", probabilities)
    runs.atomic_write_bytes(folder / "history.csv", result.history.to_csv(index=False).encode())
    if model is not None:
        partial = folder / ".model.partial.keras"
        model.save(partial)
        partial.replace(folder / "model.keras")
    runs.write_json(folder / "unit.json", {"seconds": round(result.seconds, 1)})


def train_all_units(folder: Path, cfg: Config, data: Dataset, train: TrainSet, hardware: Hardware) -> dict:
    """Trains every (fold, seed) unit and saves it the moment it finishes; returns their probabilities."""
    predict = {"test": data.test.images} | {name: t.images for name, t in data.extras.items()}
    results = {}
    units = [(f, s) for f in range(cfg.folds) for s in range(cfg.seeds)]
    for fold, seed_index in tqdm(units, desc="units (fold x seed)", unit="unit"):
        held_out = train.folds == fold
        progress = TqdmCallback(epochs=cfg.epochs, verbose=0, leave=False, desc=f"fold {fold} seed {seed_index}")
        model, result = train_unit(
            cfg,
            unit_seed(cfg, fold, seed_index),
            (train.images[~held_out], train.labels[~held_out]),
            (train.images[held_out], train.labels[held_out]),
            predict,
            hardware,
            progress,
        )
        save_unit(runs.unit_dir(folder, fold, seed_index), model if cfg.save_models else None, result)
        score = accuracy(train.labels[held_out], result.probabilities["valid"])
        log.info("fold %d seed %d: accuracy %.5f in %.0f s", fold, seed_index, score, result.seconds)
        results[fold, seed_index] = result
    return results


def write_ensemble(folder: Path, cfg: Config, data: Dataset, train: TrainSet, results: dict) -> dict:
    """Averages the units, scores the ensemble, writes oof/test/extras .npy, metrics and submission."""
    held_out = {key: r.probabilities["valid"] for key, r in results.items()}
    oof = oof_from_units(train.folds, held_out)
    averaged = {
        name: np.mean([r.probabilities[name] for r in results.values()], axis=0) for name in ["test", *data.extras]
    }
    for name, probabilities in {"oof": oof, **averaged}.items():
        runs.save_array(folder / f"{name}.npy", probabilities)
    extras = {name: (t.labels, averaged[name]) for name, t in data.extras.items()}
    seconds = {key: r.seconds for key, r in results.items()}
    metrics = run_metrics(train.labels, train.folds, held_out, oof, seconds, extras)
    runs.write_json(folder / "metrics.json", metrics)
    table = per_class_table(train.labels, oof)
    runs.atomic_write_bytes(folder / "per_class.csv", table.to_csv(index=False).encode())
    write_run_submission(folder, data, averaged["test"])
    return metrics


def write_run_submission(folder: Path, data: Dataset, test_probabilities: np.ndarray) -> Path:
    """The run's submission.csv, checked against sample_submission, copied as the competition's latest."""
    submission = build_submission(data.spec, data.sample, data.test_ids, test_probabilities.argmax(axis=1))
    check_submission(data.spec, data.sample, submission, str(folder / "submission.csv"))
    write_submission(submission, folder / "submission.csv")
    latest = folder.parent / "submission.csv"
    shutil.copyfile(folder / "submission.csv", latest.with_name(".submission.csv.partial"))
    latest.with_name(".submission.csv.partial").replace(latest)
    return folder / "submission.csv"


def attach_log_file(folder: Path) -> logging.Handler:
    handler = logging.FileHandler(folder / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def run_competition(
    spec: CompetitionSpec,
    cfg: Config,
    label: str,
    argv: list[str],
    data_dir: str | None = None,
    out_root: Path | None = None,
) -> Path:
    """Trains and writes one run folder; returns it. Input is validated before the folder exists."""
    start = time.perf_counter()
    require_model(cfg.model)
    data = load_dataset(spec, data_dir)
    train = prepare_train_set(data, cfg)
    hardware = setup_hardware(cfg)
    folder = runs.create_run_dir(out_root or runs.DEFAULT_ROOT, spec.name, label)
    record = runs.start_run(folder, cfg.to_dict(), argv, hardware.description)
    handler = attach_log_file(folder)
    try:
        log.info(
            "%s: %d train rows, %d folds x %d seeds, %s",
            spec.name,
            len(train.rows),
            cfg.folds,
            cfg.seeds,
            hardware.description,
        )
        folds_table = pd.DataFrame({"row": train.rows, "label": train.labels, "fold": train.folds})
        runs.atomic_write_bytes(folder / "folds.csv", folds_table.to_csv(index=False).encode())
        results = train_all_units(folder, cfg, data, train, hardware)
        metrics = write_ensemble(folder, cfg, data, train, results)
        runs.finish_run(folder, record, time.perf_counter() - start)
        log.info("report: %s", write_report(folder, train.images, train.labels))
        print_summary(folder, metrics, time.perf_counter() - start)
    finally:
        log.removeHandler(handler)
        handler.close()
    return folder


def print_summary(folder: Path, metrics: dict, seconds: float) -> None:
    rows = [(f"fold {f}", m["accuracy"], m["seconds"]) for f, m in metrics["folds"].items()]
    rows += [(f"seed {s}", a, None) for s, a in metrics["seeds"].items()] if len(metrics["seeds"]) > 1 else []
    rows += [("OOF ensemble", metrics["oof_accuracy"], seconds)]
    rows += [(name, a, None) for name, a in metrics["extra_accuracy"].items()]
    print(f"\n{'':<14}{'accuracy':>10}{'seconds':>10}")
    for name, acc, secs in rows:
        print(f"{name:<14}{acc:>10.5f}{'' if secs is None else f'{secs:>10.0f}'}")
    print(
        f"\nrun folder:  {folder}\nsubmission:  {folder / 'submission.csv'} (also {folder.parent / 'submission.csv'})"
    )
