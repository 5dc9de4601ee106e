"""Speed of the trainer against the model alone: is any time lost outside the training steps?

python -m bench.speed mnist [--run RUN | --train [run.py flags]] [KEY=VALUE ...]

1. The model alone: the config's model, compiled as for training, fitted on batches already in memory
   (numpy arrays, no augmentation); rounds before and after the run, the median counts (this machine's speed
   drifts by a quarter over half an hour: the best round would flatter the model alone).
2. The same steps through the training wrapper (in-graph affine) fed by TrainBatches, taking turns with 1.
3. A whole run (`--train`: `python run.py COMP --out DIR KEY=VALUE...` in a subprocess, timed from outside; or
   `--run RUN`: a finished run): each unit's rate inside its epochs, its time outside them (TTA stated apart),
   and the run's wall time against the pure training time that the model-alone rate implies.
4. `--paired`: one full unit (fold 0, seed 0) trained by the real trainer (`fit_units`), with a round of the
   model alone right before its first epoch and after every epoch, outside the epochs' timer. Each epoch's rate
   is set against the mean of the two rounds around it: on a machine whose speed flips between half and full
   within minutes, only rates measured seconds apart can be compared. With a run, its wall time is then set
   against the pure training time implied by its own epoch seconds and this paired ratio.
Results: bench/results/speed-<competition>-<UTC stamp>.json and .md (with the CPU and its flags).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX here and in run.py share one GPU
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.harness.rates import SPEED_ROUNDS, model_alone_fit, model_rates, random_batches, unit_rows  # noqa: E402
from bench.harness.results import RESULTS_DIR, markdown_table, provenance, write_result_files  # noqa: E402
from common import runs  # noqa: E402
from common.ground.config import Config  # noqa: E402
from common.ground.config_files import load_config
from common.ground.errors import UserError, exit_status  # noqa: E402
from common.ground.paths import PROJECT_ROOT  # noqa: E402
from common.ground.spec import COMPETITIONS, get_spec  # noqa: E402

# ---------------------------------------------------------------------------
# One full unit, the model alone taking turns with its epochs
# ---------------------------------------------------------------------------


def alone_rounds_callback(cfg: Config, hardware, steps: int):
    """A Keras callback that times a round of the model alone (`steps` batches from memory) when training begins
    and after every epoch. The trainer's EpochTimer comes first in the callback list, so rounds stay outside the
    epochs' seconds. Made by a function: Keras is imported only once the backend is chosen."""
    import keras

    class AloneRounds(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            images, labels = random_batches(cfg, steps)
            self.fit, self.images = model_alone_fit(cfg, hardware, images, labels), len(images)
            self.rates: list[float] = []

        def fit_round(self) -> float:
            start = time.perf_counter()
            self.fit()
            return self.images / (time.perf_counter() - start)

        def on_train_begin(self, logs=None):
            self.fit_round()  # traces and compiles: untimed
            self.rates.append(self.fit_round())

        def on_epoch_end(self, epoch, logs=None):
            self.rates.append(self.fit_round())

    return AloneRounds()


def paired_unit(cfg: Config, competition: str, data_dir: str | None, steps: int) -> dict[str, Any]:
    """Fold 0, seed 0 of `cfg`, trained as a run trains it, each epoch against the model-alone rounds around it;
    the first epoch (tracing, compiling) is left out of the median."""
    from common.data.files import load_dataset
    from common.data.trainset import prepare_train_set
    from common.training.backend import setup_hardware
    from common.training.unit import fit_units

    data, train = prepare_train_set(load_dataset(get_spec(competition), data_dir), cfg)
    hardware = setup_hardware(cfg)
    rounds = alone_rounds_callback(cfg, hardware, steps)
    output = fit_units(cfg, [runs.UnitKey(0, 0)], train, data, hardware, progress=rounds)[0]
    per_epoch = output.images_trained / len(output.history)
    epochs = []
    for e, seconds in enumerate(output.history["seconds"]):
        rate, alone = per_epoch / seconds, (rounds.rates[e] + rounds.rates[e + 1]) / 2
        epochs.append({"epoch": e + 1, "images_per_second": rate, "alone_around": alone, "ratio": rate / alone})
    ratios = [row["ratio"] for row in epochs[1:]]
    return {
        "epochs": [row | {"ratio": round(row["ratio"], 3)} for row in epochs],
        "median_ratio": round(float(np.median(ratios)), 3),
        "quartiles": [round(float(q), 3) for q in np.percentile(ratios, [25, 75])],
        "alone_rounds": rounds.rates,
        "unit_seconds": round(output.seconds, 1),
        "fold_accuracy": float(output.history["val_accuracy"].iloc[-1]),
    }


# ---------------------------------------------------------------------------
# A whole run
# ---------------------------------------------------------------------------


def train_run(competition: str, overrides: list[str], out: Path, data_dir: str | None) -> tuple[Path, float]:
    """`python run.py COMPETITION ...` as a user runs it; its folder and the wall time seen from outside."""
    command = [sys.executable, "run.py", competition, "--out", str(out), *overrides]
    command += ["--data-dir", data_dir] if data_dir else []
    start = time.perf_counter()
    done = subprocess.run(command, cwd=PROJECT_ROOT, check=False, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise UserError(f"speed: `{' '.join(command)}` failed with status {done.returncode}")
    return runs.list_runs(out, competition)[-1].folder, seconds  # run ids start with their UTC time: the newest


def median_ratio(units: list[dict[str, Any]], alone: float) -> float | None:
    """The median epoch of all units against the model alone's median round: both typical, neither the best."""
    rates = [u["median_epoch_images_per_second"] for u in units]
    return None if None in rates else round(float(np.median(rates)) / alone, 3)


def run_summary(run: runs.Run, units: list[dict[str, Any]], alone: float, outside_seconds: float | None) -> dict:
    images = sum(u["images_trained"] for u in units)
    tta = sum(u["tta_seconds"] for u in units)
    wall = outside_seconds or run.record.wall_seconds
    return {
        "run": str(run.folder),
        "oof_accuracy": run.metrics().oof_accuracy,
        "extra_accuracy": run.metrics().extra_accuracy,
        "wall_seconds": round(wall, 1),
        "wall_seconds_inside": run.record.wall_seconds,
        "pure_training_seconds": round(images / alone, 1),
        "tta_seconds": round(tta, 1),
        "wall_over_pure_plus_tta": round((wall - tta) / (images / alone), 3),
        "unit_rate_over_alone": round(images / sum(u["epoch_seconds"] for u in units) / alone, 3),
        "median_epoch_rate_over_alone": median_ratio(units, alone),
        "worst_outside_epochs_share": round(max(u["outside_epochs_share"] for u in units), 4),
    }


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------


def rate_rows(document: dict[str, Any]) -> list[list[str]]:
    rates, run = document["rates"], document.get("run")
    when = ", before and after the run" if run else ""
    rows = [
        [f"the model alone, batches in memory (median round{when})", f"{rates['model_alone']:,.0f}"],
        ["the training wrapper (in-graph affine), TrainBatches", f"{rates['model_in_trainer']:,.0f}"],
    ]
    if run:
        rows.append(
            ["inside the run's epochs (all units)", f"{run['unit_rate_over_alone'] * rates['model_alone']:,.0f}"]
        )
    return rows


def run_rows(run: dict[str, Any]) -> list[list[str]]:
    return [
        ["wall time of `python run.py` (s)", f"{run['wall_seconds']:,.0f}"],
        ["pure training time at the model-alone rate (s)", f"{run['pure_training_seconds']:,.0f}"],
        ["test-time augmentation's cost (s)", f"{run['tta_seconds']:,.0f}"],
        ["(wall - TTA) / pure training", f"{run['wall_over_pure_plus_tta']:.3f}"],
        ["rate inside the epochs (all of them) / model alone", f"{run['unit_rate_over_alone']:.3f}"],
        ["median epoch's rate / model alone (first epochs left out)", f"{run['median_epoch_rate_over_alone']}"],
        ["largest share of a unit outside its epochs (TTA excluded)", f"{run['worst_outside_epochs_share']:.2%}"],
    ]


def markdown(document: dict[str, Any]) -> str:
    rates, machine, cfg = document["rates"], document["machine"], document["config"]
    lines = [
        f"# Trainer speed: {document['competition']}, {document['created']}",
        "",
        f"`{document['command']}` (commit {document['git_commit'] or 'unknown'})",
        "",
        f"- machine: {machine['cpu']}, {machine['cores']} cores; flags: {machine['cpu_flags']}",
        f"- trained on: {rates['hardware']}; batch {cfg['batch_size']}, model {cfg['model']} width {cfg['width']}",
        "",
        markdown_table(["what runs", "img/s"], rate_rows(document)),
    ]
    if document.get("run"):
        run = document["run"]
        lines += ["", f"Run `{run['run']}`: OOF {run['oof_accuracy']}, extra sets {run['extra_accuracy']}.", ""]
        lines += [markdown_table(["measure", "value"], run_rows(run))]
    if document.get("paired"):
        lines += ["", *paired_lines(document["paired"], document.get("run"))]
    return "\n".join(lines) + "\n"


def paired_lines(paired: dict[str, Any], run: dict[str, Any] | None) -> list[str]:
    q1, q3 = paired["quartiles"]
    lines = [
        "### One full unit, the model alone taking turns with its epochs (fold 0, seed 0)",
        "",
        f"Median epoch rate / model alone around it: **{paired['median_ratio']}** (quartiles {q1}, {q3}; "
        f"first epoch left out); unit {paired['unit_seconds']} s, fold accuracy {paired['fold_accuracy']:.5f}.",
    ]
    if run:
        lines.append(
            f"With the run above: (wall - TTA) / epoch seconds {run['wall_minus_tta_over_epochs']}, so "
            f"(wall - TTA) / pure training at the paired ratio **{run['wall_over_pure_paired']}**."
        )
    rows = [
        [e["epoch"], f"{e['images_per_second']:,.0f}", f"{e['alone_around']:,.0f}", e["ratio"]]
        for e in paired["epochs"]
    ]
    return [*lines, "", markdown_table(["epoch", "trainer img/s", "model alone around it, img/s", "ratio"], rows)]


def measure(args: argparse.Namespace, cfg: Config, run_args: list[str]) -> dict[str, Any]:
    """Model-alone rates before and after the run (the best counts: other work only slows a round)."""
    run = runs.find_run(args.runs, args.competition, args.run) if args.run else None
    cfg = run.cfg if run else cfg  # the run's own model and batch size
    before = model_rates(cfg, args.steps, args.rounds)
    outside = None
    if args.train:
        folder, outside = train_run(args.competition, run_args, args.runs, args.data_dir)
        run = runs.load_run(folder)
    after = model_rates(cfg, args.steps, args.rounds) if run else before
    rates = {name: float(np.median(before["rounds"][name] + after["rounds"][name])) for name in before["rounds"]}
    rates["hardware"] = before["hardware"]
    document = {"rates": rates, "rates_before": before, "rates_after": after}
    if run:
        units = unit_rows(run)
        document |= {"units": units, "run": run_summary(run, units, rates["model_alone"], outside)}
    if args.paired:
        paired_cfg = run.cfg if run else cfg  # the run's own config, as run.py resolved it
        document["paired"] = paired_unit(paired_cfg, args.competition, args.data_dir, args.steps)
        if run:
            document["run"] |= paired_run_ratio(document["run"], units, document["paired"]["median_ratio"])
    return document


def paired_run_ratio(run: dict[str, Any], units: list[dict[str, Any]], ratio: float) -> dict[str, float]:
    """The run's (wall - TTA) against the pure training time its own epochs imply at the paired ratio: epochs
    that ran at `ratio` of the model alone would have taken `ratio` x their seconds at the model-alone rate."""
    epoch_seconds = sum(u["epoch_seconds"] for u in units)
    return {
        "wall_minus_tta_over_epochs": round((run["wall_seconds"] - run["tta_seconds"]) / epoch_seconds, 3),
        "wall_over_pure_paired": round((run["wall_seconds"] - run["tta_seconds"]) / (epoch_seconds * ratio), 3),
    }


def speed_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.splitlines()[0])
    parser.add_argument("competition", help=f"one of: {', '.join(COMPETITIONS)}")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides; with --train, run.py's flags too"
    )
    parser.add_argument("--train", action="store_true", help="train a whole run with run.py and time it")
    parser.add_argument("--run", help="analyse this finished run (id, prefix or latest) instead")
    parser.add_argument(
        "--paired", action="store_true", help="train one full unit with model-alone rounds between its epochs"
    )
    parser.add_argument(
        "--runs", type=Path, default=runs.DEFAULT_ROOT, help="where run folders are (default: submissions/)"
    )
    parser.add_argument("--data-dir", help="folder holding the competition files")
    parser.add_argument(
        "--steps", type=int, default=100, help="steps per timing round of the model alone (default 100)"
    )
    parser.add_argument(
        "--rounds", type=int, default=SPEED_ROUNDS, help="timing rounds before and after the run (default %(default)s)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder (default: bench/results)")
    return parser


