"""Blending: a weighted mean of several finished runs' probabilities, written as a run folder of its own.

Every run must have scored the same train rows (folds.csv's `row`, in any order; OOF rows are aligned through
it): a blend scored on the few rows that a small run shares with a large one would be graded on a sample none of
its runs was, so such runs are refused. Test rows and extra sets (the holdout too, when every run held out the same
rows) line up by position. When a run has no OOF (no fold models), the blend has none either: it blends and scores
the holdout, the extra sets and the test set.

Weights are equal, given (--weights W ...), or fitted (--weights oof): non-negative and summing to 1, they minimise
the blend's log-loss on the runs' OOF (on their shared holdout when they have no OOF) with scipy's SLSQP. A fitted
blend's OOF (or holdout) is cross-fitted, each fold's rows blended with weights fitted on the other folds, so its
score is the fit's cross-validated one and never grades the fit on its own rows; the test set and the extra sets
take the weights fitted on every row. With --rank each run's probabilities are replaced, set by set, by each class's
rank over the set's rows before they are averaged.

The blend's folder has the same files as a trained run (minus units/, plus a config.yaml of kind blend naming its
sources and weights), so `compare`, `report`, `submit`, `predict` and `kernel` treat it like any other run; the
last two through its sources' saved models, weighted (a rank blend has no such form: they refuse it).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from functools import reduce
from pathlib import Path

import numpy as np
import pandas as pd

from common import runs
from common.data.files import Dataset, load_dataset
from common.data.folds import make_folds
from common.data.trainset import HOLDOUT_SET, folds_rows
from common.ground.errors import UserError
from common.ground.spec import CompetitionSpec, get_spec
from common.runs.aligned import AlignedOOF, aligned_oof, has_oof, read_oof, shared_sets
from common.runs.ensemble import write_ensemble_files
from common.runs.latest import publish_submission, submission_line
from common.runs.metrics import accuracy, per_class_table, submitted_score
from common.runs.report import write_report
from common.runs.units import submitted_keys
from common.runs.weights import Fit, cross_fit, ranked, weighted_mean

NO_OOF_BLEND = (
    "(no OOF: a run without fold models has none, so the blend averages and scores the holdout, the extra sets and"
    " the test set only)"
)
FIT = "oof"  # --weights oof: fit the weights
HOLDOUT_CV_FOLDS = 5  # fitting on a holdout: the stratified parts it is cut into to cross-validate the fit

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


def weight_request(weights: Sequence[str | float] | None, n_runs: int) -> np.ndarray | str:
    """--weights as asked: equal (none given), the given numbers normalised, or FIT."""
    if weights is not None and [str(w) for w in weights] == [FIT]:
        return FIT
    return normalised_weights(None if weights is None else [as_weight(w) for w in weights], n_runs)


def as_weight(value: str | float) -> float:
    try:
        return float(value)
    except ValueError:
        raise UserError(f"--weights: expected one number per run, or '{FIT}' alone, got {value!r}") from None


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


def aligned_rows(chosen: list[runs.Run]) -> AlignedOOF | None:
    """The runs' OOF lined up row by row (None when some run has none), refused unless every run scored the very
    same train rows."""
    if not has_oof(chosen):
        return None
    rows = [np.sort(read_oof(run)[0]["row"].to_numpy()) for run in chosen]
    if any(not np.array_equal(own, rows[0]) for own in rows[1:]):
        counts = ", ".join(f"{run.run_id}: {len(own)}" for run, own in zip(chosen, rows, strict=True))
        shared = len(reduce(np.intersect1d, rows))
        raise UserError(
            f"blend: the runs scored different train rows ({counts}; {shared} in common): blend runs that trained"
            " on the same rows (the same max_train_rows and seed, holdout and extra_train)"
        )
    return aligned_oof(chosen)


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
# Blending: ranks, weights fitted out of fold
# ---------------------------------------------------------------------------


def input_sets(chosen: list[runs.Run], data: Dataset, aligned: AlignedOOF | None) -> dict[str, list[np.ndarray]]:
    """Set name -> each run's probabilities on it: the test set, every shared extra set, and OOF when aligned."""
    sets = {runs.TEST: same_rows(chosen, runs.TEST, len(data.test.images))}
    sets |= {name: same_rows(chosen, name, len(table.labels)) for name, table in data.extras.items()}
    if aligned is None and len(sets) == 1:
        raise UserError("blend: some runs have no OOF (no fold models), and they share no holdout or extra set")
    return sets | ({runs.OOF: aligned.probabilities} if aligned is not None else {})


