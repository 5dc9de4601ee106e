"""The budget benchmark: recipes trained side by side on one fixed holdout split, each cut at the same minutes
of training, scored after every finished epoch on the holdout and every extra labelled set.

Every recipe trains through `train_unit`, the trainer a run uses, with a `BudgetCallback` that stops it when
its training minutes are spent and scores each finished epoch (the clock pausing while it does). The results
(bench/harness/budget_report.py) are rewritten after each recipe.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
from tqdm.auto import tqdm

from bench.harness.budget_report import HOLDOUT, Trained, results_document, write_results
from bench.harness.flops import TRAIN_FLOPS_PER_FORWARD, forward_flops, matmul_gflops
from bench.harness.recipes import REFERENCE_RECIPE, Recipe
from bench.harness.results import RESULTS_DIR, machine_description
from common import runs
from common.commands.fixed_split import FixedSplit, SplitModel, capped_rows, prepare_split, train_split_model
from common.data.folds import HOLDOUT_SEED
from common.ground.config import Config
from common.ground.errors import UserError
from common.runs.metrics import accuracy
from common.training.train import predict_sets


@contextmanager
def averaged_weights(model: keras.Model) -> Iterator[None]:
    """Inside: with `ema`, the weights that fit will end with (the optimiser's moving averages) in place of the
    current ones, to score an epoch as the saved model would be; without `ema`, nothing changes."""
    optimizer = getattr(model, "optimizer", None)  # none on a model that was never compiled
    if not getattr(optimizer, "use_ema", False):
        yield
        return
    current = [variable.numpy() for variable in model.trainable_variables]
    averages = optimizer._model_variables_moving_average  # Keras 3.15 internals; tests/test_bench.py checks them
    for variable, average in zip(model.trainable_variables, averages, strict=True):
        variable.assign(average)
    try:
        yield
    finally:
        for variable, value in zip(model.trainable_variables, current, strict=True):
            variable.assign(value)


@dataclass(frozen=True)
class BenchOptions:
    budget_minutes: float | None = None  # training minutes per recipe; None: each recipe's whole schedule
    checkpoints: tuple[float, ...] = ()  # minutes of training at which the recipes are compared
    holdout: float = 0.1  # share of the split's rows held out (stratified)
    max_train_rows: int = 0  # 0 = every training row of the split; else a stratified subset of them
    split_rows: int = 0  # 0 = the split is of all of train.csv; else of a stratified subset of this many rows
    split_seed: int = HOLDOUT_SEED  # HOLDOUT_SEED: the same holdout as the config key `holdout`
    data_dir: str | None = None
    out: Path = RESULTS_DIR
    overrides: tuple[str, ...] = ()  # key=value applied to every recipe (recorded in the results)
    matmul_size: int = 2048
    command: str = ""
    reference: str | None = None  # the recipe every other one is compared with

    def __post_init__(self) -> None:
        budget = self.budget_minutes
        if budget is not None and not budget > 0:
            raise UserError(f"bench: --budget-minutes must be positive, got {budget}")
        if self.checkpoints and min(self.checkpoints) <= 0:
            raise UserError(f"bench: --checkpoints must be positive minutes, got {list(self.checkpoints)}")
        if self.checkpoints and budget is not None and max(self.checkpoints) > budget:
            raise UserError(f"bench: checkpoint {max(self.checkpoints):g} min is beyond --budget-minutes {budget:g}")
        if not 0 < self.holdout < 1:
            raise UserError(f"bench: --holdout must be between 0 and 1, got {self.holdout}")
        if self.max_train_rows < 0 or self.split_rows < 0:
            raise UserError(f"bench: --max-train-rows must be 0 (all) or positive, got {self.max_train_rows}")
        if self.matmul_size < 1:
            raise UserError(f"bench: --matmul-size must be positive, got {self.matmul_size}")


def reference_name(chosen: str | None, names: Sequence[str]) -> str | None:
    """The recipe the others are compared with: `chosen`, or `reference` when it is among them, or none."""
    if chosen is None:
        return REFERENCE_RECIPE if REFERENCE_RECIPE in names else None
    if chosen not in names:
        raise UserError(f"bench: --reference {chosen!r} is not among the recipes ({', '.join(names)})")
    return chosen


# ---------------------------------------------------------------------------
# What is scored after each epoch: the signals
# ---------------------------------------------------------------------------


def signal_cuts(split: FixedSplit) -> dict[str, tuple[str, np.ndarray]]:
    """Sets scored from another set's predictions (half -> (that set, its rows)): each judged set's halves."""
    halves = split.data.judged_halves().items()
    return {half: (split.data.spec.extra_sets[name], rows) for half, (name, rows) in halves}


def signal_sets(split: FixedSplit) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The sets scored after each epoch: the holdout, then each extra labelled set under its file name
    (Dig-MNIST.csv), which cannot be mistaken for the split's holdout, then each judged set's halves."""
    sets = {HOLDOUT: split.holdout}
    sets |= {split.data.spec.extra_sets[name]: (t.images, t.labels) for name, t in split.data.extras.items()}
    for half, (name, rows) in signal_cuts(split).items():  # Kannada: one half of Dig-MNIST picks, the other reports
        images, labels = sets[name]
        sets[half] = (images[rows], labels[rows])
    return sets


# ---------------------------------------------------------------------------
# The budget callback
# ---------------------------------------------------------------------------


class BudgetCallback(keras.callbacks.Callback):
    """Stops training once `budget_seconds` of it are spent; scores every labelled set after each finished epoch.

    The clock pauses while the sets are scored, so a recipe's seconds are training seconds only. The budget is
    checked after every batch: a cut epoch is not scored (it did not finish). Each scored epoch's predicted
    labels are kept (`predicted`) for the paired tests against the reference.
    """

    def __init__(
        self,
        budget_seconds: float,
        batch_size: int,
        sets: dict,
        steps_per_epoch: int | None = None,  # None: the steps Keras' fit says an epoch has
        bar=None,
        now=time.perf_counter,
        cuts: dict | None = None,
    ) -> None:
        super().__init__()
        self.now = now  # the clock; tests pass a fake one
        self.budget_seconds = budget_seconds
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.sets = sets  # name -> (images, labels); HOLDOUT first
        self.cuts = cuts or {}  # sets scored from rows of another set's predictions (signal_cuts)
        self.bar = bar
        self.curve: list[dict[str, Any]] = []
        self.predicted: dict[int, dict[str, np.ndarray]] = {}  # epoch -> set -> predicted labels
        self.trained = 0.0  # training seconds up to the last pause
        self.steps_done = 0
        self.stopped_by_budget = False

    def elapsed(self) -> float:
        return self.trained + self.now() - self.resumed_at

    def on_train_begin(self, logs=None) -> None:
        self.steps_per_epoch = self.steps_per_epoch or self.params["steps"]
        self.resumed_at = self.now()

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self.epoch_steps, self.epoch_start = 0, self.elapsed()

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.epoch_steps += 1
        if self.elapsed() >= self.budget_seconds:
            self.model.stop_training = self.stopped_by_budget = True

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.trained = self.elapsed()  # pause the clock: scoring is not training
        self.steps_done += self.epoch_steps
        if self.epoch_steps == self.steps_per_epoch:
            self.curve.append(self.scored(epoch + 1, (logs or {}).get("loss")))
        self.resumed_at = self.now()  # resume

    def scored(self, epoch: int, loss: float | None) -> dict[str, Any]:
        start = self.now()
        with averaged_weights(self.model):  # with `ema`, score the weights the recipe would save
            predicted = {name: images for name, (images, _) in self.sets.items() if name not in self.cuts}
            probabilities = predict_sets(self.model, predicted)
        probabilities |= {half: probabilities[name][rows] for half, (name, rows) in self.cuts.items()}
        self.predicted[epoch] = {name: p.argmax(axis=1).astype(np.int8) for name, p in probabilities.items()}
        scores = {name: accuracy(self.sets[name][1], p) for name, p in probabilities.items()}
        seconds = self.trained - self.epoch_start
        point = {
            "epoch": epoch,
            "seconds": round(self.trained, 3),
            "accuracy": scores.pop(HOLDOUT),
            "extras": scores,
            "images_per_second": round(self.steps_per_epoch * self.batch_size / max(seconds, 1e-9), 1),
            "loss": None if loss is None else float(loss),
            "eval_seconds": round(self.now() - start, 3),
        }
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(acc=f"{point['accuracy']:.4f}", s=f"{self.trained:.0f}")
        return point


# ---------------------------------------------------------------------------
# Training the recipes
# ---------------------------------------------------------------------------


def steady_images_per_second(curve: list[dict[str, Any]], overall: float) -> float:
    """The median epoch's speed, leaving out the first epoch (it pays for tracing and compiling)."""
    later = [point["images_per_second"] for point in curve[1:]]
    return float(statistics.median(later)) if later else overall


def train_recipe(recipe: Recipe, cfg: Config, split: FixedSplit, options: BenchOptions) -> Trained:
    """One model of the recipe on the split's train rows, cut at the budget; its curve, speed and FLOPs."""
    budget = math.inf if options.budget_minutes is None else options.budget_minutes * 60
    with tqdm(total=cfg.epochs, desc=recipe.name, unit="epoch", leave=False) as bar:
        callback = BudgetCallback(budget, cfg.batch_size, signal_sets(split), bar=bar, cuts=signal_cuts(split))
        trained = train_split_model(cfg, split, options.max_train_rows, callbacks=[callback])
    summary = recipe_summary(recipe, cfg, trained, callback)
    del trained
    keras.backend.clear_session()  # the next recipe starts from a clean graph
    return Trained(summary, callback.predicted)


def recipe_summary(recipe: Recipe, cfg: Config, trained: SplitModel, callback: BudgetCallback) -> dict[str, Any]:
    flops = forward_flops(trained.model)
    overall = callback.steps_done * cfg.batch_size / max(callback.trained, 1e-9)
    steady = steady_images_per_second(callback.curve, overall)
    return {
        "recipe": recipe.name,
        "preset": recipe.preset,
        "overrides": list(recipe.overrides),
        "model": cfg.model,
        "parameters": trained.model.count_params(),
        "hardware": trained.hardware,
        "train_rows": trained.train_rows,
        "batch_size": cfg.batch_size,
        "epochs_planned": cfg.epochs,
        "epochs_finished": len(callback.curve),
        "stopped_by_budget": callback.stopped_by_budget,
        "train_seconds": round(callback.trained, 2),
        "images_per_second": round(overall, 1),
        "images_per_second_steady": round(steady, 1),
        "forward_flops_per_image": flops,
        "train_flops_per_image": TRAIN_FLOPS_PER_FORWARD * flops,
        "train_gflops_per_second": round(TRAIN_FLOPS_PER_FORWARD * flops * steady / 1e9, 3),
        "curve": callback.curve,
        "config": cfg.to_dict(),
    }


def train_recipes(
    resolved: Sequence[tuple[Recipe, Config]],
    split: FixedSplit,
    options: BenchOptions,
    after_each: Callable[[dict[str, Trained]], None],
) -> dict[str, Trained]:
    """Trains every recipe on the same split, in order; `after_each` sees the recipes trained so far (the
    results are written there, so an interrupted run keeps the recipes that finished)."""
    trained: dict[str, Trained] = {}
    competition = split.data.spec.name
    for recipe, cfg in tqdm(resolved, desc=f"bench {competition}", unit="recipe"):
        trained[recipe.name] = train_recipe(recipe, cfg, split, options)
        after_each(trained)
    return trained


# ---------------------------------------------------------------------------
# The whole benchmark
# ---------------------------------------------------------------------------


def bench_header(
    split: FixedSplit, resolved: Sequence[tuple[Recipe, Config]], options: BenchOptions, created: datetime
) -> dict[str, Any]:
    """What the results share across recipes: settings, split and machine (its matmul rate measured now)."""
    rate = matmul_gflops(options.matmul_size)
    return {
        "competition": split.data.spec.name,
        "created": created.isoformat(timespec="seconds"),
        "command": options.command,
        "budget_minutes": options.budget_minutes,
        "checkpoints_minutes": list(options.checkpoints),
        "overrides": list(options.overrides),
        "recipe_definitions": [recipe.spelled() for recipe, _ in resolved],
        "reference": options.reference,
        "signals": list(signal_sets(split)),  # the holdout decides; extra sets are a second opinion
        "split": {
            "holdout_fraction": options.holdout,
            "random_state": split.seed,
            "holdout_rows": len(split.holdout_rows),
            "train_rows": len(capped_rows(split.data.train.labels, split.train_rows, options.max_train_rows)),
            "max_train_rows": options.max_train_rows,
            "split_rows": options.split_rows,
        },
        "machine": machine_description(rate, options.matmul_size),
        "versions": runs.package_versions(),
        "git_commit": runs.git_commit(),
    }


def run_bench(competition: str, resolved: Sequence[tuple[Recipe, Config]], options: BenchOptions) -> Path:
    """Trains every recipe on the same split under the budget; writes the results after each recipe (JSON and
    markdown, `options.out/<competition>-<UTC stamp>`) and returns the JSON's path."""
    if options.budget_minutes is None or not options.checkpoints:
        raise UserError("bench: the budget benchmark needs --checkpoints (and a budget, by default the last one)")
    reference = reference_name(options.reference, [recipe.name for recipe, _ in resolved])  # checked before work
    options = dataclasses.replace(options, reference=reference)
    split = prepare_split(competition, options.holdout, options.split_rows, options.split_seed, options.data_dir)
    created = datetime.now(UTC)
    stem = options.out / f"{split.data.spec.name}-{created.strftime('%Y%m%d-%H%M%S')}"
    header = bench_header(split, resolved, options, created)
    truth = {name: labels for name, (_, labels) in signal_sets(split).items()}

    def save(trained: dict[str, Trained]) -> None:
        write_results(stem, results_document(header, trained, truth, complete=len(trained) == len(resolved)))

    train_recipes(resolved, split, options, save)
    return stem.with_suffix(".json")
