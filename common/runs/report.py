"""Figures and a static report.html for a finished run folder: what a person looks at instead of reading.

figures/confusion.png        the OOF confusion matrix (counts), titled with the OOF accuracy
figures/learning_curves.png  train and held-out loss and accuracy per epoch, one colour per unit
figures/wrong.png            the most confidently wrong OOF images, each titled true, predicted, confidence
report.html                  run facts, metrics, per-class table, resolved config and the figures, the PNGs
                             embedded as base64 data URIs so the one file can be mailed or opened anywhere

The run folder stores no pixels, so the train images (aligned with folds.csv rows) come in as an argument.
Figures are drawn on matplotlib `Figure` objects (the Agg renderer, no pyplot, no display) and every file is
written under a temporary name and renamed.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import ConfusionMatrixDisplay

from common import runs
from common.ground.errors import UserError
from common.ground.spec import N_CLASSES
from common.runs.layout import HISTORY_CSV, OOF, PER_CLASS_CSV, figure_name
from common.runs.metrics import accuracy

DPI = 100
GALLERY_SIZE = 36
GALLERY_COLUMNS = 6
FIGURE_TITLES = {
    "confusion": "OOF confusion matrix",
    "learning_curves": "Learning curves",
    "wrong": "Most confidently wrong OOF predictions",
}
FIGURES = tuple(FIGURE_TITLES)

# ---------------------------------------------------------------------------
# Choosing what to show
# ---------------------------------------------------------------------------


def most_confidently_wrong(labels: np.ndarray, probabilities: np.ndarray, limit: int = GALLERY_SIZE) -> np.ndarray:
    """Row indexes of wrong predictions, the most confident first (ties keep row order); at most `limit`."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    order = np.argsort(-confidence, kind="stable")
    return wrong[order][:limit]


def unit_histories(folder: Path) -> dict[str, pd.DataFrame]:
    """Each unit's history.csv by unit name (f<K>-s<S>), in unit order; units without one are left out."""
    files = runs.unit_files(folder, HISTORY_CSV)
    return {file.parent.name: pd.read_csv(file) for file in files}


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)  # the layout is constrained: "tight" would draw it twice
    return buffer.getvalue()


def confusion_figure(labels: np.ndarray, probabilities: np.ndarray) -> Figure:
    """Counts of true (rows) against predicted (columns) classes, 0-9."""
    figure = Figure(figsize=(7, 6), layout="constrained")
    ax = figure.subplots()
    ConfusionMatrixDisplay.from_predictions(
        labels,
        probabilities.argmax(axis=1),
        labels=list(range(N_CLASSES)),
        ax=ax,
        cmap="Blues",
        colorbar=False,
        values_format="d",
        text_kw={"fontsize": 8},
    )
    ax.set_title(f"OOF confusion matrix: accuracy {accuracy(labels, probabilities):.5f} ({len(labels)} rows)")
    return figure


def validation_legend(histories: dict[str, pd.DataFrame]) -> str:
    """What the validation marks are: a dashed line of dots when some unit scored its fold every epoch (early
    stopping), else one dot per unit, after its last epoch."""
    scored = [history["val_loss"].notna().sum() for history in histories.values() if "val_loss" in history]
    if scored and max(scored) > 1:
        return "validation (held-out fold), dots each epoch"
    return "validation (held-out fold), one dot after the last epoch"


