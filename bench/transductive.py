"""Benchmark: the notebook's transductive round, on a labelled set written by other hands standing in for the
hidden test set.

python -m bench.transductive kannada [RUN] [--variant NAME:key=value,...] [--adabn] [--data-dir DIR]

Kannada-MNIST's notebook is re-run by Kaggle on a hidden test set written by other hands than train.csv. Its
stand-in here is Dig-MNIST, which the run did not train on, cut into the halves that `judged_sets` fixes: each
half is written as the competition's test.csv (an `id` column and pixels, no labels) beside the real train.csv,
in Kaggle's folder layout, and the notebook that `kernel` writes runs on it as a subprocess, as on Kaggle:
once without the round (the run's plain ensemble) and once per variant of the round's settings
(configs/transductive.yaml). The labels only score submission.csv. The variant that does best on the
picking half is named; the reporting half then says what it is worth. Every gain is tested with McNemar's test
against the plain ensemble on the same rows. `--adabn` adds the notebook with AdaBN (BatchNorm statistics
re-estimated on the test images) as one more notebook (alone, without a round, unless --variant is given too).
Results: bench/results/transductive-<competition>-<UTC stamp>.md and .json.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.harness.results import RESULTS_DIR, markdown_table, provenance, write_result_files  # noqa: E402
from common import runs  # noqa: E402
from common.data.files import Dataset, load_dataset  # noqa: E402
from common.ground.config_files import TRANSDUCTIVE_TYPES, load_transductive, parse_overrides  # noqa: E402
from common.ground.errors import UserError, exit_status  # noqa: E402
from common.ground.spec import PIXEL_COLUMNS, CompetitionSpec, get_spec  # noqa: E402
from common.runs.notebook import NOTEBOOK_SUBMISSION, SCRIPT_NAME, NotebookLevers, write_kernel  # noqa: E402
from common.runs.stats import mcnemar  # noqa: E402

PLAIN = "plain ensemble"
ADABN = "AdaBN"

# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """`NAME:key=value,key=value` -> (NAME, settings over configs/transductive.yaml); `NAME` alone is its values."""
    name, _, pairs = text.partition(":")
    if not name:
        raise UserError(f"--variant {text}: a variant needs a name before its settings")
    settings = parse_overrides(list(filter(None, pairs.split(","))), TRANSDUCTIVE_TYPES, f"--variant {text}")
    load_transductive(settings)  # the round's own checks (ranges) on the whole, one line each
    return name, settings


def transductive_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.transductive", description=__doc__.splitlines()[0])
    parser.add_argument("competition", help="a competition with a judged set (kannada)")
    parser.add_argument("run", nargs="?", help="run id or unique prefix (default: the latest finished run)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:key=value,...",
        help="settings of the round over configs/transductive.yaml (repeatable; default: one variant, `default`)",
    )
    parser.add_argument(
        "--adabn", action="store_true", help="also the notebook with AdaBN (BatchNorm statistics from the test images)"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only the reporting half: for settings picked before (configs/transductive.yaml) on another run",
    )
    parser.add_argument("--runs", type=Path, default=runs.DEFAULT_ROOT, help="where run folders are")
    parser.add_argument("--data-dir", help="folder holding the competition files")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder (default: bench/results)")
    return parser


# ---------------------------------------------------------------------------
# A Kaggle-like input folder, the notebook, its score
# ---------------------------------------------------------------------------


def write_inputs(root: Path, spec: CompetitionSpec, data: Dataset, images: np.ndarray) -> None:
    """root/<slug>/: `images` as the test file (ids from 0) and the real training file, as Kaggle mounts them."""
    folder = root / spec.slug
    folder.mkdir(parents=True)
    pixels = pd.DataFrame(images.reshape(len(images), -1), columns=list(PIXEL_COLUMNS))
    pixels.insert(0, spec.test_id_column or "id", np.arange(len(images)))
    pixels.to_csv(folder / spec.test_file, index=False)
    train = pd.DataFrame(data.train.images.reshape(len(data.train.images), -1), columns=list(PIXEL_COLUMNS))
    train.insert(0, spec.label_column, data.train.labels)
    train.to_csv(folder / spec.train_file, index=False)


def notebook_answers(kernel: Path, inputs: Path, work: Path) -> tuple[np.ndarray, float]:
    """The labels the notebook writes to submission.csv, run as on Kaggle (its own process), and its seconds."""
    work.mkdir(parents=True)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(kernel / SCRIPT_NAME), str(inputs), str(work)],
        check=False,
        cwd=work,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise UserError(f"transductive: the notebook {kernel / SCRIPT_NAME} failed: {done.stderr.strip()[-500:]}")
    print(done.stdout.strip())
    return pd.read_csv(work / NOTEBOOK_SUBMISSION).iloc[:, 1].to_numpy(), time.perf_counter() - start


def half_rows(half: str, labels: np.ndarray, answers: dict[str, tuple[np.ndarray, float]]) -> list[dict[str, Any]]:
    """Each notebook's accuracy on one half, and its gain over the plain ensemble with McNemar's p-value."""
    plain = answers[PLAIN][0] == labels
    rows = []
    for name, (predicted, seconds) in answers.items():
        right = predicted == labels
        test = mcnemar(right, plain)
        rows.append(
            {
                "half": half,
                "variant": name,
                "accuracy": round(float(right.mean()), 5),
                "gain": round(float(right.mean() - plain.mean()), 5),
                "only_this": test.only_a,
                "only_plain": test.only_b,
                "p_value": test.p_value,
                "seconds": round(seconds, 1),
            }
        )
    return rows


def notebooks(args: argparse.Namespace, variants: dict[str, dict[str, float]]) -> dict[str, NotebookLevers]:
    """The notebooks to run, by name: the plain one first, then each variant of the round, then AdaBN's."""
    rounds = {name: NotebookLevers(settings) for name, settings in variants.items()}
    return {PLAIN: NotebookLevers(), **rounds, **({ADABN: NotebookLevers(adabn=True)} if args.adabn else {})}


