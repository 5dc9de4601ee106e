"""What the submit tests share: fake run folders, and the fixtures that keep Kaggle (the package and the
credentials) out of reach."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.run_fakes import fake_metrics

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
    (folder / "run.json").write_text(json.dumps({"run_id": run_id, "status": status, "finished": finished}))
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
