"""Speed of the trainer against the model alone: is any time lost outside the training steps?

python -m bench.speed mnist [--run RUN | --train] [--folds 5] [KEY=VALUE ...]

1. The model alone: the config's model, compiled as for training, fitted on batches already in memory
   (numpy arrays, no augmentation); best of a few rounds, measured before and after the run (the best counts).
2. The same steps through the training wrapper (in-graph affine) fed by TrainBatches, interleaved with 1.
3. A whole run (`--train`: `python run.py COMP --out DIR KEY=VALUE...` in a subprocess, timed from outside; or
   `--run RUN`: a finished run): each unit's rate inside its epochs, its time outside them (TTA stated apart),
   and the run's wall time against the pure training time that the model-alone rate implies.
Results: bench/results/speed-<competition>-<UTC stamp>.json and .md (with the CPU and its flags).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common import runs
from common.config import Config, load_config
from common.errors import UserError
from common.spec import COMPETITIONS, get_spec

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ROUNDS = 3


# ---------------------------------------------------------------------------
# The model alone, and the training wrapper, on batches in memory
# ---------------------------------------------------------------------------


def timed(work, rounds: int = ROUNDS) -> float:
    """Seconds of the fastest of `rounds` calls, after one untimed call (tracing, compiling, warm-up)."""
    work()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def model_rates(cfg: Config, steps: int) -> dict[str, float]:
    """Images per second of the model alone (arrays in memory) and of the training wrapper (TrainBatches)."""
    import keras

    from common.backend import setup_hardware
    from common.batches import TrainBatches
    from common.models import create_model
    from common.train import compile_for_training, compiled_model

    hardware = setup_hardware(cfg)
    rng = np.random.default_rng(0)
    n = steps * cfg.batch_size
    images, labels = rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, n)
    one_hot = np.eye(10, dtype=np.float32)[labels]
    alone = compile_for_training(create_model(cfg.model, cfg), cfg, steps, hardware)
    _, trainer = compiled_model(cfg, steps, hardware)
    batches = TrainBatches(images, labels, cfg, seed=0)
    fits = {
        "model_alone": lambda: alone.fit(images, one_hot, batch_size=cfg.batch_size, shuffle=False, verbose=0),
        "model_in_trainer": lambda: trainer.fit(batches, shuffle=False, verbose=0),
    }
    best = {name: min(timed(fit, 1) for _ in range(ROUNDS)) for name, fit in fits.items()}
    keras.backend.clear_session()
    return {name: n / seconds for name, seconds in best.items()} | {"hardware": hardware.description}


# ---------------------------------------------------------------------------
# A whole run
# ---------------------------------------------------------------------------


def train_run(competition: str, overrides: list[str], out: Path, data_dir: str | None) -> tuple[Path, float]:
    """`python run.py COMPETITION ...` as a user runs it; its folder and the wall time seen from outside."""
    command = [sys.executable, "run.py", competition, "--out", str(out), *overrides]
    command += ["--data-dir", data_dir] if data_dir else []
    start = time.perf_counter()
    done = subprocess.run(command, cwd=runs.PROJECT_ROOT, check=False, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise UserError(f"speed: `{' '.join(command)}` failed with status {done.returncode}")
    return max((out / competition).glob("*/run.json"), key=lambda p: p.stat().st_mtime).parent, seconds


def unit_rows(run: runs.Run) -> list[dict[str, Any]]:
    """Per unit: rows trained, epochs, seconds in and out of the epochs, TTA's share of the prediction."""
    cfg = Config(**run.config)
    folds = run.folds()
    rows = []
    for unit in sorted((run.folder / "units").glob("*/unit.json")):
        record = json.loads(unit.read_text())
        fold = int(unit.parent.name.split("-")[0][1:])
        history = pd.read_csv(unit.parent / "history.csv")
        trained = int((folds["fold"] != fold).sum()) // cfg.batch_size * cfg.batch_size * len(history)
        tta = record["predict_seconds"] * cfg.tta / (cfg.tta + 1)  # every view costs the same
        rows.append(
            {
                "unit": unit.parent.name,
                "images_trained": trained,
                "seconds": record["seconds"],
                "epoch_seconds": record["epoch_seconds"],
                "tta_seconds": round(tta, 2),
                "outside_epochs_share": (record["seconds"] - record["epoch_seconds"] - tta) / (record["seconds"] - tta),
                "images_per_second": trained / record["epoch_seconds"],
            }
        )
    return rows