def learning_curves_figure(histories: dict[str, pd.DataFrame], empty_note: str = "") -> Figure:
    """Loss and accuracy per epoch; each unit has one colour, train a solid line and its held-out fold's scores
    dots (joined by a dashed line where there are several); a legend says which is which."""
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    axes = figure.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for unit, history in histories.items():
            (line,) = ax.plot(history["epoch"], history[metric], label=unit)
            if f"val_{metric}" in history:
                ax.plot(history["epoch"], history[f"val_{metric}"], "o--", color=line.get_color(), markersize=3)
        ax.set(title=metric, xlabel="epoch", ylabel=metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if histories:
        styles = [
            Line2D([], [], color="grey", label="train, each epoch"),
            Line2D([], [], color="grey", marker="o", linestyle="--", markersize=3, label=validation_legend(histories)),
        ]
        axes[0].legend(handles=styles, fontsize=8, loc="best")
        columns = 1 + len(histories) // 16
        axes[1].legend(title="unit", fontsize=7, ncols=columns, loc="center left", bbox_to_anchor=(1.02, 0.5))
    else:
        figure.suptitle(empty_note or "no unit of this run has a history.csv")
    return figure


def wrong_gallery_figure(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray) -> Figure:
    """A grid of the most confidently wrong OOF images, each titled true, predicted and confidence."""
    rows = most_confidently_wrong(labels, probabilities)
    n_rows = max(1, -(-len(rows) // GALLERY_COLUMNS))
    figure = Figure(figsize=(1.6 * GALLERY_COLUMNS, 1.8 * n_rows + 0.4), layout="constrained")
    axes = figure.subplots(n_rows, GALLERY_COLUMNS, squeeze=False).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, row in zip(axes, rows, strict=False):
        predicted = int(probabilities[row].argmax())
        ax.imshow(images[row, :, :, 0], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"true {labels[row]} pred {predicted}\n{probabilities[row, predicted]:.3f}", fontsize=9)
    wrong_total = int((probabilities.argmax(axis=1) != labels).sum())
    what = f"{len(rows)} most confidently wrong of {wrong_total}" if wrong_total else "no wrong OOF predictions"
    figure.suptitle(f"OOF errors: {what} (title: true, predicted, confidence)")
    return figure


def write_figures(run: runs.Run, images: np.ndarray, labels: np.ndarray, oof: np.ndarray | None) -> dict[str, bytes]:
    """Draws and writes figures/*.png; returns each PNG's bytes by figure name. Without OOF (a run without fold
    models) there is no confusion matrix or gallery of OOF errors."""
    note = "a blend trains nothing: its sources' reports have their learning curves" if run.is_blend else ""
    figures = {"learning_curves": learning_curves_figure(unit_histories(run.folder), note)}
    if oof is not None:
        figures = {
            "confusion": confusion_figure(labels, oof),
            **figures,
            "wrong": wrong_gallery_figure(images, labels, oof),
        }
    pngs = {name: png_bytes(figure) for name, figure in figures.items()}
    for name, data in pngs.items():
        runs.atomic_write_bytes(run.folder / figure_name(name), data)
    return pngs


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
    return pd.Series(facts, name="").to_frame().to_html(header=False)


def no_oof_note(metrics: runs.Metrics) -> str:
    return (
        f"This run has no OOF predictions (no fold models): it is scored on {metrics.scored_on}, and has no OOF"
        " confusion matrix, per-class table or gallery of OOF errors."
    )


def metrics_frame(metrics: runs.Metrics) -> pd.DataFrame:
    """One row per score: the submitted models' own (on the signal that judges them), the OOF ensemble, each
    extra set (by the fold models, the full-data models and all of them, when a run has both), each fold (with
    seconds), each seed."""
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
    return pd.DataFrame(rows, columns=["", "accuracy", "seconds"])


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
    if frame.empty:
        return "<p>not recorded</p>"
    formatters = {column: number(places) for column, places in decimals.items() if column in frame}
    return frame.to_html(index=False, formatters=formatters, na_rep="")


def figure_html(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<h3>{FIGURE_TITLES[name]}</h3>\n<img alt="{name}" src="data:image/png;base64,{data}">'


def report_html(run: runs.Run, pngs: dict[str, bytes]) -> str:
    """The whole page; every value from the run folder is escaped."""
    metrics = run.require_finished(": it has no scores to report yet").metrics()
    config = run.config_file.read_text()
    oof = f"OOF accuracy {metrics.oof_accuracy:.5f}" if metrics.oof_accuracy is not None else "no OOF accuracy"
    headline = f"<p><b>Submitted: {html.escape(run.submitted_text(metrics))}</b> ({oof})</p>"
    note = "" if run.has_array(OOF) else f"<p>{html.escape(no_oof_note(metrics))}</p>"
    sections = [
        f"<h1>{html.escape(run.run_id)}</h1>",
        headline,
        note,
        "<h2>Run</h2>",
        facts_table(run),
        "<h2>Accuracy</h2>",
        table_html(metrics_frame(metrics), {"accuracy": 5, "seconds": 1}),
        "<h2>Per class (OOF)</h2>",
        table_html(per_class_frame(run.folder, metrics), {"precision": 4, "recall": 4, "f1": 4}),
        "<h2>Figures</h2>",
        *(figure_html(name, png) for name, png in pngs.items()),
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


def write_report(folder: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """Writes figures/*.png and a self-contained report.html into the run folder; returns report.html."""
    run = runs.load_run(folder)
    oof = run.array(OOF) if run.has_array(OOF) else None
    check_alignment(run, images, labels, oof)
    pngs = write_figures(run, images, labels, oof)
    runs.atomic_write_bytes(run.report_file, report_html(run, pngs).encode())
    return run.report_file


def report_images(run: runs.Run, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of a run's folds.csv rows (extra_train rows included), from the competition's files."""
    from common.data.files import load_dataset
    from common.ground.spec import get_spec

    return run.training_images(load_dataset(get_spec(run.competition), data_dir))
