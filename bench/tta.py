"""Benchmark: what test-time augmentation adds to a finished run's out-of-fold accuracy.

python -m bench.tta mnist [RUN] [--data-dir DIR]

Loads each unit's saved model, predicts its own held-out fold on the image and on every one-pixel shift of
common/ground/config.py's TTA_SHIFTS, and scores the OOF ensemble with 0, 1, 2, ... shifted views added (every
`tta` config value). Nothing is retrained, so the comparison is exact: the same models, the same rows.
Results: bench/results/tta-<competition>-<UTC stamp>.md and .json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.harness.results import finished_run_parser, markdown_table  # noqa: E402
from common import runs  # noqa: E402
from common.data.files import load_dataset  # noqa: E402
from common.ground.config import TTA_SHIFTS  # noqa: E402
from common.ground.errors import exit_status  # noqa: E402
from common.ground.spec import N_CLASSES, get_spec  # noqa: E402
from common.runs.metrics import accuracy  # noqa: E402
from common.runs.units import all_units  # noqa: E402
from common.training.augment import tta_views  # noqa: E402


def view_probabilities(run: runs.Run, images: np.ndarray) -> tuple[np.ndarray, float]:
    """(views, n_rows, 10): every unit's prediction of its held-out rows, per view; and the seconds per view.
    `images` are the run's folds.csv rows, in order (common.data.trainset.folds_rows)."""
    import keras

    folds = run.folds()
    per_view = np.zeros((1 + len(TTA_SHIFTS), len(folds), N_CLASSES), np.float64)
    units = [key for key in all_units(run.cfg) if key.holds_out]  # the fold models: OOF is theirs alone
    models = {path.parent: path for path in run.unit_files(runs.MODEL_KERAS)}  # each unit's saved model
    start = time.perf_counter()
    for key in tqdm(units, desc="units", unit="unit"):
        model = keras.models.load_model(models[run.unit_dir(key)], compile=False)
        held_out = (folds["fold"] == key.fold).to_numpy()
        for view, shifted in enumerate(tta_views(images[held_out], len(TTA_SHIFTS))):
            per_view[view, held_out] += model.predict(shifted, batch_size=1024, verbose=0) / run.cfg.seeds
    seconds_per_view = (time.perf_counter() - start) / (1 + len(TTA_SHIFTS))
    return per_view, seconds_per_view


def tta_table(per_view: np.ndarray, labels: np.ndarray) -> list[dict]:
    """OOF accuracy with the image plus the first k shifts, k = 0..8."""
    rows = []
    for k in range(len(per_view)):
        score = accuracy(labels, per_view[: k + 1].mean(axis=0))
        rows.append({"tta": k, "oof_accuracy": round(score, 5), "errors": int(round((1 - score) * len(labels)))})
    return rows


def write_results(run: runs.Run, rows: list[dict], seconds_per_view: float, command: str, results: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    competition = run.competition
    base = results / f"tta-{competition}-{stamp}"
    lines = [
        f"# Test-time augmentation: {competition}, run {run.run_id}\n",
        f"`{command}`\n",
        f"- the run's own saved models, each on its own held-out fold; run config tta={run.cfg.tta}",
        f"- views: the image, then one-pixel shifts in this order: {list(TTA_SHIFTS)}",
        f"- prediction time per view, all units: {seconds_per_view:.1f} s\n",
        markdown_table(
            ["tta (shifted views)", "OOF accuracy", "errors"],
            [[r["tta"], f"{r['oof_accuracy']:.5f}", r["errors"]] for r in rows],
        ),
    ]
    runs.atomic_write_bytes(base.with_suffix(".md"), ("\n".join(lines) + "\n").encode())
    record = {"run": run.run_id, "command": command, "seconds_per_view": seconds_per_view, "rows": rows}
    runs.write_json(base.with_suffix(".json"), record)
    return base.with_suffix(".md")


def tta_parser() -> argparse.ArgumentParser:
    return finished_run_parser(
        "python -m bench.tta", f"OOF accuracy of a finished run with 0-{len(TTA_SHIFTS)} test-time shifts."
    )


def tta_bench(argv: list[str]) -> Path:
    """Scores the run's OOF ensemble with 0-8 shifted views; writes and returns the table's path."""
    args = tta_parser().parse_args(argv)
    spec = get_spec(args.competition)
    run = runs.find_run(args.out or runs.DEFAULT_ROOT, spec.name, args.run)
    data = load_dataset(spec, args.data_dir)
    images, _ = run.training_images(data)
    per_view, seconds = view_probabilities(run, images)
    rows = tta_table(per_view, run.folds()["label"].to_numpy())
    path = write_results(run, rows, seconds, "python -m bench.tta " + " ".join(argv), args.results)
    print("\n".join(f"tta {r['tta']}: OOF {r['oof_accuracy']:.5f} ({r['errors']} errors)" for r in rows))
    print(f"written to {path}")
    return path


def main(argv: list[str]) -> int:
    return exit_status(lambda: tta_bench(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
