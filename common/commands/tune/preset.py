"""The best trial's keys as a preset: always in the study folder; in configs/presets/ only with --save-preset."""

from __future__ import annotations

import textwrap
from pathlib import Path

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from common import runs
from common.commands.tune.report import SelectionGap
from common.commands.tune.setup import Setup
from common.ground.config import Config
from common.ground.config_files import CONFIG_DIR, read_yaml

PRESETS_DIR = CONFIG_DIR / "presets"


def preset_name(setup: Setup) -> str:
    return f"tune-{setup.name}"


def write_preset(study: optuna.Study, setup: Setup, gap: SelectionGap | None) -> list[Path]:
    """The best trial's keys that differ from configs/<competition>.yaml, as a YAML file in the study folder
    (for --config), and in configs/presets/ (for --preset tune-<study>) when the request says so. The files
    written, the study folder's first; none before a trial completed."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    best = max(complete, key=lambda trial: trial.value)
    defaults = Config(**read_yaml(CONFIG_DIR / f"{setup.spec.name}.yaml")).to_dict()
    chosen = {k: v for k, v in (setup.base.to_dict() | best.params).items() if defaults[k] != v and k != "threads"}
    text = preset_header(setup, best, len(complete), gap, chosen) + yaml.safe_dump(chosen, sort_keys=False)
    file = f"{preset_name(setup)}.yaml"
    paths = [setup.folder / file, *([PRESETS_DIR / file] if setup.request.save_preset else [])]
    for path in paths:
        runs.atomic_write_bytes(path, text.encode())
    return paths


def usage(setup: Setup) -> str:
    """How to train with the preset: --config from the study folder, or --preset once it is saved."""
    competition = setup.spec.name
    if setup.request.save_preset:
        return f"python run.py {competition} --preset {preset_name(setup)}"
    return f"python run.py {competition} --config {setup.folder / preset_name(setup)}.yaml"


def preset_header(setup: Setup, best: FrozenTrial, n: int, gap: SelectionGap | None, chosen: dict) -> str:
    """The preset's comment: what the trial measured, the command that found it, how to use it."""
    measured = "".join(f", {column} {best.user_attrs[name]:.5f}" for name, column in setup.columns.items())
    honest = (
        gap.sentence(setup.picked, setup.reporting)
        if gap
        else "No holdout reported it: the best of several trials flatters by selection."
    )
    lines = [
        f"The best of {n} complete trials of study {setup.name}: trial {best.number}, run {best.user_attrs['run_id']}.",
        f"Measured: {setup.score_column} {best.value:.5f}{measured}.",
        honest,
        f"Written by: {setup.command()}",
        f"The keys that differ from configs/{setup.spec.name}.yaml; use: {usage(setup)}",
    ]
    if chosen.get("holdout"):
        lines.append("holdout keeps rows of train.csv out of training: drop it for a final run on every row.")
    lines[2:3] = textwrap.wrap(honest, 110)  # the commands stay whole, one line each
    return "".join(f"# {line}\n" for line in lines)
