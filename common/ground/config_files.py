"""Reading a run's configuration: YAML files in configs/ and typed key=value overrides, layered into a Config.

Resolution order: configs/<competition>.yaml, then configs/presets/<preset>.yaml, then --config FILE,
then command-line overrides. Unknown keys and values of the wrong type raise UserError.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import yaml

from common.ground.config import Config, TransductiveConfig
from common.ground.errors import UserError
from common.ground.paths import PROJECT_ROOT
from common.ground.spec import COMPETITIONS

CONFIG_DIR = PROJECT_ROOT / "configs"

FIELD_TYPES = typing.get_type_hints(Config)
TRANSDUCTIVE_TYPES = typing.get_type_hints(TransductiveConfig)


def coerce(key: str, value: Any, source: str, types: dict[str, type] = FIELD_TYPES) -> Any:
    """`value` as the field's type; strings (from the command line) are parsed as YAML scalars first."""
    if key not in types:
        raise UserError(f"{source}: unknown config key {key!r} (known: {', '.join(types)})")
    wanted, typed = types[key], value
    if isinstance(value, str) and wanted is not str:
        typed = yaml.safe_load(value)
    if typed is None:  # `lr=` on the command line, `lr:` in a file
        raise UserError(f"{source}: {key} needs a value{example(key, '=' if isinstance(value, str) else ': ')}")
    value = typed
    if isinstance(value, str) and wanted is float:
        value = _float_or_same(value)  # YAML 1.1 reads "1e-3" as a string
    if wanted is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not wanted:
        raise UserError(f"{source}: {key} must be {wanted.__name__}, got {value!r}")
    return value


DEFAULTS = {f.name: f.default for f in dataclasses.fields(Config)}


def example(key: str, sign: str) -> str:
    """' (e.g. lr=0.003)': a value `key` takes, its default (true for a switch); '' when there is none to show."""
    value = DEFAULTS.get(key, dataclasses.MISSING)
    if value is dataclasses.MISSING or value == "":
        return ""
    shown = "true" if isinstance(value, bool) else value
    return f" (e.g. {key}{sign}{shown})"


def _float_or_same(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def read_yaml(path: Path, types: dict[str, type] = FIELD_TYPES) -> dict[str, Any]:
    return {key: coerce(str(key), value, str(path), types) for key, value in read_mapping(path).items()}


def read_mapping(path: Path) -> dict[str, Any]:
    """A YAML file's top-level mapping, untyped; UserError when it is missing, invalid or not a mapping."""
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"{path}: invalid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of key: value")
    return data


def read_layer(path: Path, competition: str | None) -> dict[str, Any]:
    """A preset or --config file: its keys, then those of the section named after `competition`, which win
    (`kannada: {epochs: 16}`: the competitions need different values for the same budget). Other competitions'
    sections are skipped; `competition` None skips them all."""
    data = read_mapping(path)
    sections = {name: data.pop(name) for name in COMPETITIONS if name in data}
    for name, section in sections.items():
        if not isinstance(section, dict):
            raise UserError(f"{path}: {name}: expected a mapping of key: value for that competition")
    chosen = sections.get(competition) or {}
    where = f"{path} ({competition})"
    return {key: coerce(str(key), value, str(path), FIELD_TYPES) for key, value in data.items()} | {
        key: coerce(str(key), value, where, FIELD_TYPES) for key, value in chosen.items()
    }


def available_presets() -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / "presets").glob("*.yaml"))


def parse_overrides(
    pairs: list[str], types: dict[str, type] = FIELD_TYPES, source: str = "command line"
) -> dict[str, Any]:
    """`key=value` strings as a dict of typed values (the run config's keys, or `types`')."""
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UserError(f"override {pair!r}: expected key=value")
        values[key] = coerce(key, value, source, types)
    return values


def user_layers(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] = (),
    competition: str | None = None,
) -> list[dict[str, Any]]:
    """What the user chose, in order of precedence: the preset, --config, key=value overrides (a file's section
    for `competition` included)."""
    layers = []
    if preset:
        preset_file = CONFIG_DIR / "presets" / f"{preset}.yaml"
        if not preset_file.is_file():
            raise UserError(f"unknown preset {preset!r}: expected one of {', '.join(available_presets())}")
        layers.append(read_layer(preset_file, competition))
    if config_file:
        layers.append(read_layer(Path(config_file), competition))
    return [*layers, parse_overrides(list(overrides))]


def load_config(
    competition: str,
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] = (),
    fixed: dict[str, Any] | None = None,
) -> tuple[Config, str]:
    """The resolved config (the competition's defaults, then the user's layers) and a short label for it (the
    preset's name, or 'default'). `fixed` (a study's fixed keys) goes just below the command line's overrides."""
    values = read_yaml(CONFIG_DIR / f"{competition}.yaml")
    *files, command_line = user_layers(preset, config_file, overrides, competition)
    for layer in [*files, fixed or {}, command_line]:
        values |= layer
    return Config(**values), preset or "default"


def load_transductive(overrides: dict[str, Any] | None = None, source: str = "transductive") -> TransductiveConfig:
    """configs/transductive.yaml with `overrides` (values or command-line strings, typed like the file's)."""
    values = read_yaml(CONFIG_DIR / "transductive.yaml", TRANSDUCTIVE_TYPES)
    for key, value in (overrides or {}).items():
        values[key] = coerce(key, value, source, TRANSDUCTIVE_TYPES)
    return TransductiveConfig(**values)


def chosen_keys(config_file: str | Path | None, overrides: list[str], competition: str | None = None) -> set[str]:
    """The keys the user set by hand (--config, with its section for `competition`, and key=value). The
    competition's defaults and the presets serve their own models, so a key of theirs that another chosen model
    ignores is no mistake."""
    return {key for layer in user_layers(None, config_file, overrides, competition) for key in layer}
