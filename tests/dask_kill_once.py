"""A dask worker preload (`distributed.worker.preload`) for tests/test_distributed.py: the first unit to start on
any worker kills that worker (SIGKILL, as the kernel's out-of-memory killer would), once per marker file named by
$DIGITS_TEST_KILL_MARKER; Dask then runs the unit again on another worker."""

from __future__ import annotations

import os
import signal
from pathlib import Path

MARKER_ENV = "DIGITS_TEST_KILL_MARKER"


def dask_setup(worker) -> None:
    from common.execution import distributed

    fit_unit = distributed.fit_unit

    def fit_unit_or_die(*args, **kwargs):
        try:
            Path(os.environ[MARKER_ENV]).open("x").close()
        except FileExistsError:
            return fit_unit(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    distributed.fit_unit = fit_unit_or_die
