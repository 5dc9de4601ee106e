"""Comparing runs: a ranked table of every run, and a paired test of whether run A really beats run B.

Both read run folders only. Two runs line up row by row through folds.csv's `row` column (an index into
train.csv), so a head-to-head test uses exactly the training rows both runs scored.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from common.data.files import load_dataset
from common.data.trainset import HOLDOUT_SET
from common.ground.errors import UserError
from common.ground.spec import get_spec
from common.runs import OOF, Run, atomic_write_bytes, find_run, list_runs
from common.runs.aligned import AlignedOOF, aligned_oof, has_oof, shared_sets
from common.runs.stats import ALPHA, McNemarResult, mcnemar

# Config keys shown in their own columns (epochs and width: the submitted models'), never among the "differing" ones.
OWN_COLUMNS = ("folds", "seeds", "epochs", "width")
SCORE, SIGNAL = "score", "judged on"  # the submitted models' own accuracy, and the signal that judges them
RANKING = (
    f"ranked by {SCORE}: the submitted models' own accuracy, on the signal in '{SIGNAL}' (OOF when they are the"
    " fold models; else the holdout; kannada: Dig-MNIST's reporting half); epochs and width: the submitted models'"
)


# ---------------------------------------------------------------------------
# The table of all runs
# ---------------------------------------------------------------------------


def run_date(run: Run) -> str:
    started = run.record.started or run.run_id[:15]
    return pd.Timestamp(started).strftime("%Y-%m-%d %H:%M")


def differing_keys(runs: list[Run]) -> list[str]:
    """Config keys whose value is not the same in every run that has the key, in first-seen order."""
    settings = [run.settings for run in runs]
    keys = list(dict.fromkeys(key for values in settings for key in values))
    differ = []
    for key in keys:
        values = {json.dumps(values[key], sort_keys=True) for values in settings if key in values}
        if len(values) > 1 and key not in OWN_COLUMNS:
            differ.append(key)
    return differ


def submitted_columns(run: Run) -> dict[str, str]:
    """The submitted models' epochs and width ('8/40' when they differ), '-' where a blend's sources are gone."""
    try:
        shape = run.submitted_shape()
    except UserError:
        return {"epochs": "-", "width": "-"}
    return dict(zip(("epochs", "width"), ("/".join(map(str, values)) for values in shape), strict=True))


def run_row(run: Run, keys: list[str]) -> dict:
    """One table row; an unfinished run keeps its config but has no score or wall time."""
    metrics = run.metrics() if run.finished else None
    scores = {}
    if metrics is not None:
        extras = metrics.oof_extra_accuracy | metrics.extra_accuracy
        scores = {"oof_accuracy": metrics.oof_accuracy, **{f"{name}_accuracy": a for name, a in extras.items()}}
    settings = run.settings
    wall = run.record.wall_seconds
    return {
        "run_id": run.run_id,
        "date": run_date(run),
        "preset": run.label,
        "status": run.status.shown,
        **{key: settings.get(key) for key in keys},
        "folds x seeds": run.shape,
        **submitted_columns(run),
        SCORE: metrics.score if metrics and metrics.score is not None else np.nan,
        SIGNAL: metrics.submitted.judged_by if metrics else "-",
        **{name: np.nan if value is None else value for name, value in scores.items()},
        "wall_seconds": wall if run.finished and wall is not None else np.nan,
    }


def compare_table(root: Path, competition: str) -> pd.DataFrame:
    """Every run of the competition, best submitted-models' score first; unfinished runs last, unscored."""
    runs = list_runs(root, competition)
    rows = [run_row(run, differing_keys(runs)) for run in runs]
    table = whole_numbers_kept(pd.DataFrame(rows), rows)
    if table.empty:
        return table
    table["_unfinished"] = table["status"] != "finished"
    # Newest first among equals: runs are listed oldest first, and the sort is stable.
    table = table.iloc[::-1].sort_values(
        ["_unfinished", SCORE], ascending=[True, False], na_position="last", kind="stable"
    )
    wall = table.pop("wall_seconds")
    return table.drop(columns="_unfinished").assign(wall_seconds=wall).reset_index(drop=True)


