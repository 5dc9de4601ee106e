"""The search space of a study: configs/search/<name>.yaml, each key a range or a list of choices, and the keys
every trial fixes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml

from common.ground.config_files import CONFIG_DIR, FIELD_TYPES, coerce
from common.ground.errors import UserError

SEARCH_DIR = CONFIG_DIR / "search"
RANGE_KEYS = {"low", "high", "log", "step"}
UNSEARCHABLE = {"holdout": "every trial must hold out the same rows"}


@dataclass(frozen=True)
class Param:
    """One searched config key: a range (low, high, optional log or step) or a list of choices."""

    key: str
    low: Any = None
    high: Any = None
    log: bool = False
    step: Any = None
    choices: tuple = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.key, list(self.choices))
        if FIELD_TYPES[self.key] is int:
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    @property
    def extremes(self) -> tuple:
        """The values that bound what a trial may get: every choice, or both ends of the range."""
        return self.choices or (self.low, self.high)

    def record(self) -> dict[str, Any]:
        return {name: list(v) if name == "choices" else v for name, v in asdict(self).items() if v not in (None, ())}


@dataclass(frozen=True)
class Space:
    name: str
    path: Path
    params: tuple[Param, ...]
    fixed: dict[str, Any]  # config keys set for every trial (under the command line's key=value)


def space_file(competition: str, choice: str | None) -> Path:
    """--space NAME (configs/search/NAME.yaml) or a path; the competition's own space by default."""
    if choice and (choice.endswith((".yaml", ".yml")) or "/" in choice):
        if not Path(choice).is_file():
            raise UserError(f"--space {choice}: file not found")
        return Path(choice)
    path = SEARCH_DIR / f"{choice or competition}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SEARCH_DIR.glob("*.yaml"))) or "none"
        raise UserError(f"unknown search space {choice or competition!r}: expected one of {known}, or a YAML file")
    return path


def read_space(path: Path) -> Space:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise UserError(f"{path}: invalid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config key: {{low, high}} or {{choices}}")
    fixed = data.pop("fixed", None) or {}
    if not isinstance(fixed, dict):
        raise UserError(f"{path}: fixed: expected a mapping of config key: value")
    fixed = {str(key): coerce(str(key), value, f"{path}: fixed") for key, value in fixed.items()}
    params = tuple(parse_param(str(key), entry, str(path)) for key, entry in data.items())
    if not params:
        raise UserError(f"{path}: no config key to search")
    both = sorted(set(fixed) & {param.key for param in params})
    if both:
        raise UserError(f"{path}: {both[0]} is both fixed and searched")
    return Space(path.stem, path, params, fixed)


def parse_param(key: str, entry: Any, source: str) -> Param:
    if key not in FIELD_TYPES:
        raise UserError(f"{source}: unknown config key {key!r} (known: {', '.join(FIELD_TYPES)})")
    if key in UNSEARCHABLE:
        raise UserError(f"{source}: {key} cannot be searched: {UNSEARCHABLE[key]}")
    if isinstance(entry, dict) and set(entry) == {"choices"}:
        return parse_choices(key, entry["choices"], source)
    if isinstance(entry, dict) and {"low", "high"} <= set(entry) <= RANGE_KEYS:
        return parse_range(key, entry, source)
    raise UserError(f"{source}: {key}: expected {{low: A, high: B}} (log: true or step: S) or {{choices: [...]}}")


def parse_choices(key: str, choices: Any, source: str) -> Param:
    if not isinstance(choices, list) or not choices:
        raise UserError(f"{source}: {key}: choices must be a non-empty list")
    values = tuple(coerce(key, value, f"{source}: {key}") for value in choices)
    if len(set(values)) < len(values):
        raise UserError(f"{source}: {key}: a choice is repeated in {list(values)}")
    return Param(key, choices=values)


def parse_range(key: str, entry: dict[str, Any], source: str) -> Param:
    wanted = FIELD_TYPES[key]
    if wanted not in (int, float):
        raise UserError(f"{source}: {key} is a {wanted.__name__}: give choices, not a range")
    low, high = (coerce(key, entry[end], f"{source}: {key}.{end}") for end in ("low", "high"))
    log, step = entry.get("log", False), entry.get("step")
    step = None if step is None else coerce(key, step, f"{source}: {key}.step")
    if not isinstance(log, bool):
        raise UserError(f"{source}: {key}.log must be true or false, got {log!r}")
    if low >= high:
        raise UserError(f"{source}: {key}: low {low} must be below high {high}")
    if log and low <= 0:
        raise UserError(f"{source}: {key}: a log range needs low > 0, got {low}")
    if step is not None and (log or step <= 0):
        raise UserError(f"{source}: {key}: step must be positive and cannot go with log")
    return Param(key, low, high, log, step)