def measure(
    args: argparse.Namespace, spec: CompetitionSpec, run: runs.Run, variants: dict[str, dict[str, float]]
) -> list[dict[str, Any]]:
    """Every half of every judged set: the plain ensemble and each variant, as the notebook answers them."""
    data = load_dataset(spec, args.data_dir)
    rows = []
    for half, (name, indices) in data.judged_halves().items():
        if args.report_only and half.endswith("_pick"):
            continue
        with tempfile.TemporaryDirectory() as temporary:
            folder = Path(temporary)
            write_inputs(folder / "input", spec, data, data.extras[name].images[indices])
            answers = {}
            for variant, levers in notebooks(args, variants).items():
                kernel = write_kernel(args.runs, spec, run.run_id, folder / f"kernel-{len(answers)}", levers)
                print(f"{half}: {variant} ({len(indices)} images)", flush=True)
                answers[variant] = notebook_answers(kernel, folder / "input", folder / f"work-{len(answers)}")
            rows += half_rows(half, data.extras[name].labels[indices], answers)
    return rows


def picked_variant(rows: list[dict[str, Any]]) -> str | None:
    """The best of all (the plain ensemble included) on the halves that pick; the first on a tie. None when no
    picking half was run (--report-only)."""
    picking = [row for row in rows if row["half"].endswith("_pick")]
    return max(picking, key=lambda row: row["accuracy"])["variant"] if picking else None


def markdown(document: dict[str, Any]) -> str:
    rows = [
        [
            r["half"],
            r["variant"],
            f"{r['accuracy']:.5f}",
            ""
            if r["variant"] == PLAIN
            else f"{r['gain']:+.5f} ({r['only_this']} vs {r['only_plain']} rows, p = {r['p_value']:.2g})",
            f"{r['seconds']:,.0f}",
        ]
        for r in document["rows"]
    ]
    settings = "\n".join(f"- `{name}`: {values}" for name, values in document["variants"].items())
    if document.get("adabn"):
        settings += "\n- `AdaBN`: no round; BatchNorm statistics re-estimated on the test images before predicting"
    return (
        "\n".join(
            [
                f"# Transductive round: {document['competition']}, {document['created']}",
                "",
                f"`{document['command']}` (commit {document['git_commit'] or 'unknown'})",
                "",
                f"- machine: {document['machine']['cpu']}, {document['machine']['cores']} cores; flags: "
                f"{document['machine']['cpu_flags']}",
                f"- run `{document['run']}`: OOF {document['oof_accuracy']}; its models never trained on the judged set",
                f"- settings over {document['settings']} (configs/transductive.yaml; the run's own affine ranges added):",
                settings,
                "",
                markdown_table(["half", "notebook", "accuracy", "gain over the plain ensemble", "seconds"], rows),
                "",
                picked_line(document["picked"]),
            ]
        )
        + "\n"
    )


def picked_line(picked: str | None) -> str:
    if picked is None:
        return "Reporting half only (`--report-only`): the settings were picked before, on another run."
    return f"Picked on the picking half: **{picked}**; the reporting half above says what it is worth."


def transductive(argv: list[str]) -> Path:
    args = transductive_parser().parse_args(argv)
    spec = get_spec(args.competition)
    if not spec.judged_sets:
        raise UserError(f"transductive: {spec.name} has no judged set to stand in for its hidden test set")
    variants = dict(parse_variant(text) for text in args.variant or ([] if args.adabn else ["default"]))
    run = runs.finished_run(args.runs, spec.name, args.run)
    rows = measure(args, spec, run, variants)
    document = {
        "competition": spec.name,
        "run": run.run_id,
        "oof_accuracy": run.metrics().oof_accuracy,
        "settings": dataclasses.asdict(load_transductive()),  # what each variant's settings are laid over
        "variants": variants,
        "adabn": args.adabn,
        "rows": rows,
        "picked": picked_variant(rows),
    } | provenance(" ".join(["python -m bench.transductive", *argv]))
    return write_result_files(args.out, f"transductive-{spec.name}", document, markdown(document))


def main(argv: list[str]) -> int:
    return exit_status(lambda: transductive(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