def fitted(sets: dict[str, list[np.ndarray]], aligned: AlignedOOF | None, data: Dataset) -> Fit:
    """--weights oof: fitted on OOF, cross-validated over the first run's folds (the blend's folds.csv); runs
    without OOF on their shared holdout, cross-validated over stratified parts of it."""
    if aligned is not None:
        return cross_fit(runs.OOF, sets[runs.OOF], aligned.labels, aligned.folds[0])
    if HOLDOUT_SET not in data.extras:
        raise UserError(
            f"--weights {FIT}: the runs have no OOF (no fold models) and no holdout in common to fit weights on;"
            " give --weights W ... (one per run), or blend runs with fold models or the same holdout"
        )
    labels = data.extras[HOLDOUT_SET].labels
    rarest = int(np.bincount(labels)[np.unique(labels)].min())
    if rarest < 2:
        raise UserError(f"--weights {FIT}: the holdout's {len(labels)} rows are too few to cross-validate a fit")
    folds = make_folds(labels, min(HOLDOUT_CV_FOLDS, rarest), seed=0)
    return cross_fit(HOLDOUT_SET, sets[HOLDOUT_SET], labels, folds)


def blended_arrays(
    sets: dict[str, list[np.ndarray]], request: np.ndarray | str, aligned: AlignedOOF | None, data: Dataset, rank: bool
) -> tuple[dict[str, np.ndarray], np.ndarray, Fit | None]:
    """(the blend's array of every set, its weights, the fit when --weights oof asked for one)."""
    inputs = {name: [ranked(a) for a in arrays] for name, arrays in sets.items()} if rank else sets
    fit = fitted(inputs, aligned, data) if isinstance(request, str) else None
    weights = fit.weights if fit else request
    arrays = {name: weighted_mean(arrays, weights) for name, arrays in inputs.items()}
    return arrays | ({fit.on: fit.cross_fitted} if fit else {}), weights, fit


# ---------------------------------------------------------------------------
# Scoring and writing
# ---------------------------------------------------------------------------


def scored_extras(data: Dataset, sets: dict, arrays: dict) -> dict[str, tuple]:
    """Set name -> (labels, each run's probabilities, the blend's) for every shared extra set and, as a trained
    run scores them (Dataset.scored_sets), the picking and reporting halves of each judged set."""
    names = list(data.extras)
    blended = data.scored_sets({name: arrays[name] for name in names})
    per_run = [data.scored_sets({name: sets[name][i] for name in names}) for i in range(len(sets[runs.TEST]))]
    return {
        name: (labels, [scored[name][1] for scored in per_run], probabilities)
        for name, (labels, probabilities) in blended.items()
    }


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
    """The blend submits its sources' submitted models, weighted; OOF judges them when all are fold models (a
    fitted blend's OOF, or holdout, is cross-fitted: its score there is the fit's out-of-fold one)."""
    members = [trained for run in chosen for trained in run.trained_runs()]
    keys = [(run.run_id, key) for run in members for key in submitted_keys(run.cfg)]
    units = [f"{run_id}/{key.name}" for run_id, key in keys]
    fold_models = all(key.holds_out for _, key in keys)
    return submitted_score(spec, runs.BLEND_LABEL, units, oof_accuracy, extra_accuracy, fold_models)


def blend_folds(
    aligned: AlignedOOF | None, files: Dataset, first: runs.Run
) -> tuple[pd.DataFrame, tuple[np.ndarray, np.ndarray]]:
    """The blend's folds.csv and its rows' images and labels (for its report)."""
    if aligned is not None:
        return check_train_labels(aligned, files, first)
    return first.folds(), first.training_images(files)


def write_blend(
    folder: Path, folds: pd.DataFrame, arrays: dict[str, np.ndarray], metrics: runs.Metrics, data: Dataset
) -> None:
    """The run-folder files: folds.csv (first run's folds on the shared rows), arrays, metrics, submission."""
    runs.write_folds(folder, folds)
    write_ensemble_files(folder, data, arrays, folds["label"].to_numpy(), metrics)


