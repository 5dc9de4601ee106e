"""`merge`: finalises a run whose units were trained separately (`--fold K --seed S`, here or on other machines)
with the pipeline's own finalise step, once every unit is complete."""

from __future__ import annotations

import time
from pathlib import Path

from common import runs
from common.data.files import load_dataset
from common.data.trainset import prepare_train_set
from common.execution.pipeline import (
    RunOptions,
    check_same_folds,
    describe_units,
    finalise,
    missing_units,
    resume_command,
    run_log,
)
from common.ground.errors import UserError
from common.ground.spec import CompetitionSpec
from common.runs.units import all_units


def merge_run(spec: CompetitionSpec, run_id: str, data_dir: str | None = None, out_root: Path | None = None) -> Path:
    """Finalises a run whose units were trained separately; refuses with the list of missing units."""
    start = time.perf_counter()
    run = runs.find_run(out_root or runs.DEFAULT_ROOT, spec.name, run_id)
    if run.is_blend:
        raise UserError(f"merge {run.run_id}: a blend has no units to merge (it is finished when it is written)")
    cfg = run.cfg
    data, train = prepare_train_set(load_dataset(spec, data_dir), cfg)
    check_same_folds(run.folder, train)
    missing = missing_units(run.folder, cfg)
    if missing:
        raise UserError(
            f"run {run.run_id}: {len(missing)} of {len(all_units(cfg))} units missing: {describe_units(missing)}"
        )
    runs.reopen_run(run.folder, ["merge", spec.name, run_id])
    with run_log(run.folder, resume_command(spec.name, run.folder, RunOptions(data_dir, out_root))):
        finalise(run.folder, cfg, data, train, start)
    return run.folder
