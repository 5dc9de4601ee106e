"""The benchmark harness: recipes trained side by side on one fixed holdout split, one table.

A recipe is a name and config overrides: `default` (the competition's config), a preset of configs/presets/
(`reference` is Chris Deotte's published CNN), or NAME:key=value,... (on the preset NAME when there is one, or
`preset=P`; on the competition's config otherwise). Every recipe trains one model on the same split; after each
finished epoch the holdout and every extra labelled set (Kannada's Dig-MNIST) are scored, without test-time
shifts, and the clock pauses while they are. Two uses:

- the budget benchmark (`python -m bench.bench`): every recipe cut at the same minutes of training, accuracy at
  checkpoints, each recipe against the reference recipe (McNemar's exact test on the same rows: p >= 0.05 is a
  tie), speed against the machine's float32 matmul rate; bench/results/<competition>-<UTC stamp>.json and .md,
  rewritten after each recipe;
- the model zoo (`python run.py zoo`): the recipes `model=<name>` for every registered model, each over its
  whole schedule; submissions/<competition>/zoo/zoo.md and zoo.csv.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from common import runs
from common.data.files import Dataset, load_dataset
from common.data.folds import HOLDOUT_SEED, holdout_split, stratified_subset
from common.ground.config import Config, available_presets, chosen_keys, load_config
from common.ground.errors import UserError
from common.ground.paths import PROJECT_ROOT
from common.ground.spec import CompetitionSpec, get_spec
from common.runs.metrics import accuracy
from common.runs.stats import mcnemar
from common.training.backend import cpu_flags, cpu_model, setup_hardware
from common.training.batches import TrainBatches
from common.training.models import MODELS, check_model_keys
from common.training.train import averaged_weights, compiled_model, predict_sets

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
TRAIN_FLOPS_PER_FORWARD = 3  # forward + backward (gradients of inputs and of weights) ~ 3x the forward pass
HOLDOUT = "holdout"
DEFAULT_RECIPE = "default"
REFERENCE_RECIPE = "reference"
SPEED_ROUNDS = 5  # rounds of the model alone and the trainer, taking turns (bench/speed.py)
PRESET_KEY = "preset"  # NAME:preset=P,... starts a recipe from preset P


# ---------------------------------------------------------------------------
# Recipes: a name and config overrides
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    name: str
    preset: str | None = None  # None: the competition's own config
    overrides: tuple[str, ...] = ()  # key=value, applied after the preset and the options' overrides

    def spelled(self) -> str:
        """How the recipe reads on the command line."""
        pairs = [f"{PRESET_KEY}={self.preset}"] if self.preset not in (None, self.name) else []
        pairs += self.overrides
        return f"{self.name}:{','.join(pairs)}" if pairs else self.name


def parse_recipes(text: str) -> list[Recipe]:
    """`reference,default,wide:width=48,epochs=20` -> three recipes: a key=value word with no name before it
    belongs to the recipe on its left."""
    groups: list[list[str]] = []
    for word in (part.strip() for part in text.split(",")):
        if not word:
            continue
        if "=" in word and ":" not in word.partition("=")[0]:
            if not groups:
                raise UserError(f"recipe list {text!r} starts with {word!r}: give a name first, e.g. wide:{word}")
            groups[-1].append(word)
        else:
            groups.append([word])
    return [recipe_from(group) for group in groups]


def recipe_from(words: list[str]) -> Recipe:
    """One recipe from its words: NAME, or NAME:key=value followed by more key=value words."""
    name, colon, first = (part.strip() for part in words[0].partition(":"))
    if not name:
        raise UserError(f"recipe {words[0]!r} needs a name before ':', e.g. wide:width=48")
    pairs = [pair for pair in [first, *words[1:]] if pair]
    presets = [pair.partition("=")[2] for pair in pairs if pair.partition("=")[0] == PRESET_KEY]
    if len(presets) > 1:
        raise UserError(f"recipe {name!r} names {len(presets)} presets: give preset= once")
    overrides = tuple(pair for pair in pairs if pair.partition("=")[0] != PRESET_KEY)
    if presets:
        return Recipe(name, presets[0], overrides)
    if name == DEFAULT_RECIPE or (colon and name not in available_presets()):
        return Recipe(name, None, overrides)
    return Recipe(name, name, overrides)  # a preset (an unknown one is refused when the config is loaded)


def recipe_config(competition: str, recipe: Recipe, overrides: Sequence[str] = ()) -> Config:
    """The recipe's resolved config: the competition's, the preset, the options' overrides, the recipe's own."""
    pairs = [*overrides, *recipe.overrides]
    cfg = load_config(competition, recipe.preset, overrides=pairs)[0]
    check_model_keys(cfg.model, chosen_keys(None, pairs))  # an unknown model, or a key the model ignores
    return cfg


def recipe_configs(
    competition: str, recipes: Sequence[Recipe], overrides: Sequence[str] = ()
) -> list[tuple[Recipe, Config]]:
    """Every recipe with its config, checked before anything trains."""
    if not recipes:
        raise UserError("bench: --recipes needs at least one recipe, e.g. reference,default")
    names = [recipe.name for recipe in recipes]
    if len(set(names)) != len(names):
        raise UserError(f"bench: a recipe is listed twice in {','.join(names)}")
    return [(recipe, recipe_config(competition, recipe, overrides)) for recipe in recipes]


def reference_name(chosen: str | None, names: Sequence[str]) -> str | None:
    """The recipe the others are compared with: `chosen`, or `reference` when it is among them, or none."""
    if chosen is None:
        return REFERENCE_RECIPE if REFERENCE_RECIPE in names else None
    if chosen not in names:
        raise UserError(f"bench: --reference {chosen!r} is not among the recipes ({', '.join(names)})")
    return chosen


# ---------------------------------------------------------------------------
# Options and the split
# ---------------------------------------------------------------------------


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


@dataclass(frozen=True)
class BenchSplit:
    data: Dataset
    train_rows: np.ndarray  # rows of train.csv the recipes train on (each recipe's own cap aside)
    holdout_rows: np.ndarray
    seed: int

    @property
    def sets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The sets scored after each epoch: the holdout, then each extra labelled set under its file name
        (Dig-MNIST.csv), which cannot be mistaken for the split's holdout (digits' extra set is holdout.csv)."""
        images, labels = self.data.train.images, self.data.train.labels
        sets = {HOLDOUT: (images[self.holdout_rows], labels[self.holdout_rows])}
        sets |= {self.data.spec.extra_sets[name]: (t.images, t.labels) for name, t in self.data.extras.items()}
        for half, (name, rows) in self.cuts.items():  # Kannada: one half of Dig-MNIST picks, the other reports
            images, labels = sets[name]
            sets[half] = (images[rows], labels[rows])
        return sets

    @property
    def cuts(self) -> dict[str, tuple[str, np.ndarray]]:
        """Sets scored from another set's predictions (half -> (that set, its rows)): each judged set's halves."""
        halves = self.data.judged_halves().items()
        return {half: (self.data.spec.extra_sets[name], rows) for half, (name, rows) in halves}


