#!/usr/bin/env python
"""Benchmark: recipes trained side by side on one fixed holdout split, under one wall-clock budget.

python bench/bench.py mnist --recipes reference,default --budget-minutes 20 --checkpoints 5,10,20

Every recipe (a preset of configs/presets/, or `default` for the competition's own config) trains one model
on the same stratified split of train.csv. After each finished epoch the holdout (and every extra labelled
set, such as Kannada's Dig-MNIST) is scored; the clock counts training only, not this scoring. A recipe
whose schedule does not fit in the budget is cut there. The accuracy "at T minutes" is that of the last
epoch finished within T minutes of training. Speed is reported as images per second and as the model's
training FLOP/s over the float32 matrix-multiply rate of the same machine, measured in the same run.
Results: bench/results/<competition>-<UTC stamp>.json and .md (see bench/README.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:  # `python bench/bench.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(PROJECT_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the terminal

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from common import runs  # noqa: E402
from common.data.files import Dataset, load_dataset  # noqa: E402
from common.data.folds import HOLDOUT_SEED, holdout_split, stratified_subset  # noqa: E402
from common.ground.config import Config, load_config  # noqa: E402
from common.ground.errors import UserError  # noqa: E402
from common.ground.spec import COMPETITIONS, get_spec  # noqa: E402
from common.training.backend import setup_hardware  # noqa: E402
from common.training.batches import TrainBatches  # noqa: E402
from common.training.train import compiled_model, predict_probabilities  # noqa: E402

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
TRAIN_FLOPS_PER_FORWARD = 3  # forward + backward (gradients of inputs and of weights) ~ 3x the forward pass
HOLDOUT = "holdout"
Split = tuple[np.ndarray, np.ndarray]  # row indices of train.csv: (training rows, holdout rows)


# ---------------------------------------------------------------------------
# Options, recipes and the split
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchOptions:
    budget_minutes: float
    checkpoints: tuple[float, ...]  # minutes of training at which accuracies are compared
    holdout: float = 0.1  # share of train.csv held out (stratified)
    max_train_rows: int = 0  # 0 = every non-holdout row; else a stratified subset of them
    data_dir: str | None = None
    out: Path = RESULTS_DIR
    overrides: tuple[str, ...] = ()  # key=value applied to every recipe (recorded in the results)
    matmul_size: int = 2048
    command: str = ""

    def __post_init__(self) -> None:
        if not self.budget_minutes > 0:
            raise UserError(f"bench: --budget-minutes must be positive, got {self.budget_minutes}")
        if not self.checkpoints or min(self.checkpoints) <= 0:
            raise UserError(f"bench: --checkpoints must be positive minutes, got {list(self.checkpoints)}")
        if max(self.checkpoints) > self.budget_minutes:
            raise UserError(
                f"bench: checkpoint {max(self.checkpoints):g} min is beyond --budget-minutes {self.budget_minutes:g}"
            )
        if not 0 < self.holdout < 1:
            raise UserError(f"bench: --holdout must be between 0 and 1, got {self.holdout}")
        if self.max_train_rows < 0:
            raise UserError(f"bench: --max-train-rows must be 0 (all) or positive, got {self.max_train_rows}")
        if self.matmul_size < 1:
            raise UserError(f"bench: --matmul-size must be positive, got {self.matmul_size}")


def recipe_configs(competition: str, recipes: list[str], overrides: list[str] = ()) -> dict[str, Config]:
    """Each recipe's resolved config: `default` is the competition's config, any other name a preset."""
    if not recipes:
        raise UserError("bench: --recipes needs at least one recipe, e.g. reference,default")
    if len(set(recipes)) != len(recipes):
        raise UserError(f"bench: a recipe is listed twice in {','.join(recipes)}")
    return {
        name: load_config(competition, None if name == "default" else name, overrides=list(overrides))[0]
        for name in recipes
    }


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


def cpu_model() -> str:
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def write_result_files(out: Path, stem: str, document: dict[str, Any], markdown: str) -> Path:
    """`out/<stem>-<UTC stamp>.json` and `.md`, written atomically; prints the markdown, returns its path."""
    path = out / f"{stem}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.md"
    runs.write_json(path.with_suffix(".json"), document)
    runs.atomic_write_bytes(path, markdown.encode())
    print(markdown)
    return path


def cpu_flags() -> str:
    """The vector extensions that decide CPU speed here (AVX2 only, or AVX-512 with BF16): recorded with results."""
    info = Path("/proc/cpuinfo")
    flags = set(info.read_text().split()) if info.is_file() else set()
    return " ".join(sorted(f for f in flags if f.startswith(("avx", "amx"))))


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


# ---------------------------------------------------------------------------
# Training one recipe under the budget
# ---------------------------------------------------------------------------


def accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    probabilities = predict_probabilities(model, images)
    return float(np.mean(probabilities.argmax(axis=1) == labels))


class BudgetedEpochs(keras.callbacks.Callback):
    """Times training alone, scores every labelled set after each finished epoch, stops at the budget.

    The clock pauses while the sets are scored, so a recipe's seconds are training seconds only.
    The budget is checked after every batch: a cut epoch is not scored (it did not finish).
    """

    def __init__(
        self, budget_seconds: float, steps_per_epoch: int, batch_size: int, sets: dict, bar=None, now=time.perf_counter
    ) -> None:
        super().__init__()
        self.now = now  # the clock; tests pass a fake one
        self.budget_seconds = budget_seconds
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.sets = sets  # name -> (images, labels); HOLDOUT first
        self.bar = bar
        self.curve: list[dict[str, Any]] = []
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
        scores = {name: accuracy(self.model, *xy) for name, xy in self.sets.items()}
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


def labelled_sets(data: Dataset, holdout_rows: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The sets scored after each epoch: the holdout, then each extra labelled set under its file name
    (Dig-MNIST.csv), which cannot be mistaken for the split's holdout (digits' extra set is holdout.csv)."""
    images, labels = data.train.images, data.train.labels
    sets = {HOLDOUT: (images[holdout_rows], labels[holdout_rows])}
    return sets | {data.spec.extra_sets[name]: (t.images, t.labels) for name, t in data.extras.items()}