def whole_numbers_kept(table: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    """Integer settings stay integers (3, not 3.0) beside a run that lacks them, such as a blend: pandas would
    make the column float."""
    for column in table.columns:
        values = [row[column] for row in rows if row.get(column) is not None]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            table[column] = table[column].astype("Int64")
    return table


def format_table(table: pd.DataFrame) -> str:
    def score(value: float) -> str:
        return "-" if pd.isna(value) else f"{value:.5f}"

    def seconds(value: float) -> str:
        return "-" if pd.isna(value) else f"{value:.0f}"

    formatters = {column: score for column in table.columns if column.endswith("_accuracy") or column == SCORE}
    formatters["wall_seconds"] = seconds
    # pandas leaves <NA> in a nullable integer column whatever na_rep says: spell those columns out first.
    whole = [column for column in table.columns if isinstance(table[column].dtype, pd.Int64Dtype)]
    shown = table.assign(**{c: ["-" if pd.isna(v) else str(v) for v in table[c]] for c in whole})
    return shown.to_string(index=False, na_rep="-", formatters=formatters)


def print_compare(root: Path, competition: str) -> Path:
    """Prints the table of runs, writes it to <root>/<competition>/compare.csv and returns that path."""
    table = compare_table(root, competition)
    if table.empty:
        raise UserError(f"no runs of {competition} under {root / competition}")
    print(format_table(table))
    print(f"\n{RANKING}.")
    unfinished = int((table["status"] != "finished").sum())
    if unfinished:
        print(f"\n{unfinished} unfinished run(s) (running, stopped, pruned, failed) are listed last, unscored.")
    path = root / competition / "compare.csv"
    atomic_write_bytes(path, table.to_csv(index=False).encode())
    print(f"\ntable written to {path}")
    return path


# ---------------------------------------------------------------------------
# Lining runs up row by row
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# The head-to-head text
# ---------------------------------------------------------------------------


def fold_notes(aligned: AlignedOOF, names: tuple[str, str]) -> list[str]:
    """Warnings when the two runs scored different rows or split them into different folds."""
    notes = []
    n = len(aligned.rows)
    if aligned.scored[0] != n or aligned.scored[1] != n:
        notes.append(
            f"the runs scored different train rows ({names[0]}: {aligned.scored[0]}, {names[1]}: "
            f"{aligned.scored[1]}); compared on the {n} rows both scored"
        )
    pairs = pd.DataFrame({"a": aligned.folds[0], "b": aligned.folds[1]}).drop_duplicates()
    same_split = len(pairs) == pairs["a"].nunique() == pairs["b"].nunique()
    if not same_split:
        moved = int((aligned.folds[0] != aligned.folds[1]).sum())
        notes.append(
            f"the runs' folds differ ({moved} of {n} shared rows are in a different fold): each row was "
            "predicted by models trained on different data, so part of the gap may come from the split"
        )
    return notes


def data_files_note(a: Run, b: Run) -> list[str]:
    """A note when the runs read other competition files (by size and SHA-256: the same bytes in another folder
    are the same data); a run that records none says nothing."""
    files = [run.record.data_files for run in (a, b)]
    if not all(files) or len({frozenset((f.size, f.sha256) for f in entries) for entries in files}) == 1:
        return []
    shown = ["; ".join(f"{f.path} ({f.size} bytes, SHA-256 {f.sha256[:12]})" for f in entries) for entries in files]
    return [f"note: the runs read different data files: A {shown[0]}; B {shown[1]}"]


def hardware_note(a: Run, b: Run) -> list[str]:
    """A note when the runs' training steps ran on other hardware or kernels (backend, device, precision, jit,
    fused BatchNorm, affine kernel, threads: run.json's `hardware`), which can move a score by a few rows."""
    trained = [run.record.hardware for run in (a, b)]
    if not all(trained) or trained[0] == trained[1]:
        return []
    return [f"note: the runs trained on different steps: A {'; '.join(trained[0])}; B {'; '.join(trained[1])}"]


def verdict(result: McNemarResult) -> str:
    gap = abs(result.acc_a - result.acc_b)
    if result.only_a + result.only_b == 0:
        return "A and B are right on exactly the same rows: no difference at all."
    if not result.significant:
        return f"not significant at {ALPHA} (p = {result.p_value:.3g}): the gap of {gap:.5f} is likely noise."
    winner, loser = ("A", "B") if result.only_a > result.only_b else ("B", "A")
    return f"significant at {ALPHA} (p = {result.p_value:.3g}): {winner} really beats {loser}, by {gap:.5f}."


def extra_set_lines(
    competition: str, a: Run, b: Run, data_dir: str | None, group: str | None = None, first: str = ""
) -> list[str]:
    """The same test on each extra set both runs predicted and did not train on (Kannada: Dig-MNIST and its
    picking and reporting halves; the holdout when both held out the same rows), whose labels come from the
    competition's files, the set named `first` first. Each run's submitted ensemble, or with `group` its fold
    models, its full-data models or all its models."""
    spec = get_spec(competition)
    names = [name for name in spec.extra_sets if a.has_array(name) and b.has_array(name)]
    if not names and not (a.has_array(HOLDOUT_SET) and b.has_array(HOLDOUT_SET)):
        return []
    try:
        data = shared_sets([a, b], load_dataset(spec, data_dir))
    except UserError as error:  # OOF needs no data files; the extra sets' labels do
        return [f"note: extra sets not compared: {error} (give --data-dir)"]
    arrays = [
        {name: run.group_array(name, group) if group else run.array(name) for name in data.extras} for run in (a, b)
    ]
    sets = [data.scored_sets(predicted) for predicted in arrays]
    lines = [f"extra sets: each run's {group} models (ensemble {group})"] if group else []
    for name, (labels, probabilities) in sorted(sets[0].items(), key=lambda item: item[0] != first):
        result = mcnemar(probabilities.argmax(axis=1) == labels, sets[1][name][1].argmax(axis=1) == labels)
        lines.append(
            f"{name}: A {result.acc_a:.5f}, B {result.acc_b:.5f}; only A right on {result.only_a}, only B on "
            f"{result.only_b}; {verdict(result)}"
        )
    return lines


def judged_lines(a: Run, b: Run) -> tuple[str, list[str]]:
    """The signal that judges both runs' submitted models ('' when they differ), and lines saying what each run
    submits and its own score."""
    metrics = [run.metrics() for run in (a, b)]
    signals = {m.submitted.signal for m in metrics}
    width = max(len(a.run_id), len(b.run_id))
    lines = [
        f"{tag}  {run.run_id:<{width}}  submits {run.submitted_text(m)}"
        for tag, run, m in (("A", a, metrics[0]), ("B", b, metrics[1]))
    ]
    signal = signals.pop() if len(signals) == 1 else ""
    if signal:
        judged = metrics[0].submitted.judged_by
        lines.insert(0, f"judged on {judged}, the signal of both runs' submitted models (its test comes first)")
    else:
        lines.insert(0, "no one signal judges both runs' submitted models: the tests below are set by set")
    return signal, lines


def oof_lines(a: Run, b: Run) -> list[str]:
    """McNemar's test on the train rows both runs scored out of fold."""
    aligned = aligned_oof([a, b])
    correct = [p.argmax(axis=1) == aligned.labels for p in aligned.probabilities]
    result = mcnemar(correct[0], correct[1])
    width = max(len(a.run_id), len(b.run_id))
    lines = [
        f"OOF: {tag}  {run.run_id:<{width}}  accuracy {acc:.5f}  (95% CI {ci[0]:.5f}-{ci[1]:.5f})"
        for tag, run, acc, ci in [("A", a, result.acc_a, result.ci_a), ("B", b, result.acc_b, result.ci_b)]
    ]
    lines.append(f"on {result.n} train rows both scored: only A right on {result.only_a}, only B on {result.only_b}")
    lines.append(f"McNemar's exact test: {verdict(result)}")
    return lines + [f"note: {note}" for note in fold_notes(aligned, ("A", "B"))]


def compare_pair(
    root: Path, competition: str, run_a: str, run_b: str, data_dir: str | None = None, group: str | None = None
) -> str:
    """Whether run A really beats run B: what each submits and its own score, then McNemar's test on the signal
    that judges both first, then on the other sets: OOF on the train rows both scored, and every extra set both
    predicted (by each run's submitted ensemble, or with `group` by that group of its models: `folds`, `full` or
    `all`)."""
    a, b = find_run(root, competition, run_a), find_run(root, competition, run_b)
    if a.run_id == b.run_id:
        raise UserError(f"both names point to run {a.run_id}: give two different runs")
    unscored = ": it has no scores yet"
    a, b = a.require_finished(unscored), b.require_finished(unscored)
    signal, header = judged_lines(a, b)
    extra = extra_set_lines(competition, a, b, data_dir, group, first=signal)
    if not has_oof([a, b]):
        return "\n".join(header + without_oof(a, b, extra) + data_files_note(a, b) + hardware_note(a, b))
    oof = oof_lines(a, b)
    tests = extra + oof if extra and signal not in ("", OOF) else oof + extra
    return "\n".join(header + tests + data_files_note(a, b) + hardware_note(a, b))


def without_oof(a: Run, b: Run, extra: list[str]) -> list[str]:
    """Runs without fold models have no OOF: the test runs on the holdout and the extra sets both predicted."""
    lacking = [f"{tag} ({run.run_id})" for tag, run in (("A", a), ("B", b)) if not run.has_array(OOF)]
    if not extra:
        raise UserError(
            f"{' and '.join(lacking)}: no OOF (no fold models), and no holdout or extra set that both runs predicted"
        )
    return [
        f"{' and '.join(lacking)} without OOF (no fold models): compared on the holdout and extra sets only",
        *extra,
    ]
