"""What the submit tests share: fake run folders, and the fixtures that keep Kaggle (the package and the
credentials) out of reach; tiny generated copies of a competition's files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.run_fakes import fake_metrics, fake_record

RUN_ID = "20260101-000000-default-abcd"


def make_run(
    root: Path,
    competition: str,
    submission: pd.DataFrame | bytes,
    status: str = "finished",
    *,
    run_id: str = RUN_ID,
    metrics: dict | None = None,
) -> Path:
    """A fake run folder: run.json, config.yaml, metrics.json and submission.csv (no training); it finished at
    its id's time."""
    folder = root / competition / run_id
    folder.mkdir(parents=True)
    finished = pd.Timestamp(run_id[:15]).isoformat() if status == "finished" else ""
    (folder / "run.json").write_text(json.dumps(fake_record(folder, status, finished=finished)))
    (folder / "config.yaml").write_text("folds: 2\n")
    (folder / "metrics.json").write_text(json.dumps(metrics or fake_metrics(0.987654)))
    raw = submission if isinstance(submission, bytes) else submission.to_csv(index=False).encode()
    (folder / "submission.csv").write_bytes(raw)
    return folder


@pytest.fixture
def no_kaggle(monkeypatch):
    """Any `import kaggle` fails: proves a code path never imports (so never authenticates) the package."""
    for name in ["kaggle", "kaggle.api", "kaggle.api.kaggle_api_extended"]:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    """No Kaggle credential anywhere: env vars unset, empty config dir, and a home without ~/.kaggle."""
    for name in ["KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"]:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "kaggle-config").mkdir()
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    monkeypatch.setenv("HOME", str(tmp_path))


def write_competition(folder: Path, competition: str, n_train: int = 200, n_test: int = 40, n_extra: int = 80) -> Path:
    """A tiny copy of a Kaggle competition's CSVs as `kaggle competitions download` leaves them (train.csv,
    test.csv, sample_submission.csv and each extra labelled set, e.g. kannada's Dig-MNIST.csv), made of
    scikit-learn's digits drawn as 28x28 images, so that tiny models learn something in an epoch."""
    from common.data.synthetic import digits_as_mnist
    from common.ground.spec import PIXEL_COLUMNS, get_spec

    spec = get_spec(competition)
    images, labels = digits_as_mnist()
    order = iter(np.split(np.random.default_rng(1).permutation(len(labels)), [n_train, n_train + n_test]))
    train_rows, test_rows = next(order), next(order)

    def pixels(rows: np.ndarray, first: str | None = None, values: np.ndarray | None = None) -> pd.DataFrame:
        frame = pd.DataFrame(images[rows].reshape(len(rows), -1), columns=list(PIXEL_COLUMNS))
        return frame if first is None else frame.assign(**{first: values})[[first, *PIXEL_COLUMNS]]

    ids = spec.first_id + np.arange(n_test)
    files = {
        spec.train_file: pixels(train_rows, spec.label_column, labels[train_rows]),
        spec.test_file: pixels(test_rows, spec.test_id_column, ids) if spec.test_id_column else pixels(test_rows),
        spec.sample_file: pd.DataFrame({spec.submission_columns[0]: ids, spec.submission_columns[1]: 0}),
    }
    rest = next(order)
    for name in spec.extra_sets.values():
        extra, rest = rest[:n_extra], rest[n_extra:]
        files[name] = pixels(extra, spec.label_column, labels[extra])
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in files.items():
        frame.to_csv(folder / name, index=False)
    return folder
