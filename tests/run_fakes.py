"""What tests that write fake run folders share: a run.json and a metrics.json as the pipeline writes them
(common/runs/record.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.runs import OOF, Metrics, RunRecord, RunStatus, Submitted


def fake_metrics(
    oof: float | None = None,
    extra: dict[str, float] | None = None,
    *,
    signal: str = OOF,
    units: tuple[str, ...] = ("f0-s0", "f1-s0"),
    group: str = "all",
    n_train_rows: int = 10,
    **scores: Any,
) -> dict[str, Any]:
    """metrics.json's dict: the submitted models (`units`, of `group`) scored on `signal` (OOF, or a set of
    `extra`); other Metrics fields as keywords."""
    extra = extra or {}
    accuracy = oof if signal == OOF else extra.get(signal)
    submitted = Submitted(group, list(units), signal if accuracy is not None else "", accuracy)
    return Metrics(submitted, n_train_rows, oof_accuracy=oof, extra_accuracy=extra, **scores).to_dict()


def fake_record(folder: Path, status: str = "finished", **fields: Any) -> dict[str, Any]:
    """run.json's dict for the run in `folder` (<root>/<competition>/<date>-<time>-<label>-<suffix>); other
    RunRecord fields as keywords."""
    label = "-".join(folder.name.split("-")[2:-1])
    record = RunRecord(folder.name, folder.parent.name, label=label, status=RunStatus(status), **fields)
    return record.to_dict()
