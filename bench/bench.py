"""Benchmark: recipes trained side by side on one fixed holdout split, under one wall-clock budget.

python -m bench.bench mnist --recipes reference,default,wide:width=48 --budget-minutes 20 --checkpoints 2,5,10,20

A recipe is `default` (the competition's own config), a preset of configs/presets/, or NAME:key=value,...
Every recipe trains one model on the same stratified split of train.csv; after each finished epoch the holdout
(and every extra labelled set, such as Kannada's Dig-MNIST) is scored; the clock counts training only. A recipe
whose schedule does not fit in the budget is cut there. The accuracy "at T minutes" is that of the last epoch
finished within T minutes of training; each recipe's gain over the reference recipe (`--reference`, by default
`reference` when it is listed) is tested with McNemar's exact test (p >= 0.05: a tie). Speed is reported as
images per second and as the model's training FLOP/s over the machine's float32 matmul rate, measured in the
same run. Recipes are bench/harness/recipes.py, the split common/commands/fixed_split.py (the model zoo, `python
run.py zoo`, trains on it too); the training under the budget and the report are bench/harness/budget.py and
budget_report.py.
Results: bench/results/<competition>-<UTC stamp>.json and .md, rewritten after each recipe (bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the terminal

from bench.harness.budget import BenchOptions, reference_name, run_bench  # noqa: E402
from bench.harness.recipes import parse_recipes, recipe_configs  # noqa: E402
from bench.harness.results import RESULTS_DIR  # noqa: E402
from common.ground.errors import UserError, exit_status  # noqa: E402
from common.ground.spec import COMPETITIONS, get_spec  # noqa: E402

PROG = "python -m bench.bench"


def parse_minutes(text: str) -> tuple[float, ...]:
    try:
        minutes = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        minutes = ()
    if not minutes:
        raise UserError(f"bench: --checkpoints must be minutes separated by commas, e.g. 5,10,20; got {text!r}")
    return minutes


def bench_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train recipes side by side on one holdout split under a time budget; accuracy vs training time.",
    )
    parser.add_argument("competition", help=f"one of: {', '.join(COMPETITIONS)}")
    parser.add_argument(
        "--recipes",
        default="reference,default",
        help="default, presets, or NAME:key=value,... e.g. reference,default,wide:width=48 (default: %(default)s)",
    )
    parser.add_argument("--reference", help="the recipe the others are tested against (default: reference, if listed)")
    parser.add_argument("--budget-minutes", type=float, help="training minutes per recipe (default: last checkpoint)")
    parser.add_argument("--checkpoints", default="5,10,20", help="minutes to compare at (default: %(default)s)")
    parser.add_argument("--holdout", type=float, default=0.1, help="share of train.csv held out (default: 0.1)")
    parser.add_argument("--max-train-rows", type=int, default=0, help="cap on training rows (0 = all)")
    parser.add_argument("--data-dir", help="folder holding the competition zip or its CSVs")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder (default: bench/results)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE", help="applied to every recipe")
    parser.add_argument("--matmul-size", type=int, default=2048, help="side of the float32 matmul timed")
    return parser


def bench(argv: list[str]) -> Path:
    """Checks every argument and recipe before any work, then runs the benchmark; the results' JSON path."""
    args = bench_parser().parse_args(argv)
    checkpoints = parse_minutes(args.checkpoints)
    budget = args.budget_minutes if args.budget_minutes is not None else max(checkpoints)
    get_spec(args.competition)  # an unknown competition fails before the configs are read
    resolved = recipe_configs(args.competition, parse_recipes(args.recipes), args.override)
    options = BenchOptions(
        budget, checkpoints, args.holdout, args.max_train_rows, data_dir=args.data_dir, out=args.out,
        overrides=tuple(args.override), matmul_size=args.matmul_size, command=" ".join([PROG, *argv]),
        reference=reference_name(args.reference, [recipe.name for recipe, _ in resolved]),
    )  # fmt: skip
    path = run_bench(args.competition, resolved, options)
    print(path.with_suffix(".md").read_text())
    print(f"results written to {path} and {path.with_suffix('.md').name}")
    return path


def main(argv: list[str]) -> int:
    return exit_status(lambda: bench(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