def fixed_split(labels: np.ndarray, fraction: float, subset_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted row indices (train, holdout): a stratified subset of `subset_rows` rows (all when 0), of which a
    stratified `fraction` is held out. With subset_rows 0 and HOLDOUT_SEED, the config key `holdout`'s rows."""
    rows = stratified_subset(labels, subset_rows, seed)
    train, held = holdout_split(labels[rows], fraction, seed)
    return rows[train], rows[held]


def prepare_split(competition: str, options: BenchOptions) -> BenchSplit:
    data = load_dataset(get_spec(competition), options.data_dir)
    train, held = fixed_split(data.train.labels, options.holdout, options.split_rows, options.split_seed)
    return BenchSplit(data, train, held, options.split_seed)


def capped_rows(labels: np.ndarray, rows: np.ndarray, *limits: int) -> np.ndarray:
    """A stratified subset of `rows` of the smallest positive limit (all of them when every limit is 0)."""
    positive = [limit for limit in limits if limit > 0]
    keep = stratified_subset(labels[rows], min(positive) if positive else 0, HOLDOUT_SEED)
    return rows[keep]


# ---------------------------------------------------------------------------
# Speed: the model's FLOPs and the machine's matmul rate
# ---------------------------------------------------------------------------


def forward_flops(model: keras.Model) -> int:
    """Multiply-adds x 2 of one image's forward pass through the Conv2D and Dense layers (others are cheap)."""
    return sum(forward_flops(layer) if isinstance(layer, keras.Model) else layer_flops(layer) for layer in model.layers)


def layer_flops(layer: keras.layers.Layer) -> int:
    """Multiply-adds x 2 of one image's forward pass through one built Conv2D or Dense layer; 0 for others."""
    if isinstance(layer, keras.layers.Conv2D):
        kernel_h, kernel_w, inputs_per_group, filters = layer.kernel.shape
        shape = layer.output.shape
        height, width = shape[2:4] if layer.data_format == "channels_first" else shape[1:3]
        return int(2 * height * width * kernel_h * kernel_w * inputs_per_group * filters)
    if isinstance(layer, keras.layers.Dense):
        inputs, units = layer.kernel.shape
        positions = math.prod(layer.output.shape[1:-1])  # 1 on a flat input; more on a sequence or image
        return int(2 * positions * inputs * units)
    return 0


def matmul_gflops(size: int = 2048, seconds_per_round: float = 0.5, rounds: int = 3) -> float:
    """The backend's float32 matmul rate in GFLOP/s (keras.ops.matmul): best of a few rounds after a warm-up."""
    from keras import ops

    a = keras.random.uniform((size, size), seed=1)
    b = keras.random.uniform((size, size), seed=2)
    start = time.perf_counter()
    ops.convert_to_numpy(ops.matmul(a, b))  # warm-up: kernel selection, thread pools, GPU context
    reps = max(1, int(seconds_per_round / max(time.perf_counter() - start, 1e-6)))
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            product = ops.matmul(a, b)
        ops.convert_to_numpy(product)  # waits for the device: ops on one GPU stream run in order
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * reps / best / 1e9


def interleaved_rates(fits: dict[str, Any], images: int, rounds: int) -> dict[str, list[float]]:
    """Images per second of each fit in each round, the fits taking turns (the machine's speed drifts), after
    one untimed call each (tracing, compiling, warm-up)."""
    for fit in fits.values():
        fit()
    rates: dict[str, list[float]] = {name: [] for name in fits}
    for _ in range(rounds):
        for name, fit in fits.items():
            start = time.perf_counter()
            fit()
            rates[name].append(images / (time.perf_counter() - start))
    return rates


def random_batches(cfg: Config, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """`steps` batches of random uint8 images and labels: a training step's time does not depend on the pixels."""
    rng = np.random.default_rng(0)
    n = steps * cfg.batch_size
    return rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, n)


def model_alone_fit(cfg: Config, hardware, images: np.ndarray, labels: np.ndarray) -> Callable[[], Any]:
    """One epoch of the config's model alone over arrays in memory (no augmentation), compiled as for training."""
    from common.training.models import create_model
    from common.training.train import compile_for_training

    one_hot = np.eye(10, dtype=np.float32)[labels]
    alone = compile_for_training(create_model(cfg.model, cfg), cfg, len(images) // cfg.batch_size, hardware)
    return lambda: alone.fit(images, one_hot, batch_size=cfg.batch_size, shuffle=False, verbose=0)


def model_rates(cfg: Config, steps: int, rounds: int = SPEED_ROUNDS) -> dict[str, Any]:
    """Median images per second of the model alone (arrays in memory) and of the training wrapper
    (TrainBatches, in-graph affine), with every round's rate."""
    import keras

    from common.training.backend import setup_hardware
    from common.training.batches import TrainBatches
    from common.training.train import compiled_model

    hardware = setup_hardware(cfg)
    images, labels = random_batches(cfg, steps)
    _, trainer = compiled_model(cfg, steps, hardware)
    batches = TrainBatches(images, labels, cfg, seed=0)
    fits = {
        "model_alone": model_alone_fit(cfg, hardware, images, labels),
        "model_in_trainer": lambda: trainer.fit(batches, shuffle=False, verbose=0),
    }
    rates = interleaved_rates(fits, len(images), rounds)
    keras.backend.clear_session()
    return {name: float(np.median(values)) for name, values in rates.items()} | {
        "rounds": rates,
        "hardware": hardware.description,
    }


def unit_rows(run: runs.Run) -> list[dict[str, Any]]:
    """Per unit: rows trained, epochs, seconds in and out of the epochs, TTA's share of the prediction."""
    cfg = run.cfg
    rows = []
    for unit in run.unit_files("unit.json"):
        record = json.loads(unit.read_text())
        if "images_trained" not in record:
            raise UserError(f"{unit}: trained before units recorded their timings; train the run again")
        trained = record["images_trained"]
        # Every view costs the same; the predict compilation is charged to TTA in proportion (an upper bound).
        tta = record["predict_seconds"] * cfg.tta / (cfg.tta + 1)
        rows.append(
            {
                "unit": unit.parent.name,
                "images_trained": trained,
                "seconds": record["seconds"],
                "epoch_seconds": record["epoch_seconds"],
                "tta_seconds": round(tta, 2),
                "outside_epochs_share": (record["seconds"] - record["epoch_seconds"] - tta) / (record["seconds"] - tta),
                "images_per_second": trained / record["epoch_seconds"],
                "median_epoch_images_per_second": median_epoch_rate(unit.parent, trained),
            }
        )
    return rows


def median_epoch_rate(unit: Path, trained: int) -> float | None:
    """The median epoch's images per second, the first epoch (tracing) left out; None without epoch times."""
    history = pd.read_csv(unit / "history.csv")
    if "seconds" not in history or len(history) < 2:
        return None
    return float(trained / len(history) / history["seconds"].iloc[1:].median())


def machine_description(matmul_rate: float, matmul_size: int) -> dict[str, Any]:
    from common.training.backend import backend_name, gpus

    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "backend": backend_name(),
        "gpus": [name for name, _ in gpus(backend_name(), deterministic=False)],
        # Other work on the machine slows every recipe alike but lowers the absolute numbers: recorded.
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "versions": runs.package_versions(),
        "keras": keras.__version__,
        "matmul_size": matmul_size,
        "matmul_gflops": round(matmul_rate, 1),
    }


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table (pandas' to_markdown, tabulate's pipe format): cells as given, unpadded, never reparsed
    as numbers (0.90000 stays 0.90000)."""
    frame = pd.DataFrame([[str(cell) for cell in row] for row in rows], columns=list(columns), dtype=object)
    return frame.to_markdown(index=False, tablefmt="pipe", stralign=None, numalign=None, disable_numparse=True)


def provenance(command: str) -> dict[str, Any]:
    """What every result file states about itself: when, by which command, on which CPU, at which commit."""
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "cpu_flags": cpu_flags()},
        "git_commit": runs.git_commit(),
    }


def write_result_files(out: Path, stem: str, document: dict[str, Any], markdown: str) -> Path:
    """`out/<stem>-<UTC stamp>.json` and `.md`, written atomically; prints the markdown, returns its path."""
    path = out / f"{stem}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.md"
    runs.write_json(path.with_suffix(".json"), document)
    runs.atomic_write_bytes(path, markdown.encode())
    print(markdown)
    return path


# ---------------------------------------------------------------------------
# Training one recipe (under the budget, when there is one)
# ---------------------------------------------------------------------------


class BudgetedEpochs(keras.callbacks.Callback):
    """Times training alone, scores every labelled set after each finished epoch, stops at the budget.

    The clock pauses while the sets are scored, so a recipe's seconds are training seconds only.
    The budget is checked after every batch: a cut epoch is not scored (it did not finish). Each scored
    epoch's predicted labels are kept (`predicted`) for the paired tests against the reference.
    """

    def __init__(
        self,
        budget_seconds: float,
        steps_per_epoch: int,
        batch_size: int,
        sets: dict,
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
        self.cuts = cuts or {}  # sets scored from rows of another set's predictions (BenchSplit.cuts)
        self.bar = bar
        self.curve: list[dict[str, Any]] = []
        self.predicted: dict[int, dict[str, np.ndarray]] = {}  # epoch -> set -> predicted labels
        self.trained = 0.0  # training seconds up to the last pause
        self.steps_done = 0
        self.stopped_by_budget = False

    def elapsed(self) -> float:
        return self.trained + self.now() - self.resumed_at

    def on_train_begin(self, logs=None) -> None:
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


@dataclass(frozen=True)
class Trained:
    summary: dict[str, Any]  # what the results show (JSON)
    predicted: dict[int, dict[str, np.ndarray]]  # finished epoch -> set -> predicted labels (kept in memory)


def steady_images_per_second(curve: list[dict[str, Any]], overall: float) -> float:
    """The median epoch's speed, leaving out the first epoch (it pays for tracing and compiling)."""
    later = [point["images_per_second"] for point in curve[1:]]
    return float(statistics.median(later)) if later else overall


def train_recipe(recipe: Recipe, cfg: Config, split: BenchSplit, options: BenchOptions) -> Trained:
    """One model of the recipe on the split's train rows, cut at the budget; its curve, speed and FLOPs."""
    hardware = setup_hardware(cfg)  # per recipe: the precision policy follows the recipe's config
    keras.utils.set_random_seed(cfg.seed)
    images, labels = split.data.train.images, split.data.train.labels
    rows = capped_rows(labels, split.train_rows, options.max_train_rows, cfg.max_train_rows)
    batches = TrainBatches(images[rows], labels[rows], cfg, cfg.seed)
    model, trainer = compiled_model(cfg, len(batches), hardware, seed=cfg.seed)
    budget = math.inf if options.budget_minutes is None else options.budget_minutes * 60
    with tqdm(total=cfg.epochs, desc=recipe.name, unit="epoch", leave=False) as bar:
        callback = BudgetedEpochs(budget, len(batches), cfg.batch_size, split.sets, bar, cuts=split.cuts)
        trainer.fit(batches, epochs=cfg.epochs, callbacks=[callback], shuffle=False, verbose=0)
    summary = recipe_summary(recipe, cfg, model, callback, hardware.description, len(rows))
    del model, trainer
    keras.backend.clear_session()  # the next recipe starts from a clean graph
    return Trained(summary, callback.predicted)


def recipe_summary(
    recipe: Recipe, cfg: Config, model: keras.Model, callback: BudgetedEpochs, hardware: str, rows: int
) -> dict[str, Any]:
    flops = forward_flops(model)
    overall = callback.steps_done * cfg.batch_size / max(callback.trained, 1e-9)
    steady = steady_images_per_second(callback.curve, overall)
    return {
        "recipe": recipe.name,
        "preset": recipe.preset,
        "overrides": list(recipe.overrides),
        "model": cfg.model,
        "parameters": model.count_params(),
        "hardware": hardware,
        "train_rows": rows,
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
    split: BenchSplit,
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
# Checkpoints, winners and the paired tests against the reference
# ---------------------------------------------------------------------------


def minutes_label(minutes: float) -> str:
    return f"{minutes:g}"


def point_at(curve: list[dict[str, Any]], minutes: float) -> dict[str, Any] | None:
    """The last epoch finished within `minutes` of training (None when none had finished)."""
    finished = [point for point in curve if point["seconds"] <= minutes * 60]
    return finished[-1] if finished else None


def checkpoint_table(results: dict[str, dict], checkpoints: Sequence[float]) -> dict[str, dict]:
    """recipe -> checkpoint label -> {epoch, seconds, accuracy, extras} or None."""
    table = {}
    for name, result in results.items():
        points = {minutes_label(m): point_at(result["curve"], m) for m in checkpoints}
        keep = ("epoch", "seconds", "accuracy", "extras")
        table[name] = {label: p and {key: p[key] for key in keep} for label, p in points.items()}
    return table


def signal_value(point: dict[str, Any] | None, signal: str) -> float | None:
    if point is None:
        return None
    return point["accuracy"] if signal == HOLDOUT else point["extras"].get(signal)


def winners(table: dict[str, dict], signals: list[str]) -> dict[str, dict[str, str | None]]:
    """checkpoint label -> signal -> the recipe with the best accuracy on it (None when none had an epoch)."""
    labels = next(iter(table.values())).keys() if table else []
    picked = {}
    for label in labels:
        picked[label] = {}
        for signal in signals:
            scored = [(signal_value(row[label], signal), name) for name, row in table.items()]
            scored = [(value, name) for value, name in scored if value is not None]
            picked[label][signal] = max(scored, key=lambda pair: pair[0])[1] if scored else None
    return picked


def paired_test(ours: Trained, reference: Trained, minutes: float, signal: str, truth: np.ndarray) -> dict | None:
    """McNemar's exact test of a recipe against the reference on one set's rows, each at its last epoch
    within `minutes`: the gain, the rows only one of them got right, p, and whether the margin is a tie."""
    a, b = point_at(ours.summary["curve"], minutes), point_at(reference.summary["curve"], minutes)
    if a is None or b is None:
        return None
    result = mcnemar(ours.predicted[a["epoch"]][signal] == truth, reference.predicted[b["epoch"]][signal] == truth)
    return {
        "gain": round(result.acc_a - result.acc_b, 6),
        "only_recipe": result.only_a,
        "only_reference": result.only_b,
        "p_value": result.p_value,
        "tie": not result.significant,
    }


def comparisons(
    trained: dict[str, Trained], reference: str | None, checkpoints: Sequence[float], truth: dict[str, np.ndarray]
) -> dict[str, dict[str, dict[str, dict | None]]]:
    """signal -> recipe -> checkpoint label -> the paired test against the reference (empty until it trained)."""
    if reference is None or reference not in trained:
        return {}
    others = {name: result for name, result in trained.items() if name != reference}
    return {
        signal: {
            name: {minutes_label(m): paired_test(result, trained[reference], m, signal, labels) for m in checkpoints}
            for name, result in others.items()
        }
        for signal, labels in truth.items()
    }


# ---------------------------------------------------------------------------
# The budget benchmark's results: JSON and markdown
# ---------------------------------------------------------------------------


def results_document(
    header: dict[str, Any], trained: dict[str, Trained], truth: dict[str, np.ndarray], complete: bool
) -> dict[str, Any]:
    """Everything the bench measured; each recipe's FLOP/s share uses the matmul rate measured in this run."""
    rate = header["machine"]["matmul_gflops"]
    results = {name: result.summary for name, result in trained.items()}
    for result in results.values():
        result["flops_share"] = round(result["train_gflops_per_second"] / rate, 4) if rate else None
    table = checkpoint_table(results, header["checkpoints_minutes"])
    return {
        **header,
        "complete": complete,
        "recipes": results,
        "checkpoints": table,
        "winners": winners(table, header["signals"]),
        "comparisons": comparisons(trained, header["reference"], header["checkpoints_minutes"], truth),
    }


def accuracy_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.5f}"


def comparison_text(test: dict | None) -> str:
    if test is None:
        return "-"
    return f"{test['gain']:+.5f} (p = {test['p_value']:.2g}{', tie' if test['tie'] else ''})"


def checkpoint_section(document: dict[str, Any], signal: str) -> list[str]:
    """One table per signal: recipe x checkpoint accuracy with the epoch it came from; then each recipe's gain
    over the reference at the same training time, with McNemar's p (the benchmark's target)."""
    labels = [minutes_label(m) for m in document["checkpoints_minutes"]]
    rows = []
    for name, row in document["checkpoints"].items():
        cells = [(signal_value(row[label], signal), row[label]) for label in labels]
        rows.append([name] + [f"{accuracy_text(v)} (ep {p['epoch']})" if p else "-" for v, p in cells])
    for name, tests in document["comparisons"].get(signal, {}).items():
        rows.append([f"{name} - {document['reference']}", *[comparison_text(tests[label]) for label in labels]])
    title = "holdout accuracy" if signal == HOLDOUT else f"{signal} accuracy"
    columns = ["recipe", *[f"{label} min" for label in labels]]
    return [f"### {title} at T minutes of training", "", markdown_table(columns, rows)]


def speed_section(document: dict[str, Any]) -> list[str]:
    columns = ["recipe", "model", "params", "train rows", "epochs done / planned", "train s", "img/s", "steady img/s"]
    columns += ["train MFLOP/img", "train GFLOP/s", "share of matmul"]
    rows = []
    for name, r in document["recipes"].items():
        share = "-" if r["flops_share"] is None else f"{r['flops_share']:.1%}"
        cut = " (cut)" if r["stopped_by_budget"] else ""
        rows.append(
            [name, r["model"], f"{r['parameters']:,}", f"{r['train_rows']:,}"]
            + [f"{r['epochs_finished']} / {r['epochs_planned']}{cut}", f"{r['train_seconds']:.1f}"]
            + [f"{r['images_per_second']:,.0f}", f"{r['images_per_second_steady']:,.0f}"]
            + [f"{r['train_flops_per_image'] / 1e6:.2f}", f"{r['train_gflops_per_second']:.2f}", share]
        )
    return ["### Speed", "", markdown_table(columns, rows)]


def curve_section(document: dict[str, Any]) -> list[str]:
    lines = ["### Curves (one row per finished epoch)", ""]
    extras = [signal for signal in document["signals"] if signal != HOLDOUT]
    for name, r in document["recipes"].items():
        rows = [
            [p["epoch"], f"{p['seconds']:.1f}", accuracy_text(p["accuracy"])]
            + [accuracy_text(p["extras"].get(extra)) for extra in extras]
            + [f"{p['images_per_second']:,.0f}"]
            for p in r["curve"]
        ]
        lines += [f"**{name}**", "", markdown_table(["epoch", "seconds", HOLDOUT, *extras, "img/s"], rows), ""]
    return lines


def picked_text(document: dict[str, Any], label: str, signal: str) -> str:
    """`recipe (signal)`, noting when its margin over the reference is a tie."""
    picked = document["winners"][label][signal]
    test = document["comparisons"].get(signal, {}).get(picked, {}).get(label)
    tie = f"; a tie with {document['reference']}, p = {test['p_value']:.2g}" if test and test["tie"] else ""
    return f"{picked or '-'} ({signal}{tie})"


def winners_section(document: dict[str, Any]) -> list[str]:
    """Which recipe each signal picks at each checkpoint: the holdout decides; extra sets are a second opinion."""
    lines = [
        f"### Picked by: {HOLDOUT} accuracy"
        + "".join(f", with {s} as a second signal" for s in document["signals"][1:]),
        "",
    ]
    for label in document["winners"]:
        choices = ", ".join(picked_text(document, label, signal) for signal in document["signals"])
        lines.append(f"- at {label} min: {choices}")
    return lines


def header_section(document: dict[str, Any]) -> list[str]:
    m, split = document["machine"], document["split"]
    gpus = ", ".join(m["gpus"]) or "none"
    status = "" if document["complete"] else " (in progress: not every recipe has trained yet)"
    tested = "its gains tested with McNemar's exact test on the same rows, p >= 0.05 being a tie"
    reference = f"`{document['reference']}`, {tested}" if document["reference"] else "none"
    return [
        f"# Benchmark: {document['competition']}, {document['created']}{status}",
        "",
        f"`{document['command']}`",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores, GPUs: {gpus}; load average at start {m['load_average']}",
        f"- Keras {m['keras']} on {m.get('backend', 'tensorflow')}; CPU flags: {m.get('cpu_flags', 'not recorded')}; "
        f"float32 matmul ({m['matmul_size']}^2): {m['matmul_gflops']:,.1f} GFLOP/s",
        f"- split: {split['holdout_rows']:,} holdout rows ({split['holdout_fraction']:.0%} of train.csv, stratified, "
        f"random_state {split['random_state']}); up to {split['train_rows']:,} training rows",
        f"- budget {document['budget_minutes']:g} min of training per recipe; overrides: "
        + (" ".join(document["overrides"]) or "none"),
        f"- recipes: {', '.join(f'`{spelled}`' for spelled in document['recipe_definitions'])}; reference: {reference}",
        "",
    ]


def markdown_report(document: dict[str, Any]) -> str:
    lines = header_section(document)
    for signal in document["signals"]:
        lines += [*checkpoint_section(document, signal), ""]
    lines += [*winners_section(document), "", *speed_section(document), "", *curve_section(document)]
    return "\n".join(lines).rstrip() + "\n"


def write_results(stem: Path, document: dict[str, Any]) -> None:
    runs.write_json(stem.with_suffix(".json"), document)
    runs.atomic_write_bytes(stem.with_suffix(".md"), markdown_report(document).encode())


# ---------------------------------------------------------------------------
# The budget benchmark
# ---------------------------------------------------------------------------


def bench_header(
    split: BenchSplit, resolved: Sequence[tuple[Recipe, Config]], options: BenchOptions, created: datetime
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
        "signals": list(split.sets),  # the holdout decides; extra sets are a second opinion
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
    split = prepare_split(competition, options)
    created = datetime.now(UTC)
    stem = options.out / f"{split.data.spec.name}-{created.strftime('%Y%m%d-%H%M%S')}"
    header = bench_header(split, resolved, options, created)
    truth = {name: labels for name, (_, labels) in split.sets.items()}

    def save(trained: dict[str, Trained]) -> None:
        write_results(stem, results_document(header, trained, truth, complete=len(trained) == len(resolved)))

    train_recipes(resolved, split, options, save)
    return stem.with_suffix(".json")


# ---------------------------------------------------------------------------
# The model zoo: the recipes model=<name>, each over its whole schedule
# ---------------------------------------------------------------------------

ZOO_TABLE = "zoo"
ZOO_HOLDOUT = 0.1


def zoo_recipes(models: Sequence[str] | None) -> list[Recipe]:
    """One recipe `model=<name>` per model (every registered model, in registration order, when none given)."""
    return [Recipe(name, None, (f"model={name}",)) for name in (list(models) if models else list(MODELS))]


def zoo_row(result: dict[str, Any], spec: CompetitionSpec) -> dict[str, Any]:
    """A recipe's row of the zoo table: its last epoch's accuracies, size and speed."""
    last = result["curve"][-1] if result["curve"] else {"accuracy": np.nan, "extras": {}}
    extras = {f"{name}_accuracy": last["extras"].get(file, np.nan) for name, file in spec.extra_sets.items()}
    return {
        "model": result["model"],
        "parameters": result["parameters"],
        "val_accuracy": last["accuracy"],
        **extras,
        "train_seconds": round(result["train_seconds"], 1),
        "images_per_second": round(result["images_per_second"]),
        "epochs": result["epochs_finished"],
        "train_rows": result["train_rows"],
        "hardware": result["hardware"],
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
        elif column in ("parameters", "images_per_second", "train_rows"):
            shown[column] = ["-" if pd.isna(value) else f"{int(value):,}" for value in table[column]]
    return shown.fillna("-").astype(str)


def write_zoo_table(folder: Path, competition: str, table: pd.DataFrame) -> None:
    title = f"# Model zoo: {competition}\n\nSame stratified {1 - ZOO_HOLDOUT:.0%}/{ZOO_HOLDOUT:.0%} split of "
    title += "train.csv and the competition's default config for every model; val = the held-out 10%.\n\n"
    shown = formatted(table)
    markdown = title + markdown_table(list(shown.columns), shown.to_numpy().tolist()) + "\n"
    runs.atomic_write_bytes(folder / f"{ZOO_TABLE}.md", markdown.encode())
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
    resolved = recipe_configs(spec.name, zoo_recipes(models), overrides)  # bad names and values fail first
    if max_train_rows < 0:
        raise UserError(f"zoo: --max-train-rows must be 0 (all) or positive, got {max_train_rows}")
    seed = resolved[0][1].seed  # the split the zoo has always used: the config's seed
    options = BenchOptions(None, (), ZOO_HOLDOUT, 0, max_train_rows, seed, data_dir, overrides=tuple(overrides))
    split = prepare_split(spec.name, options)
    folder = (out_root or runs.DEFAULT_ROOT) / spec.name / ZOO_TABLE

    def table_of(trained: dict[str, Trained]) -> pd.DataFrame:
        return merged_table(folder, [zoo_row(result.summary, spec) for result in trained.values()])

    def save(trained: dict[str, Trained]) -> None:
        write_zoo_table(folder, spec.name, table_of(trained))  # saved after each model: Ctrl-C keeps them

    table = table_of(train_recipes(resolved, split, options, save))
    print(formatted(table).to_string(index=False))
    print(f"\ntable written to {folder / (ZOO_TABLE + '.md')} and {ZOO_TABLE}.csv")
    return folder