def steady_images_per_second(curve: list[dict[str, Any]], overall: float) -> float:
    """The median epoch's speed, leaving out the first epoch (it pays for tracing and compiling)."""
    later = [point["images_per_second"] for point in curve[1:]]
    return float(statistics.median(later)) if later else overall


def train_recipe(name: str, cfg: Config, data: Dataset, split: Split, options: BenchOptions) -> dict[str, Any]:
    """One model of the recipe on the split's train rows, cut at the budget; its curve, speed and FLOPs."""
    hardware = setup_hardware(cfg)  # per recipe: the precision policy follows the recipe's config
    keras.utils.set_random_seed(cfg.seed)
    images, labels = data.train.images, data.train.labels
    rows = capped_rows(labels, split[0], options.max_train_rows, cfg.max_train_rows)
    sets = labelled_sets(data, split[1])
    batches = TrainBatches(images[rows], labels[rows], cfg, cfg.seed)
    model, trainer = compiled_model(cfg, len(batches), hardware, seed=cfg.seed)
    with tqdm(total=cfg.epochs, desc=name, unit="epoch", leave=False) as bar:
        callback = BudgetedEpochs(options.budget_minutes * 60, len(batches), cfg.batch_size, sets, bar)
        trainer.fit(batches, epochs=cfg.epochs, callbacks=[callback], shuffle=False, verbose=0)
    result = recipe_summary(name, cfg, model, callback, hardware.description, len(rows))
    del model, trainer
    keras.backend.clear_session()  # the next recipe starts from a clean graph
    return result


