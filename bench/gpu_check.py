"""The GPU check in one command: smoke run, one fold, the whole default run, throughput; one archive.

python -m bench.gpu_check --out DIR [--budget-minutes 8] [--data-dir DIR]
python -m bench.gpu_check --out DIR --tiny          # the same steps on the offline digits data (tests, CPUs)
python -m bench.gpu_check --out DIR --suite best         # the `best` preset, digit-recognizer then Kannada
python -m bench.gpu_check --out DIR --suite candidates   # whole 5-fold runs of higher-capacity candidates

The `candidates` suite spends the budget on whole 5-fold runs of recipes with more capacity than the default: on
this CPU each needs 30-70 minutes to be judged on OOF (one seed more buys nothing there: the errors are the
model's bias, bench/results/seeds-mnist-20261127-115000), on a GPU a few. Their oof.npy and folds.csv come back,
so `python run.py compare` tests each against the CPU default on the same folds.

Runs each step as a user would (`python run.py ...` in a subprocess), under the backend of the environment
(`KERAS_BACKEND=jax` on the GPU machines, which have no TensorFlow), stops a step when the budget is
spent (and starts no more), and packs check.json, check.md, every run's run.json, metrics.json, config.yaml and
submission.csv (predictions only) and the log into DIR/gpu-check.tar.gz: a GPU machine may return few files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX here and in run.py share one GPU

from common import runs  # noqa: E402
from common.ground.errors import exit_status  # noqa: E402
from common.ground.paths import PROJECT_ROOT  # noqa: E402

RUN_FILES = (runs.RUN_JSON, runs.METRICS_JSON, runs.CONFIG_YAML, runs.SUBMISSION_CSV, runs.TRAIN_LOG)
# Brought back for `python run.py compare` against the CPU run on the same folds; never committed (folds.csv
# holds train.csv's labels).
COMPARE_FILES = (runs.array_name(runs.OOF), runs.FOLDS_CSV)
UNIT_FILES = (runs.UNIT_JSON, runs.HISTORY_CSV)


SUITES = ("check", "best", "candidates")


def steps(tiny: bool, suite: str = "check") -> list[tuple[str, list[str]]]:
    """(name, run.py arguments) in the order they run; later steps are skipped when the budget is spent."""
    if tiny:
        small = ["model=mlp", "epochs=1", "max_train_rows=200"]  # the path, not the model, is under test
        if suite == "candidates":
            return [("candidate", ["digits", "--folds", "2", *small])]
        if suite == "best":
            return [("best", ["digits", "--preset", "best", *small])]
        return [("smoke", ["digits", "--preset", "smoke", *small])]  # one step shows the steps' path
    if suite == "best":  # the leaderboard's recipes (configs/presets/best.yaml), digit-recognizer's first
        return [("mnist_best", ["mnist", "--preset", "best"]), ("kannada_best", ["kannada", "--preset", "best"])]
    if suite == "candidates":  # more capacity than the default, each a whole run as the user starts it
        return [
            ("mnist_width32", ["mnist", "--folds", "5", "width=32", "dropout=0.4", "epochs=20"]),
            ("kannada_width32", ["kannada", "--folds", "5", "width=32"]),
            ("mnist_epochs30", ["mnist", "--folds", "5", "epochs=30"]),
            ("kannada_epochs16", ["kannada", "--folds", "5", "epochs=16"]),
        ]
    return [
        ("smoke", ["mnist", "--preset", "smoke"]),
        ("one_fold", ["mnist", "--fold", "0", "--seed", "0"]),
        ("mnist_default", ["mnist", "--folds", "5"]),
        # Several units at once on one GPU: the units are bound by per-step dispatch (H200, 2026-11-27)
        ("mnist_5_workers", ["mnist", "--folds", "5", "--scheduler", "local:5"]),
        # The five units in one compiled program: one dispatch steps all five models (common/training/stacked.py)
        ("mnist_stack5", ["mnist", "--folds", "5", "stack=5"]),
        ("kannada_default", ["kannada", "--folds", "5"]),  # two seeds per fold since 2026-11-27 (111 s with one)
    ]


def run_step(name: str, args: list[str], out: Path, options: argparse.Namespace, seconds_left: float, log) -> dict:
    """One `python run.py` as a user runs it, stopped when the budget is spent; its wall time, exit status
    ("timeout" when stopped) and the run folder's facts."""
    folder = out / "runs" / name
    data = ["--data-dir", options.data_dir] if options.data_dir else []
    command = [sys.executable, "run.py", *args, "--out", str(folder), *data]
    log.write(f"\n$ {' '.join(command)}\n")
    log.flush()
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, check=False, timeout=seconds_left
        )
        status: int | str = done.returncode
    except subprocess.TimeoutExpired:
        status = "timeout"
    result = {"step": name, "command": " ".join(command[1:]), "status": status}
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    found = runs.runs_under(folder)
    if found:
        from bench.harness.rates import unit_rows

        run = found[-1]
        result |= {"run": str(run.folder.relative_to(out)), "hardware": run.record.hardware}
        metrics = run.metrics()
        result["metrics"] = metrics.to_dict() if metrics else None
        result["units"] = unit_rows(run)
    return result


