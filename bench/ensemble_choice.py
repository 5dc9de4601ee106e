"""Benchmark: which models a run's submission should average, read from one finished run that trained both
fold models and full-data models (`full_models`).

python -m bench.ensemble_choice kannada [RUN] [--data-dir DIR] [--out RUNS] [--results DIR]

Every set the run scored (the fixed holdout, the extra sets and each judged set's halves) is scored three ways,
the values of the `ensemble` key: the fold models' mean (`folds`), the full-data models' mean (`full`) and the
mean of all of them (`all`); a run of two or more full-data models also scores its first one alone (`full1`,
what `full_models=1` would submit). McNemar's exact test sets each pair against each other on the same rows. The choice
is the best of the three on the picking set (a judged set's picking half, e.g. Kannada's dig_mnist_pick; else the
holdout), to be read on the other sets; nothing is retrained. Results: bench/results/ensemble-<competition>-<UTC
stamp>.md and .json.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness.results import finished_run_parser, markdown_table, provenance, write_result_files
from common import runs
from common.data.files import Dataset, load_dataset
from common.data.trainset import HOLDOUT_SET
from common.ground.errors import UserError, exit_status
from common.ground.spec import get_spec
from common.runs.aligned import shared_sets
from common.runs.stats import mcnemar

GROUPS = runs.ENSEMBLE_GROUPS  # folds, full, all: the `ensemble` key's values
FIRST_FULL = "full1"  # the first full-data model alone: what the same run with full_models=1 submits


def group_probabilities(run: runs.Run, names: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """Group -> set name -> the mean probabilities of that group's units; UserError unless the run has both."""
    keys = run.unit_keys()
    if len({key.group for key in keys}) < 2:
        raise UserError(f"run {run.run_id}: needs both fold models and full-data models (full_models) to compare")
    groups = {group: {name: run.group_array(name, group) for name in names} for group in GROUPS}
    full = [key for key in keys if key.fold is None]
    if len(full) > 1:
        groups[FIRST_FULL] = {name: np.load(run.unit_dir(full[0]) / runs.array_name(name)) for name in names}
    return groups


def picking_set(data: Dataset) -> str:
    """Where the choice is made: a judged set's picking half, else the fixed holdout."""
    picking = [half for half in data.judged_halves() if half.endswith("_pick")]
    if picking:
        return picking[0]
    if HOLDOUT_SET in data.extras:
        return HOLDOUT_SET
    raise UserError("ensemble_choice: the run has no judged set and no holdout to choose on (train with holdout=0.1)")


def choice_rows(data: Dataset, probabilities: dict[str, dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    """Each scored set: each group's accuracy, and McNemar's test of every pair of groups on its rows."""
    scored = {group: data.scored_sets(sets) for group, sets in probabilities.items()}
    rows = []
    for name in scored[GROUPS[0]]:
        right = {group: sets[name][1].argmax(axis=1) == sets[name][0] for group, sets in scored.items()}
        row: dict[str, Any] = {"set": name, "rows": int(len(right[GROUPS[0]]))}
        row |= {group: round(float(correct.mean()), 5) for group, correct in right.items()}
        for a, b in itertools.combinations(scored, 2):
            test = mcnemar(right[b], right[a])
            row[f"{b}_vs_{a}"] = {"only_b": test.only_a, "only_a": test.only_b, "p_value": test.p_value}
        rows.append(row)
    return rows


def pair_cell(test: dict[str, Any]) -> str:
    return f"+{test['only_b']}/-{test['only_a']}, p {test['p_value']:.3g}"


def markdown(document: dict[str, Any]) -> str:
    groups = document["groups"]
    pairs = [f"{b}_vs_{a}" for a, b in itertools.combinations(groups, 2)]
    table = markdown_table(
        ["set", "rows", *groups, *(pair.replace("_", " ") for pair in pairs)],
        [
            [row["set"], row["rows"], *(f"{row[g]:.5f}" for g in groups), *(pair_cell(row[pair]) for pair in pairs)]
            for row in document["rows"]
        ],
    )
    return "\n".join(
        [
            f"# Which models to submit: {document['competition']}, run {document['run']}\n",
            f"`{document['command']}`\n",
            f"- units: {', '.join(document['units'])}; the run's own `ensemble`: {document['run_ensemble']}",
            "- `B vs A`: +rows only B got right, -rows only A got right, and McNemar's exact p on them",
            f"- picked on {document['picking_set']}: **{document['picked']}**\n",
            table,
            "",
        ]
    )


def ensemble_choice(argv: list[str]) -> Path:
    args = parser().parse_args(argv)
    spec = get_spec(args.competition)
    run = runs.finished_run(args.out or runs.DEFAULT_ROOT, spec.name, args.run)
    data = shared_sets([run], load_dataset(spec, args.data_dir))
    probabilities = group_probabilities(run, list(data.extras))
    rows = choice_rows(data, probabilities)
    where = picking_set(data)
    picking = next(row for row in rows if row["set"] == where)
    document = provenance("python -m bench.ensemble_choice " + " ".join(argv)) | {
        "competition": spec.name,
        "run": run.run_id,
        "units": [key.name for key in run.unit_keys()],
        "run_ensemble": run.cfg.ensemble,
        "groups": list(probabilities),
        "picking_set": where,
        "picked": max(probabilities, key=lambda group: picking[group]),  # the first on a tie: the fold models
        "rows": rows,
    }
    return write_result_files(args.results, f"ensemble-{spec.name}", document, markdown(document))


def parser() -> argparse.ArgumentParser:
    return finished_run_parser(
        "python -m bench.ensemble_choice",
        "A run's fold models, full-data models and both, scored on the same rows with McNemar's test.",
    )


def main(argv: list[str]) -> int:
    return exit_status(lambda: ensemble_choice(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
