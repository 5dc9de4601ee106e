"""The ensemble's files in a run folder: what a trained run and a blend both leave, written in one place."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common import runs
from common.data.files import Dataset
from common.runs.layout import OOF, PER_CLASS_CSV, TEST, array_name
from common.runs.metrics import per_class_table
from common.runs.record import Metrics
from common.runs.submission import write_run_submission
from common.runs.units import UnitKey, mean_of_units


def write_ensemble_files(
    folder: Path, data: Dataset, arrays: dict[str, np.ndarray], labels: np.ndarray, metrics: Metrics
) -> None:
    """<name>.npy for oof, test and each extra set, metrics.json, per_class.csv (OOF against `labels`; none
    without OOF: a run without fold models), and the checked submission.csv."""
    for name, probabilities in arrays.items():
        runs.save_array(folder / array_name(name), probabilities)
    runs.write_json(folder / runs.METRICS_JSON, metrics.to_dict())
    if OOF in arrays:
        table = per_class_table(labels, arrays[OOF])
        runs.atomic_write_bytes(folder / PER_CLASS_CSV, table.to_csv(index=False).encode())
    write_run_submission(folder, data, arrays[TEST])


def averaged_sets(folder: Path, keys: list[UnitKey], names: list[str], ensemble: str) -> dict[str, np.ndarray]:
    """Each set's probabilities, averaged over the saved units of `keys` that `ensemble` (a Config.ensemble value)
    names."""
    chosen = runs.ensemble_keys(keys, ensemble)
    averaged = {name: mean_of_units(folder, name, chosen) for name in names}
    lacking = [name for name, mean in averaged.items() if mean is None]
    if lacking:  # the pipeline averages complete units only, and every unit predicts every set
        raise ValueError(f"{folder}: no {lacking[0]} predictions of every {ensemble} unit of {keys}")
    return averaged
