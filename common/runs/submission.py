"""Checking a prediction against sample_submission.csv and writing it in the exact Kaggle format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from common import runs
from common.data.files import Dataset
from common.ground.atomic import atomic_write_bytes
from common.ground.errors import UserError
from common.ground.spec import N_CLASSES, CompetitionSpec


def build_submission(
    spec: CompetitionSpec, sample: pd.DataFrame, test_ids: np.ndarray, labels: np.ndarray
) -> pd.DataFrame:
    """Predicted labels in the sample submission's row order and column names."""
    id_column, label_column = spec.submission_columns
    by_id = pd.Series(labels.astype(np.int64), index=test_ids.astype(np.int64))
    ids = sample[id_column].to_numpy(np.int64)
    return pd.DataFrame({id_column: ids, label_column: by_id.reindex(ids).to_numpy()})


def check_submission(spec: CompetitionSpec, sample: pd.DataFrame, submission: pd.DataFrame, where: str) -> None:
    """Header, row count, ids (same order as the sample) and labels 0-9; raises UserError otherwise."""
    expected = list(sample.columns)
    if list(submission.columns) != expected:
        raise UserError(f"{where}: header is {','.join(map(str, submission.columns))}, expected {','.join(expected)}")
    if len(submission) != len(sample):
        raise UserError(f"{where}: {len(submission)} rows, expected {len(sample)} as in {spec.sample_file}")
    id_column, label_column = expected
    mismatch = np.flatnonzero(submission[id_column].to_numpy() != sample[id_column].to_numpy())
    if len(mismatch):
        row = mismatch[0]
        raise UserError(
            f"{where}: line {row + 2}: id {submission[id_column].iloc[row]}, expected {sample[id_column].iloc[row]}"
        )
    labels = pd.to_numeric(submission[label_column], errors="coerce")
    bad = np.flatnonzero(~labels.isin(range(N_CLASSES)).to_numpy())
    if len(bad):
        row = bad[0]
        raise UserError(f"{where}: line {row + 2}: label {submission[label_column].tolist()[row]!r} is not a digit 0-9")


def write_submission(submission: pd.DataFrame, path: Path) -> None:
    """Writes atomically (a unique temporary name, then rename): a reader never sees half a file."""
    atomic_write_bytes(path, submission.to_csv(index=False, lineterminator="\n").encode())


def write_run_submission(folder: Path, data: Dataset, test_probabilities: np.ndarray) -> Path:
    """The run's submission.csv, checked against sample_submission (the competition's copy of the latest run's is
    written once the run has finished: common/runs/latest.py)."""
    submission = build_submission(data.spec, data.sample, data.test_ids, test_probabilities.argmax(axis=1))
    path = folder / runs.SUBMISSION_CSV
    check_submission(data.spec, data.sample, submission, str(path))
    write_submission(submission, path)
    return path
