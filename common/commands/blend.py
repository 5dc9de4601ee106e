"""Blending: a weighted mean of several finished runs' probabilities, written as a run folder of its own.

OOF rows are aligned through folds.csv's `row` column (only rows every run scored are kept), test rows and
extra sets (the holdout too, when every run held out the same rows) line up by position. When a run has no OOF
(no fold models), the blend has none either: it blends and scores the holdout, the extra sets and the test set. The blend's folder has the same files as a trained run (minus units/, plus a
config.yaml of kind blend naming its sources and weights), so `compare`, `report`, `submit`, `predict` and
`kernel` treat it like any other run; the last two through its sources' saved models, weighted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from common import runs
from common.data.files import Dataset, load_dataset
from common.data.trainset import folds_rows
from common.ground.errors import UserError
from common.ground.spec import CompetitionSpec, get_spec
from common.runs.aligned import AlignedOOF, aligned_oof, has_oof, shared_sets
from common.runs.ensemble import write_ensemble_files
from common.runs.latest import publish_submission, submission_line
from common.runs.metrics import accuracy, per_class_table, submitted_score
from common.runs.report import write_report
from common.runs.units import submitted_keys

NO_OOF_BLEND = (
    "(no OOF: a run without fold models has none, so the blend averages and scores the holdout, the extra sets and"
    " the test set only)"
)

# ---------------------------------------------------------------------------
# Checking the inputs (all before the new run folder exists)
# ---------------------------------------------------------------------------


def resolve_runs(root: Path, competition: str, run_ids: Sequence[str]) -> list[runs.Run]:
    """The named runs: at least two, distinct and finished."""
    if len(run_ids) < 2:
        raise UserError(f"blend needs at least 2 runs, got {len(run_ids)}")
    chosen = [runs.find_run(root, competition, run_id) for run_id in run_ids]
    ids = [run.run_id for run in chosen]
    repeated = next((run_id for run_id in ids if ids.count(run_id) > 1), None)
    if repeated:
        raise UserError(f"run {repeated} is named twice: name each run once and use --weights to favour one")
    return [run.require_finished() for run in chosen]


def normalised_weights(weights: Sequence[float] | None, n_runs: int) -> np.ndarray:
    """Weights summing to 1 (equal when none are given)."""
    if weights is None:
        return np.full(n_runs, 1.0 / n_runs)
    weights = np.asarray(weights, dtype=np.float64)
    if len(weights) != n_runs:
        raise UserError(f"--weights: {len(weights)} weights for {n_runs} runs, expected one per run")
    if (weights < 0).any() or not np.isfinite(weights).all() or weights.sum() <= 0:
        raise UserError(f"--weights: expected non-negative numbers with a positive sum, got {weights.tolist()}")
    return weights / weights.sum()


def same_rows(chosen: list[runs.Run], name: str, expected: int) -> list[np.ndarray]:
    """Each run's `name`.npy, refused unless every one has `expected` rows (the dataset's count)."""
    arrays = [run.array(name) for run in chosen]
    for run, array in zip(chosen, arrays, strict=True):
        if len(array) != expected:
            raise UserError(f"{run.array_file(name)}: {len(array)} rows, expected {expected} like the data")
    return arrays


def check_train_labels(
    aligned: AlignedOOF, data: Dataset, first: runs.Run
) -> tuple[pd.DataFrame, tuple[np.ndarray, np.ndarray]]:
    """The runs' folds.csv must describe these files, or the blend's scores would be meaningless. Returns the
    blend's folds table (the first run's folds on the shared rows, with each row's origin for extra_train) and
    those rows' images and labels, for the blend's report."""
    own = first.folds().set_index("row")
    table = pd.DataFrame({"row": aligned.rows, "label": aligned.labels, "fold": aligned.folds[0]})
    table["origin"] = own["origin"].reindex(aligned.rows).to_numpy() if "origin" in own else "train"
    return table, folds_rows(data, table, first.folds_file)


# ---------------------------------------------------------------------------
# Blending and writing
# ---------------------------------------------------------------------------


def scored_extras(data: Dataset, names: list[str], sets: dict, arrays: dict) -> dict[str, tuple]:
    """Set name -> (labels, each run's probabilities, the blend's) for every shared extra set and, as a trained
    run scores them (Dataset.scored_sets), the picking and reporting halves of each judged set."""
    blended = data.scored_sets({name: arrays[name] for name in names})
    per_run = [data.scored_sets({name: sets[name][i] for name in names}) for i in range(len(sets[runs.TEST]))]
    return {
        name: (labels, [scored[name][1] for scored in per_run], probabilities)
        for name, (labels, probabilities) in blended.items()
    }


def weighted_mean(arrays: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    return np.tensordot(weights, np.stack(arrays).astype(np.float64), axes=1).astype(np.float32)


def blend_metrics(
    aligned: AlignedOOF | None, oof, extras: dict, chosen: list[runs.Run], weights, spec: CompetitionSpec
) -> runs.Metrics:
    """Scores of the blend and, on the same rows, of each input run; OOF ones only when every run has OOF
    (`aligned` None: runs without fold models, scored on the holdout and extra sets alone)."""
    inputs = {
        run.run_id: {
            "weight": float(weight),
            "extra_accuracy": {name: accuracy(labels, arrays[i]) for name, (labels, arrays, _) in extras.items()},
        }
        for i, (run, weight) in enumerate(zip(chosen, weights, strict=True))
    }
    extra_accuracy = {name: accuracy(labels, blended) for name, (labels, _, blended) in extras.items()}
    if aligned is None:
        submitted = blend_submitted(chosen, spec, None, extra_accuracy)
        return runs.Metrics(submitted, 0, extra_accuracy=extra_accuracy, inputs=inputs)
    for run_id, probabilities in zip(inputs, aligned.probabilities, strict=True):
        inputs[run_id]["oof_accuracy"] = accuracy(aligned.labels, probabilities)
    folds = aligned.folds[0]  # the first run's, as written to the blend's folds.csv
    oof_accuracy = accuracy(aligned.labels, oof)
    return runs.Metrics(
        blend_submitted(chosen, spec, oof_accuracy, extra_accuracy),
        len(aligned.rows),
        oof_accuracy=oof_accuracy,
        extra_accuracy=extra_accuracy,
        folds={
            str(f): {"accuracy": accuracy(aligned.labels[folds == f], oof[folds == f])}
            for f in np.unique(folds).tolist()
        },
        per_class=per_class_table(aligned.labels, oof).to_dict(orient="records"),
        inputs=inputs,
    )


def blend_submitted(
    chosen: list[runs.Run], spec: CompetitionSpec, oof_accuracy: float | None, extra_accuracy: dict[str, float]
) -> runs.Submitted:
    """The blend submits its sources' submitted models, weighted; OOF judges them when all are fold models."""
    members = [member.run for run in chosen for member in run.members()]
    keys = [(run.run_id, key) for run in members for key in submitted_keys(run.cfg)]
    units = [f"{run_id}/{key.name}" for run_id, key in keys]
    fold_models = all(key.holds_out for _, key in keys)
    return submitted_score(spec, runs.BLEND_LABEL, units, oof_accuracy, extra_accuracy, fold_models)