def run_summary(run: runs.Run, units: list[dict[str, Any]], alone: float, outside_seconds: float | None) -> dict:
    images = sum(u["images_trained"] for u in units)
    tta = sum(u["tta_seconds"] for u in units)
    wall = outside_seconds or run.record["wall_seconds"]
    return {
        "run": str(run.folder),
        "oof_accuracy": run.metrics().get("oof_accuracy"),
        "extra_accuracy": run.metrics().get("extra_accuracy", {}),
        "wall_seconds": round(wall, 1),
        "wall_seconds_inside": run.record["wall_seconds"],
        "pure_training_seconds": round(images / alone, 1),
        "tta_seconds": round(tta, 1),
        "wall_over_pure_plus_tta": round((wall - tta) / (images / alone), 3),
        "unit_rate_over_alone": round(images / sum(u["epoch_seconds"] for u in units) / alone, 3),
        "worst_outside_epochs_share": round(max(u["outside_epochs_share"] for u in units), 4),
    }


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------


def markdown(document: dict[str, Any]) -> str:
    rates, machine = document["rates"], document["machine"]
    lines = [
        f"# Trainer speed: {document['competition']}, {document['created']}",
        "",
        f"`{document['command']}` (commit {document['git_commit'] or 'unknown'})",
        "",
        f"- machine: {machine['cpu']}, {machine['cores']} cores; flags: {machine['cpu_flags']}",
        f"- trained on: {rates['hardware']}; batch {document['config']['batch_size']}, model {document['config']['model']}"
        f" width {document['config']['width']}",
        "",
        "| what runs | img/s |",
        "| --- | --- |",
        f"| the model alone, batches in memory (best before/after) | {rates['model_alone']:,.0f} |",
        f"| the training wrapper (in-graph affine), TrainBatches | {rates['model_in_trainer']:,.0f} |",
    ]
    if document.get("run"):
        run = document["run"]
        lines += [
            f"| inside the run's epochs (all units) | {run['unit_rate_over_alone'] * rates['model_alone']:,.0f} |",
            "",
            f"Run `{run['run']}`: OOF {run['oof_accuracy']}, extra sets {run['extra_accuracy']}.",
            "",
            "| measure | value |",
            "| --- | --- |",
            f"| wall time of `python run.py` (s) | {run['wall_seconds']:,.0f} |",
            f"| pure training time at the model-alone rate (s) | {run['pure_training_seconds']:,.0f} |",
            f"| test-time augmentation's cost (s) | {run['tta_seconds']:,.0f} |",
            f"| (wall - TTA) / pure training | {run['wall_over_pure_plus_tta']:.3f} |",
            f"| rate inside the epochs / model alone | {run['unit_rate_over_alone']:.3f} |",
            f"| largest share of a unit outside its epochs (TTA excluded) | {run['worst_outside_epochs_share']:.2%} |",
        ]
    return "\n".join(lines) + "\n"


def measure(args: argparse.Namespace, cfg: Config) -> dict[str, Any]:
    before = model_rates(cfg, args.steps)
    run, outside = None, None
    if args.train:
        folder, outside = train_run(args.competition, args.overrides, args.runs, args.data_dir)
        run = runs.load_run(folder)
    elif args.run:
        run = runs.find_run(args.runs, args.competition, args.run)
    after = model_rates(cfg, args.steps) if run else before
    rates = {name: max(before[name], after[name]) for name in ("model_alone", "model_in_trainer")}
    rates["hardware"] = before["hardware"]
    document = {"rates": rates, "rates_before": before, "rates_after": after}
    if run:
        units = unit_rows(run)
        document |= {"units": units, "run": run_summary(run, units, rates["model_alone"], outside)}
    return document


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.splitlines()[0])
    parser.add_argument("competition", help=f"one of: {', '.join(COMPETITIONS)}")
    parser.add_argument(
        "overrides", nargs="*", metavar="ARG", help="key=value overrides (and run.py flags with --train)"
    )
    parser.add_argument("--train", action="store_true", help="train a whole run with run.py and time it")
    parser.add_argument("--run", help="analyse this finished run (id, prefix or latest) instead")
    parser.add_argument(
        "--runs", type=Path, default=runs.DEFAULT_ROOT, help="where run folders are (default: submissions/)"
    )
    parser.add_argument("--data-dir", help="folder holding the competition files")
    parser.add_argument("--steps", type=int, default=40, help="steps per timing round of the model alone (default 40)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder (default: bench/results)")
    args = parser.parse_intermixed_args(argv)
    try:
        get_spec(args.competition)
        cfg, _ = load_config(
            args.competition, overrides=[o for o in args.overrides if "=" in o and not o.startswith("-")]
        )
        if args.steps < 1:
            raise UserError(f"speed: --steps must be at least 1, got {args.steps}")
        document = measure(args, cfg)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from bench.bench import cpu_flags, cpu_model

    document |= {
        "competition": args.competition,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.speed", *argv]),
        "config": cfg.to_dict(),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "cpu_flags": cpu_flags()},
        "git_commit": runs.git_commit(),
    }
    stem = args.out / f"speed-{args.competition}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    runs.write_json(stem.with_suffix(".json"), document)
    runs.atomic_write_bytes(stem.with_suffix(".md"), markdown(document).encode())
    print(stem.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