def recipe_summary(
    name: str, cfg: Config, model: keras.Model, callback: BudgetedEpochs, hardware: str, rows: int
) -> dict[str, Any]:
    flops = forward_flops(model)
    overall = callback.steps_done * cfg.batch_size / max(callback.trained, 1e-9)
    steady = steady_images_per_second(callback.curve, overall)
    return {
        "recipe": name,
        "preset": None if name == "default" else name,
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


# ---------------------------------------------------------------------------
# Checkpoints and winners
# ---------------------------------------------------------------------------


def minutes_label(minutes: float) -> str:
    return f"{minutes:g}"


def point_at(curve: list[dict[str, Any]], minutes: float) -> dict[str, Any] | None:
    """The last epoch finished within `minutes` of training (None when none had finished)."""
    finished = [point for point in curve if point["seconds"] <= minutes * 60]
    return finished[-1] if finished else None


def checkpoint_table(results: dict[str, dict], checkpoints: tuple[float, ...]) -> dict[str, dict]:
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


# ---------------------------------------------------------------------------
# The results: JSON and markdown
# ---------------------------------------------------------------------------


def results_document(header: dict[str, Any], results: dict[str, dict], complete: bool) -> dict[str, Any]:
    """Everything the bench measured; each recipe's FLOP/s share uses the matmul rate measured in this run."""
    rate = header["machine"]["matmul_gflops"]
    for result in results.values():
        result["flops_share"] = round(result["train_gflops_per_second"] / rate, 4) if rate else None
    table = checkpoint_table(results, header["checkpoints_minutes"])
    return {
        **header,
        "complete": complete,
        "recipes": results,
        "checkpoints": table,
        "winners": winners(table, header["signals"]),
    }


def accuracy_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.5f}"