def write_blend(
    folder: Path, folds: pd.DataFrame, arrays: dict[str, np.ndarray], metrics: runs.Metrics, data: Dataset
) -> None:
    """The run-folder files: folds.csv (first run's folds on the shared rows), arrays, metrics, submission."""
    runs.write_folds(folder, folds)
    write_ensemble_files(folder, data, arrays, folds["label"].to_numpy(), metrics)


def print_blend(folder: Path, metrics: runs.Metrics, report: Path, published: bool) -> None:
    extra_names = list(metrics.extra_accuracy)
    with_oof = metrics.oof_accuracy is not None
    print(f"\n{'':<36}{'oof' if with_oof else '':>10}" + "".join(f"{name:>16}" for name in extra_names))
    blended = {"oof_accuracy": metrics.oof_accuracy, "extra_accuracy": metrics.extra_accuracy}
    rows = [*metrics.inputs.items(), ("blend", blended)]
    for name, scores in rows:
        extras = "".join(f"{scores['extra_accuracy'][extra]:>16.5f}" for extra in extra_names)
        oof = f"{scores['oof_accuracy']:>10.5f}" if with_oof else f"{'':>10}"
        print(f"{name:<36}{oof}{extras}")
    if with_oof:
        print(f"(OOF on the {metrics.n_train_rows} train rows every run scored)")
    else:
        print(NO_OOF_BLEND)
    run = runs.load_run(folder)
    print(f"\nsubmitted:   {run.submitted_text(metrics)}")
    print(f"run folder:  {folder}\n{submission_line(run, published)}\nreport:      {report}")


def blend_runs(
    root: Path,
    competition: str,
    run_ids: Sequence[str],
    weights: Sequence[float] | None = None,
    data_dir: str | Path | None = None,
    *,
    argv: list[str] | None = None,
) -> Path:
    """Averages the runs' OOF, test and extra-set probabilities into a new 'blend' run folder; returns it."""
    start = time.perf_counter()
    chosen = resolve_runs(root, competition, run_ids)
    weight = normalised_weights(weights, len(chosen))
    files = load_dataset(get_spec(competition), data_dir)  # every set: an extra_train run's rows come from one
    data = shared_sets(chosen, files)  # the sets every run predicted: what the blend scores
    names = list(data.extras)
    sets = {runs.TEST: same_rows(chosen, runs.TEST, len(data.test.images))}
    sets |= {name: same_rows(chosen, name, len(data.extras[name].labels)) for name in names}
    arrays = {name: weighted_mean(inputs, weight) for name, inputs in sets.items()}
    extras = scored_extras(data, names, sets, arrays)
    if has_oof(chosen):
        aligned = aligned_oof(chosen)
        folds, (images, labels) = check_train_labels(aligned, files, chosen[0])
        arrays = {runs.OOF: weighted_mean(aligned.probabilities, weight)} | arrays
    else:
        aligned, folds = None, chosen[0].folds()
        images, labels = chosen[0].training_images(files)
        if not extras:
            raise UserError("blend: some runs have no OOF (no fold models), and they share no holdout or extra set")
    metrics = blend_metrics(aligned, arrays.get(runs.OOF), extras, chosen, weight, files.spec)

    folder = runs.create_run_dir(root, competition, runs.BLEND_LABEL)
    config = runs.BlendConfig(tuple(run.run_id for run in chosen), tuple(map(float, weight)), chosen[0].run_id)
    command = argv or ["blend", competition, *run_ids, *(["--weights", *map(str, weights)] if weights else [])]
    hardware = "none (averages saved probabilities)"
    runs.start_run(folder, config, command, hardware, label=runs.BLEND_LABEL, kind=runs.RunKind.BLEND)
    write_blend(folder, folds, arrays, metrics, data)
    runs.finish_run(folder, time.perf_counter() - start)
    published = publish_submission(folder)  # the competition's submission.csv: the latest run's
    print_blend(folder, metrics, write_report(folder, images, labels, data), published)
    return folder
