"""Figures and a static report.html for a finished run folder: what a person looks at instead of reading.

figures/confusion.png          the OOF confusion matrix (counts), titled with the OOF accuracy
figures/learning_curves.png    train and held-out loss and accuracy per epoch, one colour per unit
figures/wrong.png              the most confidently wrong OOF images, each titled true, predicted, confidence
figures/confusion_<set>.png    the same two for every labelled set the run predicted (an extra set such as
figures/wrong_<set>.png          Dig-MNIST, a judged set's halves, the holdout), by the submitted models
per_class_<set>.csv            precision, recall, F1 and support per class of each such set
report.html                    run facts, metrics, per-class tables, resolved config and the figures, the PNGs
                               embedded as base64 data URIs so the one file can be mailed or opened anywhere

A run without fold models has no OOF, so no OOF figures or table: its labelled sets are what it shows. The run
folder stores no pixels, so the train images (aligned with folds.csv rows) and the labelled sets come in as
arguments (the pipeline's, at a run's end; common/commands/report.py reads them for `run.py report`). The figures
are drawn in common/runs/figures.py; every file is written under a temporary name and renamed.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common import runs
from common.data.files import Dataset
from common.ground.errors import UserError
from common.runs.figures import confusion_figure, learning_curves_figure, png_bytes, wrong_gallery_figure
from common.runs.layout import (
    CONFUSION,
    HISTORY_CSV,
    LEARNING_CURVES,
    OOF,
    PER_CLASS_CSV,
    WRONG,
    figure_name,
    per_class_name,
    set_figure,
)
from common.runs.metrics import accuracy, per_class_table

FIGURE_TITLES = {
    CONFUSION: "OOF confusion matrix",
    LEARNING_CURVES: "Learning curves",
    WRONG: "Most confidently wrong OOF predictions",
}
FIGURES = tuple(FIGURE_TITLES)  # a run with OOF; each labelled set adds its confusion matrix and gallery


@dataclass(frozen=True)
class LabelledSet:
    """A labelled set the run predicted (an extra set, a judged set's half, the holdout): its images and labels,
    and the probabilities of the run's submitted models (its <set>.npy, the rows of the half)."""

    source: str  # the extra set it is, or is cut from
    images: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray


# ---------------------------------------------------------------------------
# Figures and per-class tables (drawn in common/runs/figures.py)
# ---------------------------------------------------------------------------


def unit_histories(folder: Path) -> dict[str, pd.DataFrame]:
    """Each unit's history.csv by unit name (f<K>-s<S>), in unit order; units without one are left out."""
    files = runs.unit_files(folder, HISTORY_CSV)
    return {file.parent.name: pd.read_csv(file) for file in files}


def write_figures(
    run: runs.Run, images: np.ndarray, labels: np.ndarray, oof: np.ndarray | None, sets: dict[str, LabelledSet]
) -> dict[str, bytes]:
    """Draws and writes figures/*.png; returns each PNG's bytes by figure name. Without OOF (a run without fold
    models) there is no OOF confusion matrix or gallery of OOF errors; every labelled set has its own."""
    note = "a blend trains nothing: its sources' reports have their learning curves" if run.is_blend else ""
    figures = {LEARNING_CURVES: learning_curves_figure(unit_histories(run.folder), note)}
    if oof is not None:
        figures = {
            CONFUSION: confusion_figure(labels, oof),
            **figures,
            WRONG: wrong_gallery_figure(images, labels, oof),
        }
    for name, scored in sets.items():
        what = f"{name} (the submitted models)"
        figures[set_figure(CONFUSION, name)] = confusion_figure(scored.labels, scored.probabilities, what)
        gallery = wrong_gallery_figure(scored.images, scored.labels, scored.probabilities, what)
        figures[set_figure(WRONG, name)] = gallery
    pngs = {name: png_bytes(figure) for name, figure in figures.items()}
    for name, data in pngs.items():
        runs.atomic_write_bytes(run.folder / figure_name(name), data)
    return pngs


def write_set_tables(run: runs.Run, sets: dict[str, LabelledSet]) -> dict[str, pd.DataFrame]:
    """per_class_<set>.csv of every labelled set; returns the tables by set name."""
    tables = {name: per_class_table(scored.labels, scored.probabilities) for name, scored in sets.items()}
    for name, table in tables.items():
        runs.atomic_write_bytes(run.folder / per_class_name(name), table.to_csv(index=False).encode())
    return tables


# ---------------------------------------------------------------------------
# report.html
# ---------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; } img { max-width: 100%; }
"""


def facts_table(run: runs.Run) -> str:
    """Run id, competition, kind, command, status, timings and hardware from run.json (a blend: its sources)."""
    record = run.record
    seconds = record.wall_seconds
    facts = {
        "run id": run.run_id,
        "competition": run.competition,
        "kind": run.kind.value,
        "command": record.command,
        "status": run.status.value,
        "started": record.started,
        "finished": record.finished,
        "wall time": f"{seconds:.0f} s ({seconds / 60:.1f} min)" if seconds is not None else "",
        "hardware": "; ".join(record.hardware),
        "machine": record.machine,
        "git commit": record.git_commit or "",
        "versions": ", ".join(f"{k} {v}" for k, v in record.versions.items()),
    }
    if run.is_blend:
        blend = run.blend
        facts["blend of"] = ", ".join(
            f"{s} (weight {w:.3f})" for s, w in zip(blend.sources, blend.weights, strict=True)
        )
        facts["weights"] = f"fitted on {blend.fitted_on}, scored out of fold" if blend.fitted_on else "as given"
        facts["averages"] = "each class's rank over a set's rows" if blend.rank else "probabilities"
    return pd.Series(facts, name="").to_frame().to_html(header=False)


def no_oof_note(metrics: runs.Metrics) -> str:
    """What a run without OOF says first: it has none, what it is scored on, and what it shows instead."""
    return (
        f"This run has no OOF predictions (no fold models): it is scored on {metrics.scored_on}. So it has no OOF"
        " confusion matrix, per-class table or gallery of OOF errors: each labelled set below shows them for its"
        " submitted models."
    )


def metrics_frame(metrics: runs.Metrics) -> pd.DataFrame:
    """One row per score: the submitted models' own (on the signal that judges them), the OOF ensemble, each
    extra set (by the fold models, the full-data models and all of them, when a run has both), each fold (with
    seconds), each seed, and each full-data model's seconds."""
    submitted = metrics.submitted
    rows = [(f"submitted models ({submitted.judged_by}: ranks the run)", submitted.accuracy, None)]
    rows += [("OOF ensemble", metrics.oof_accuracy, None)] if metrics.oof_accuracy is not None else []
    rows += [(name, acc, None) for name, acc in metrics.oof_extra_accuracy.items()]
    for name, acc in metrics.extra_accuracy.items():
        groups = metrics.extra_accuracy_by_group.get(name, {})
        rows += [(f"{name} (extra set, {g} models)", a, None) for g, a in groups.items()] or [
            (f"{name} (extra set)", acc, None)
        ]
    rows += [(f"fold {f}", m["accuracy"], m.get("seconds")) for f, m in metrics.folds.items()]
    rows += [(f"seed {s} (OOF over folds)", acc, None) for s, acc in metrics.seeds.items()]
    full = {name: unit for name, unit in metrics.units.items() if not runs.UnitKey.parse(name).holds_out}
    rows += [(f"full-data model {name} (holds no rows out)", None, u.get("seconds")) for name, u in full.items()]
    # float columns: a missing value is NaN, which the formatters leave blank (to_html prints a None as "None")
    return pd.DataFrame(rows, columns=["", "accuracy", "seconds"]).astype({"accuracy": float, "seconds": float})


def per_class_frame(folder: Path, metrics: runs.Metrics) -> pd.DataFrame:
    """Precision, recall, F1 and support per class: metrics.json's per_class, else per_class.csv."""
    if metrics.per_class:
        return pd.DataFrame(metrics.per_class)
    path = folder / PER_CLASS_CSV
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def number(decimals: int):
    """A to_html formatter: `decimals` places, blank where there is no value."""
    return lambda x: "" if pd.isna(x) else f"{x:.{decimals}f}"


def table_html(frame: pd.DataFrame, decimals: dict[str, int]) -> str:
    frame = frame.dropna(axis="columns", how="all")  # no seconds column where no row has seconds
    if frame.empty:
        return "<p>not recorded</p>"
    formatters = {column: number(places) for column, places in decimals.items() if column in frame}
    return frame.to_html(index=False, formatters=formatters, na_rep="")


def figure_html(name: str, png: bytes, title: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<h3>{html.escape(title)}</h3>\n<img alt="{name}" src="data:image/png;base64,{data}">'


PER_CLASS_DECIMALS = {"precision": 4, "recall": 4, "f1": 4}


def set_section(name: str, scored: LabelledSet, table: pd.DataFrame, pngs: dict[str, bytes], judges: bool) -> list[str]:
    """A labelled set's section: what it is, its accuracy, per-class table, confusion matrix and gallery of
    errors; `judges`: whether it is the signal that ranks the run."""
    rows = f"{len(scored.labels)} rows" + (f" of {scored.source}" if scored.source != name else "")
    mark = ": the score that ranks the run" if judges else ""
    return [
        f"<h2>{html.escape(name)} (the submitted models)</h2>",
        f"<p>{html.escape(rows)}, accuracy {accuracy(scored.labels, scored.probabilities):.5f}{mark}</p>",
        "<h3>Per class</h3>",
        table_html(table, PER_CLASS_DECIMALS),
        figure_html(set_figure(CONFUSION, name), pngs[set_figure(CONFUSION, name)], "Confusion matrix"),
        figure_html(set_figure(WRONG, name), pngs[set_figure(WRONG, name)], "Most confidently wrong predictions"),
    ]


def report_html(
    run: runs.Run, pngs: dict[str, bytes], sets: dict[str, LabelledSet], tables: dict[str, pd.DataFrame]
) -> str:
    """The whole page; every value from the run folder is escaped."""
    metrics = run.require_finished(": it has no scores to report yet").metrics()
    config = run.config_file.read_text()
    oof = f"OOF accuracy {metrics.oof_accuracy:.5f}" if metrics.oof_accuracy is not None else "no OOF accuracy"
    headline = f"<p><b>Submitted: {html.escape(run.submitted_text(metrics))}</b> ({oof})</p>"
    with_oof = run.has_array(OOF)
    per_class = table_html(per_class_frame(run.folder, metrics), PER_CLASS_DECIMALS)
    judge = metrics.submitted.signal
    sections = [
        f"<h1>{html.escape(run.run_id)}</h1>",
        headline,
        "" if with_oof else f"<p>{html.escape(no_oof_note(metrics))}</p>",
        "<h2>Run</h2>",
        facts_table(run),
        "<h2>Accuracy</h2>",
        table_html(metrics_frame(metrics), {"accuracy": 5, "seconds": 1}),
        *(["<h2>Per class (OOF)</h2>", per_class] if with_oof else []),
        "<h2>Figures</h2>",
        *(figure_html(name, pngs[name], FIGURE_TITLES[name]) for name in FIGURES if name in pngs),
        *(line for name in sets for line in set_section(name, sets[name], tables[name], pngs, name == judge)),
        "<h2>Resolved config</h2>",
        f"<pre>{html.escape(config)}</pre>",
    ]
    title = html.escape(f"{run.folder.parent.name} {run.run_id}")
    head = f'<head><meta charset="utf-8"><title>{title}</title><style>{STYLE}</style></head>'
    body = "\n".join(sections)
    return f"<!DOCTYPE html>\n<html>{head}\n<body>\n{body}\n</body></html>\n"


# ---------------------------------------------------------------------------
# Entry points: after training (pipeline) and `python run.py report`
# ---------------------------------------------------------------------------


def check_alignment(run: runs.Run, images: np.ndarray, labels: np.ndarray, oof: np.ndarray | None) -> None:
    """Images, labels and oof.npy (when the run has one) must follow folds.csv row for row."""
    expected = run.folds()["label"].to_numpy()
    rows = len(expected) if oof is None else len(oof)
    if not (len(images) == len(labels) == rows == len(expected)):
        raise UserError(
            f"{run.folder}: folds.csv has {len(expected)} rows but got {len(images)} images, "
            f"{len(labels)} labels and {rows} oof.npy rows"
        )
    if not np.array_equal(labels, expected):
        row = int(np.flatnonzero(labels != expected)[0])
        raise UserError(f"{run.folds_file}: line {row + 2}: label {expected[row]}, but the images say {labels[row]}")


def labelled_sets(run: runs.Run, data: Dataset | None) -> dict[str, LabelledSet]:
    """Every labelled set of `data` that the run predicted (its <set>.npy), the halves of judged sets too."""
    sets = {}
    for name, (source, rows) in (data.set_rows() if data is not None else {}).items():
        if not run.has_array(source):
            continue
        table, probabilities = data.extras[source], run.array(source)
        if len(probabilities) != len(table.labels):
            raise UserError(
                f"{run.array_file(source)}: {len(probabilities)} rows, but {source} has {len(table.labels)}"
            )
        sets[name] = LabelledSet(source, table.images[rows], table.labels[rows], probabilities[rows])
    return sets


def write_report(folder: Path, images: np.ndarray, labels: np.ndarray, data: Dataset | None = None) -> Path:
    """Writes figures/*.png, each labelled set's per_class_<set>.csv and a self-contained report.html into the
    run folder; returns report.html. `data`: the labelled sets the run was scored on (its extra sets, and the
    holdout), or None for none."""
    run = runs.load_run(folder)
    oof = run.array(OOF) if run.has_array(OOF) else None
    check_alignment(run, images, labels, oof)
    sets = labelled_sets(run, data)
    pngs = write_figures(run, images, labels, oof, sets)
    tables = write_set_tables(run, sets)
    runs.atomic_write_bytes(run.report_file, report_html(run, pngs, sets, tables).encode())
    return run.report_file