def throughput(tiny: bool, log) -> dict[str, Any]:
    """Images per second of the default mnist model alone and inside the trainer (bench/speed.py)."""
    from bench.harness.rates import model_rates
    from common.ground.config_files import load_config

    cfg, _ = load_config("digits" if tiny else "mnist", overrides=["model=mlp"] if tiny else [])
    try:
        return model_rates(cfg, steps=2, rounds=1) if tiny else model_rates(cfg, steps=200)
    except Exception as error:  # noqa: BLE001 - a failed measurement is a finding of the check, not its end
        log.write(f"throughput failed: {error!r}\n")
        return {"error": repr(error)}


def step_row(step: dict[str, Any]) -> list[Any]:
    metrics = step.get("metrics") or {}
    oof = metrics.get("oof_accuracy", "-")
    rates = sorted(unit["images_per_second"] for unit in step.get("units") or [])
    rate = round(rates[len(rates) // 2]) if rates else "-"
    return [step["step"], step["status"], step["wall_seconds"], rate, oof, metrics.get("extra_accuracy", "-")]


def markdown(document: dict[str, Any]) -> str:
    from bench.harness.results import markdown_table

    columns = ["step", "status", "wall s", "median unit img/s", "OOF", "extra sets"]
    lines = [f"# GPU check, {document['created']}", "", f"- devices: {document['devices']}", ""]
    lines += [markdown_table(columns, [step_row(step) for step in document["steps"]])]
    lines += ["", f"Throughput (img/s): {json.dumps(document['throughput'])}", ""]
    lines += [f"Skipped for the budget: {', '.join(document['skipped']) or 'none'}", ""]
    return "\n".join(lines)


def pack(out: Path) -> Path:
    """check.json, check.md, the log and each run's small files, in one archive beside them."""
    archive = out / "gpu-check.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("check.json", "check.md", "check.log"):
            tar.add(out / name, arcname=name)
        for path in sorted((out / "runs").glob("*/*/*/*")):
            if path.name in RUN_FILES + COMPARE_FILES:
                tar.add(path, arcname=str(path.relative_to(out)))
        for path in sorted((out / "runs").glob(f"*/*/*/{runs.UNITS}/*/*")):
            if path.name in UNIT_FILES:
                tar.add(path, arcname=str(path.relative_to(out)))
    return archive


def devices() -> str:
    from common.training.backend import backend_name, cpu_name, gpus

    found = gpus(backend_name(), deterministic=False)
    return f"{backend_name()}: " + (", ".join(f"{name} (cc {cc})" for name, cc in found) or cpu_name())


def check_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the results and the archive")
    parser.add_argument("--budget-minutes", type=float, default=8.0, help="steps stop here; the throughput runs last")
    parser.add_argument("--data-dir", help="folder holding the competition zips")
    parser.add_argument("--tiny", action="store_true", help="the offline digits data and tiny configs")
    parser.add_argument(
        "--suite",
        choices=SUITES,
        default="check",
        help="check: the GPU path; best: the best preset; candidates: larger runs",
    )
    return parser


def check(argv: list[str]) -> bool:
    """Runs every step that fits in the budget, then the throughput; saves after each. Whether all steps passed."""
    args = check_parser().parse_args(argv)
    shutil.rmtree(args.out / "runs", ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    document: dict[str, Any] = {"created": datetime.now(UTC).isoformat(timespec="seconds"), "steps": [], "skipped": []}
    document |= {"devices": "measured last", "throughput": {}}
    with open(args.out / "check.log", "w") as log:
        for name, step_args in steps(args.tiny, args.suite):
            left = args.budget_minutes * 60 - (time.perf_counter() - start)
            if left <= 0:
                document["skipped"].append(name)
                continue
            document["steps"].append(run_step(name, step_args, args.out, args, left, log))
            save(args.out, document, start)  # a machine taken back mid-check still leaves what was measured
        # Last, so that this process never holds GPU memory while the runs train.
        document["devices"] = devices()
        document["throughput"] = throughput(args.tiny, log) if args.suite == "check" else {}
    save(args.out, document, start)
    print((args.out / "check.md").read_text())
    print(f"archive: {args.out / 'gpu-check.tar.gz'}")
    return all(step["status"] == 0 for step in document["steps"])


def main(argv: list[str]) -> int:
    """0 when every step passed, 1 when one failed, 2 for a user's mistake (exit_status)."""
    passed: list[bool] = []
    status = exit_status(lambda: passed.append(check(argv)))
    return status or (0 if all(passed) else 1)


def save(out: Path, document: dict[str, Any], start: float) -> None:
    document["seconds"] = round(time.perf_counter() - start, 1)
    runs.write_json(out / "check.json", document)
    runs.atomic_write_bytes(out / "check.md", markdown(document).encode())
    pack(out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
