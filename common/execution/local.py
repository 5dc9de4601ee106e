"""The local executor: units trained one after another in this process, yielded as each finishes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from common.data.files import Dataset
from common.data.trainset import TrainSet
from common.ground.config import Config
from common.runs.units import UnitKey, UnitOutput

log = logging.getLogger("digits")


def train_here(
    cfg: Config, todo: list[UnitKey], data: Dataset, train: TrainSet, folder: Path | None = None
) -> Iterator[tuple[UnitKey, UnitOutput]]:
    """Each unit of `todo` in order (`stack` of them at a time in one program), with an epoch progress bar; the
    caller saves and logs what it yields. `folder`: the run's, for what a unit writes while it trains
    (tensorboard=true)."""
    from tqdm.keras import TqdmCallback  # imports Keras: after the checks that need none

    from common.training.backend import setup_hardware
    from common.training.unit import fit_units, stack_groups, unit_config

    hardware = setup_hardware(cfg)
    stacks = f", {cfg.stack} at a time in one program (stack)" if cfg.stack > 1 else ""
    log.info("training %d unit(s) here%s, on %s", len(todo), stacks, hardware.description)
    for group in stack_groups(cfg, todo):
        epochs = unit_config(cfg, group[0]).epochs
        names = group[0].name if len(group) == 1 else f"{group[0].name}..{group[-1].name}"
        progress = TqdmCallback(epochs=epochs, verbose=0, leave=False, desc=f"unit {names}")
        try:
            yield from zip(group, fit_units(cfg, group, train, data, hardware, progress, folder), strict=True)
        finally:  # a unit stopped (Ctrl-C) clears its bar too, before the line that says how to continue
            progress.on_train_end()
