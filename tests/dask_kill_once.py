"""A dask worker preload (`distributed.worker.preload`) for tests/test_distributed.py: the first unit to start on
any worker kills that worker (SIGKILL, as the kernel's out-of-memory killer would), once per marker file named by
$DIGITS_TEST_KILL_MARKER; Dask then runs the unit again on another worker."""

from __future__ import annotations

import os
import signal
from pathlib import Path

MARKER_ENV = "DIGITS_TEST_KILL_MARKER"


def dask_setup(worker) -> None:
    from common.training import unit  # train_unit_task imports fit_units from here when a unit starts

    fit_units = unit.fit_units

    def fit_units_or_die(*args, **kwargs):
        try:
            Path(os.environ[MARKER_ENV]).open("x").close()
        except FileExistsError:
            return fit_units(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    unit.fit_units = fit_units_or_die