def scores_table(metrics: runs.Metrics) -> str:
    """Each run's weight and scores and the blend's, one column per set (pandas keeps the columns apart)."""
    with_oof = metrics.oof_accuracy is not None
    names = (["oof"] if with_oof else []) + list(metrics.extra_accuracy)

    def scores(entry: dict) -> list[str]:
        values = ([entry["oof_accuracy"]] if with_oof else []) + [
            entry["extra_accuracy"][name] for name in metrics.extra_accuracy
        ]
        return [f"{value:.5f}" for value in values]

    rows = {run_id: [f"{entry['weight']:.3f}", *scores(entry)] for run_id, entry in metrics.inputs.items()}
    rows["blend"] = ["", *scores({"oof_accuracy": metrics.oof_accuracy, "extra_accuracy": metrics.extra_accuracy})]
    return pd.DataFrame.from_dict(rows, orient="index", columns=["weight", *names]).to_string()


def fit_lines(metrics: runs.Metrics, rank: bool) -> list[str]:
    fit = metrics.weights_fit
    lines = ["(--rank: each class's rank over a set's rows averaged, not its probabilities)"] if rank else []
    if not fit:
        return lines
    on = "OOF" if fit["on"] == runs.OOF else f"the holdout ({fit['on']})"
    parts = "folds" if fit["on"] == runs.OOF else "stratified parts of the holdout"
    return lines + [
        f"weights fitted on {on} by {fit['optimiser']}: the lowest log-loss, non-negative, summing to 1",
        f"its {on} score is cross-validated over {fit['cv_folds']} {parts}: each blended with weights fitted on"
        " the others",
    ]


def print_blend(folder: Path, metrics: runs.Metrics, report: Path, published: bool) -> None:
    run = runs.load_run(folder)
    print(f"\n{scores_table(metrics)}")
    if metrics.oof_accuracy is not None:
        print(f"(OOF on the {metrics.n_train_rows} train rows every run scored)")
    else:
        print(NO_OOF_BLEND)
    print("\n".join(fit_lines(metrics, run.blend.rank)))
    print(f"\nsubmitted:   {run.submitted_text(metrics)}")
    print(f"run folder:  {folder}\n{submission_line(run, published)}\nreport:      {report}")


def blend_command(competition: str, run_ids: Sequence[str], weights: Sequence | None, rank: bool) -> list[str]:
    return ["blend", competition, *run_ids, *(["--weights", *map(str, weights)] if weights else [])] + (
        ["--rank"] if rank else []
    )


def blend_runs(
    root: Path,
    competition: str,
    run_ids: Sequence[str],
    weights: Sequence[str | float] | None = None,
    data_dir: str | Path | None = None,
    *,
    rank: bool = False,
    argv: list[str] | None = None,
) -> Path:
    """Averages the runs' OOF, test and extra-set probabilities (or, with `rank`, their ranks) with the given,
    equal or fitted (`weights` ["oof"]) weights into a new 'blend' run folder; returns it."""
    start = time.perf_counter()
    chosen = resolve_runs(root, competition, run_ids)
    request = weight_request(weights, len(chosen))
    files = load_dataset(get_spec(competition), data_dir)  # every set: an extra_train run's rows come from one
    data = shared_sets(chosen, files)  # the sets every run predicted: what the blend scores
    aligned = aligned_rows(chosen)
    sets = input_sets(chosen, data, aligned)
    arrays, weight, fit = blended_arrays(sets, request, aligned, data, rank)
    folds, (images, labels) = blend_folds(aligned, files, chosen[0])
    extras = scored_extras(data, sets, arrays)
    metrics = blend_metrics(aligned, arrays.get(runs.OOF), extras, chosen, weight, files.spec)
    metrics = dataclasses.replace(metrics, weights_fit=fit.metrics() if fit else {})

    folder = runs.create_run_dir(root, competition, runs.BLEND_LABEL)
    sources = tuple(run.run_id for run in chosen)
    config = runs.BlendConfig(sources, tuple(map(float, weight)), chosen[0].run_id, rank, fit.on if fit else "")
    command = argv or blend_command(competition, run_ids, weights, rank)
    hardware = "none (averages saved probabilities)"
    kind = runs.RunKind.BLEND
    runs.start_run(folder, config, command, hardware, label=runs.BLEND_LABEL, kind=kind, data_files=files.files)
    write_blend(folder, folds, arrays, metrics, data)
    runs.finish_run(folder, time.perf_counter() - start)
    published = publish_submission(folder)  # the competition's submission.csv: the latest run's
    print_blend(folder, metrics, write_report(folder, images, labels, data), published)
    return folder
