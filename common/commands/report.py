"""`report`: a finished run's figures and report.html drawn again, from its folder and the competition's files.

The writer is common/runs/report.py's `write_report`, the one the pipeline calls when a run finishes; the command
adds what the run folder does not store: the train images of its folds.csv rows and its labelled sets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.data.files import Dataset, load_dataset
from common.ground.spec import get_spec
from common.runs import Run
from common.runs.aligned import shared_sets
from common.runs.report import write_report


def report(run: Run, data_dir: str | None) -> Path:
    """Writes a finished run's figures and report.html again; returns the page."""
    return write_report(run.folder, *report_images(run, data_dir))


def report_images(run: Run, data_dir: str | None) -> tuple[np.ndarray, np.ndarray, Dataset]:
    """The images and labels of a run's folds.csv rows (extra_train rows included), from the competition's files,
    and the labelled sets it was scored on (its holdout among them): what write_report takes."""
    data = load_dataset(get_spec(run.competition), data_dir)
    return *run.training_images(data), shared_sets([run], data)
