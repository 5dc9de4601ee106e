"""The report's figures, drawn from arrays alone: a confusion matrix, learning curves and a gallery of the most
confidently wrong images. Drawn on matplotlib `Figure` objects (the Agg renderer, no pyplot, no display); common/
runs/report.py chooses what to draw and writes the files."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import ConfusionMatrixDisplay

from common.ground.spec import N_CLASSES
from common.runs.metrics import accuracy

DPI = 100
GALLERY_SIZE = 36
GALLERY_COLUMNS = 6


def most_confidently_wrong(labels: np.ndarray, probabilities: np.ndarray, limit: int = GALLERY_SIZE) -> np.ndarray:
    """Row indexes of wrong predictions, the most confident first (ties keep row order); at most `limit`."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    order = np.argsort(-confidence, kind="stable")
    return wrong[order][:limit]


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)  # the layout is constrained: "tight" would draw it twice
    return buffer.getvalue()


def confusion_figure(labels: np.ndarray, probabilities: np.ndarray, what: str = "OOF") -> Figure:
    """Counts of true (rows) against predicted (columns) classes, 0-9; `what`: whose predictions, for the title
    (a long one on a line of its own)."""
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
    score = f"accuracy {accuracy(labels, probabilities):.5f} ({len(labels)} rows)"
    ax.set_title(f"{what} confusion matrix: {score}" if len(what) < 10 else f"{what}\nconfusion matrix: {score}")
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


def wrong_gallery_figure(
    images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, what: str = "OOF"
) -> Figure:
    """A grid of the most confidently wrong images, each titled true, predicted and confidence; `what`: whose
    predictions, for the title. One axes holds the whole grid as one image (36 axes take seconds to lay out)."""
    rows = most_confidently_wrong(labels, probabilities)
    n_rows = max(1, -(-len(rows) // GALLERY_COLUMNS))
    figure = Figure(figsize=(1.6 * GALLERY_COLUMNS, 1.8 * n_rows + 0.4), layout="constrained")
    ax = figure.subplots()
    ax.axis("off")
    ax.imshow(gallery_grid(images[rows], n_rows), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    for cell, row in enumerate(rows):
        predicted = int(probabilities[row].argmax())
        x, y = (cell % GALLERY_COLUMNS) * CELL_WIDTH + IMAGE_SIZE / 2, (cell // GALLERY_COLUMNS) * CELL_HEIGHT
        title = f"true {labels[row]} pred {predicted}\n{probabilities[row, predicted]:.3f}"
        ax.text(x, y + TITLE_HEIGHT - 2, title, ha="center", va="bottom", fontsize=9)
    wrong_total = int((probabilities.argmax(axis=1) != labels).sum())
    shown = f"{len(rows)} most confidently wrong of {wrong_total}" if wrong_total else "no wrong predictions"
    figure.suptitle(f"{what} errors: {shown}\n(each image titled true, predicted, confidence)")
    return figure


IMAGE_SIZE = 28
CELL_WIDTH, TITLE_HEIGHT = IMAGE_SIZE + 8, 18  # pixels of the grid image: a gap beside each image, a title above
CELL_HEIGHT = IMAGE_SIZE + TITLE_HEIGHT


def gallery_grid(images: np.ndarray, n_rows: int) -> np.ma.MaskedArray:
    """The images laid out GALLERY_COLUMNS to a row, each below room for its title; what is not an image is
    masked (drawn blank)."""
    shape = (n_rows * CELL_HEIGHT, GALLERY_COLUMNS * CELL_WIDTH)
    grid = np.ma.masked_array(np.zeros(shape, np.float32), mask=True)  # zeros: masked_all's are uninitialised
    for cell, image in enumerate(images):
        top, left = (cell // GALLERY_COLUMNS) * CELL_HEIGHT + TITLE_HEIGHT, (cell % GALLERY_COLUMNS) * CELL_WIDTH
        grid[top : top + IMAGE_SIZE, left : left + IMAGE_SIZE] = image.reshape(IMAGE_SIZE, IMAGE_SIZE)
    return grid