def markdown_rows(columns: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def checkpoint_section(document: dict[str, Any], signal: str) -> list[str]:
    """One table per signal: recipe x checkpoint accuracy, with the epoch it came from."""
    labels = [minutes_label(m) for m in document["checkpoints_minutes"]]
    rows = []
    for name, row in document["checkpoints"].items():
        cells = [(signal_value(row[label], signal), row[label]) for label in labels]
        rows.append([name] + [f"{accuracy_text(v)} (ep {p['epoch']})" if p else "-" for v, p in cells])
    reference = document["checkpoints"].get("reference")
    if reference is not None and len(rows) > 1:  # the target: each recipe's gain over the reference CNN
        for name, row in document["checkpoints"].items():
            if name != "reference":
                gains = [_gain(signal_value(row[lb], signal), signal_value(reference[lb], signal)) for lb in labels]
                rows.append([f"{name} - reference", *gains])
    title = "holdout accuracy" if signal == HOLDOUT else f"{signal} accuracy"
    return [
        f"### {title} at T minutes of training",
        "",
        *markdown_rows(["recipe", *[f"{lb} min" for lb in labels]], rows),
    ]


def _gain(ours: float | None, reference: float | None) -> str:
    return "-" if ours is None or reference is None else f"{ours - reference:+.5f}"


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
    return ["### Speed", "", *markdown_rows(columns, rows)]


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
        lines += [f"**{name}**", "", *markdown_rows(["epoch", "seconds", HOLDOUT, *extras, "img/s"], rows), ""]
    return lines


def winners_section(document: dict[str, Any]) -> list[str]:
    """Which recipe each signal picks at each checkpoint: the holdout decides; extra sets are a second opinion."""
    lines = [
        f"### Picked by: {HOLDOUT} accuracy"
        + "".join(f", with {s} as a second signal" for s in document["signals"][1:]),
        "",
    ]
    for label, picked in document["winners"].items():
        choices = ", ".join(f"{picked[signal] or '-'} ({signal})" for signal in document["signals"])
        lines.append(f"- at {label} min: {choices}")
    return lines


def header_section(document: dict[str, Any]) -> list[str]:
    m, split = document["machine"], document["split"]
    gpus = ", ".join(m["gpus"]) or "none"
    status = "" if document["complete"] else " (in progress: not every recipe has trained yet)"
    return [
        f"# Benchmark: {document['competition']}, {document['created']}{status}",
        "",
        f"`{document['command']}`",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores, GPUs: {gpus}; load average at start {m['load_average']}",
        f"- Keras {m['keras']} on {m.get('backend', 'tensorflow')}; CPU flags: {m.get('cpu_flags', 'not recorded')}; float32 matmul ({m['matmul_size']}^2): "
        f"{m['matmul_gflops']:,.1f} GFLOP/s",
        f"- split: {split['holdout_rows']:,} holdout rows ({split['holdout_fraction']:.0%} of train.csv, stratified, "
        f"random_state {HOLDOUT_SEED}); up to {split['train_rows']:,} training rows",
        f"- budget {document['budget_minutes']:g} min of training per recipe; overrides: "
        + (" ".join(document["overrides"]) or "none"),
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
# Entry points
# ---------------------------------------------------------------------------


def bench_header(competition: str, data: Dataset, split: Split, options: BenchOptions, created: datetime) -> dict:
    """What the results share across recipes: settings, split and machine (its matmul rate measured now)."""
    rate = matmul_gflops(options.matmul_size)
    return {
        "competition": competition,
        "created": created.isoformat(timespec="seconds"),
        "command": options.command,
        "budget_minutes": options.budget_minutes,
        "checkpoints_minutes": list(options.checkpoints),
        "overrides": list(options.overrides),
        "signals": list(labelled_sets(data, split[1])),  # the holdout decides; extra sets are a second opinion
        "split": {
            "holdout_fraction": options.holdout,
            "random_state": HOLDOUT_SEED,
            "holdout_rows": len(split[1]),
            "train_rows": len(capped_rows(data.train.labels, split[0], options.max_train_rows)),
            "max_train_rows": options.max_train_rows,
        },
        "machine": machine_description(rate, options.matmul_size),
        "versions": runs.package_versions(),
        "git_commit": runs.git_commit(),
    }


def run_bench(competition: str, configs: dict[str, Config], options: BenchOptions) -> Path:
    """Trains every recipe on the same split; writes (after each recipe) and returns the results' JSON path."""
    data = load_dataset(get_spec(competition), options.data_dir)
    split = holdout_split(data.train.labels, options.holdout)
    created = datetime.now(UTC)
    stem = options.out / f"{competition}-{created.strftime('%Y%m%d-%H%M%S')}"
    header = bench_header(competition, data, split, options, created)
    results: dict[str, dict] = {}
    for name, cfg in tqdm(configs.items(), desc=f"bench {competition}", unit="recipe"):
        results[name] = train_recipe(name, cfg, data, split, options)
        write_results(stem, results_document(header, results, complete=len(results) == len(configs)))
    return stem.with_suffix(".json")


def parse_minutes(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(
            f"bench: --checkpoints must be minutes separated by commas, e.g. 5,10,20; got {text!r}"
        ) from None


def bench_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/bench.py",
        description="Train recipes side by side on one holdout split under a time budget; accuracy vs training time.",
    )
    parser.add_argument("competition", help=f"one of: {', '.join(COMPETITIONS)}")
    parser.add_argument("--recipes", default="reference,default", help="presets, or 'default' (default: %(default)s)")
    parser.add_argument("--budget-minutes", type=float, help="training minutes per recipe (default: last checkpoint)")
    parser.add_argument("--checkpoints", default="5,10,20", help="minutes to compare at (default: %(default)s)")
    parser.add_argument("--holdout", type=float, default=0.1, help="share of train.csv held out (default: 0.1)")
    parser.add_argument("--max-train-rows", type=int, default=0, help="cap on training rows (0 = all)")
    parser.add_argument("--data-dir", help="folder holding the competition zip or its CSVs")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder (default: bench/results)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE", help="applied to every recipe")
    parser.add_argument("--matmul-size", type=int, default=2048, help="side of the float32 matmul timed")
    return parser


def main(argv: list[str]) -> int:
    try:
        args = bench_parser().parse_args(argv)
        checkpoints = parse_minutes(args.checkpoints)
        budget = args.budget_minutes if args.budget_minutes is not None else max(checkpoints, default=0)
        command = " ".join(["python", "bench/bench.py", *argv])
        options = BenchOptions(
            budget, checkpoints, args.holdout, args.max_train_rows, args.data_dir, args.out,
            tuple(args.override), args.matmul_size, command,
        )  # fmt: skip
        get_spec(args.competition)  # an unknown competition fails before the configs are read
        configs = recipe_configs(args.competition, [r.strip() for r in args.recipes.split(",")], args.override)
        path = run_bench(args.competition, configs, options)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted (finished recipes are in the results already)", file=sys.stderr)
        return 130
    print(path.with_suffix(".md").read_text())
    print(f"results written to {path} and {path.with_suffix('.md').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