def speed_arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str], list[str]]:
    """(the bench's own arguments, run.py's flags, the KEY=VALUE overrides wherever they were written: argparse
    would count one written after a flag it does not know among run.py's flags)."""
    overrides = [word for word in argv if "=" in word and not word.startswith("-")]
    args, run_flags = speed_parser().parse_known_intermixed_args([word for word in argv if word not in overrides])
    return args, run_flags, overrides


def speed(argv: list[str]) -> Path:
    """Checks the arguments, measures (and trains, with --train); writes and returns the markdown's path."""
    args, run_flags, overrides = speed_arguments(argv)
    get_spec(args.competition)
    if run_flags and not args.train:
        raise UserError(f"speed: unknown arguments {' '.join(run_flags)} (run.py's flags go with --train)")
    preset = run_flags[run_flags.index("--preset") + 1] if "--preset" in run_flags[:-1] else None
    cfg, _ = load_config(args.competition, preset, overrides=overrides)
    if args.steps < 1 or args.rounds < 1:
        raise UserError(f"speed: --steps and --rounds must be at least 1, got {args.steps} and {args.rounds}")
    document = measure(args, cfg, [*run_flags, *overrides])
    document |= {"competition": args.competition, "config": cfg.to_dict()}
    document |= provenance(" ".join(["python -m bench.speed", *argv]))
    return write_result_files(args.out, f"speed-{args.competition}", document, markdown(document))


def main(argv: list[str]) -> int:
    return exit_status(lambda: speed(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
