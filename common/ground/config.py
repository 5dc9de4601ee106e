"""Run configuration: YAML files in configs/ loaded into a frozen dataclass, plus typed key=value overrides.

Resolution order: configs/<competition>.yaml, then configs/presets/<preset>.yaml, then --config FILE,
then command-line overrides. Unknown keys and values of the wrong type raise UserError.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from common.ground.errors import UserError
from common.ground.paths import PROJECT_ROOT

DISTORTIONS = (
    "elastic",
    "grid",
)  # per-image albumentations transforms with no batched form (common/training/batches.py)
CONFIG_DIR = PROJECT_ROOT / "configs"


@dataclass(frozen=True)
class Config:
    # Cross-validation and ensembling
    folds: int = 5
    seeds: int = 1  # models per fold, each with its own seed; OOF averages over seeds
    seed: int = 42  # folds and unit seeds derive from it, so runs line up row by row
    max_train_rows: int = 0  # 0 = all; a stratified subset otherwise (smoke runs)
    holdout: float = 0.0  # share of train.csv kept out of training and scored by the fold ensemble (train_holdout)
    extra_train: str = ""  # an extra labelled set (kannada: dig_mnist) trained on too, folded like train.csv
    # Pseudo-labelling: a second round that also trains on another run's confident test predictions
    pseudo_from: str = ""  # COMPETITION/RUN or a run folder with the same folds; stored resolved to its path
    pseudo_threshold: float = 0.99  # a test image joins training when its predicted class has this probability
    # Model
    model: str = "deotte"
    dropout: float = 0.4
    width: int = 32  # channels of the first block; later blocks double it
    # Optimisation
    epochs: int = 15
    batch_size: int = 128
    lr: float = 3e-3  # peak learning rate
    schedule: str = "onecycle"  # onecycle (warm up, then cosine down) | exponential (lr * decay ** epoch)
    warmup_fraction: float = 0.2  # onecycle: share of steps spent warming up
    lr_decay: float = 0.95  # exponential: factor per epoch (Chris Deotte's 0.95)
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    ema: float = 0.0  # momentum of an exponential moving average of the weights (Keras use_ema); 0 = off
    early_stopping: int = 0  # patience in epochs on the fold's val_loss; 0 = off
    # Augmentation: the affine family inside the training step (common/training/augment.py), drawn as A.Affine draws
    aug_probability: float = 1.0
    rotate: float = 10.0  # degrees, +-
    scale: float = 0.1  # +- fraction
    shift: float = 0.1  # +- fraction of the image size
    shear: float = 0.0  # degrees, +-
    distort: str = ""  # per-image distortions on top of the affine, comma-separated: elastic, grid (albumentations)
    tta: int = 0  # test-time augmentation: predictions averaged over the image and this many 1-pixel shifts (0-8)
    # Transfer (common/training/transfer.py): start every unit from another run's weights
    init_from: str = ""  # COMPETITION/RUN (id, prefix or latest) or a run folder; stored resolved to its path
    freeze_convs: bool = False  # with init_from: conv layers stay fixed, a fresh classifier is trained
    # Hardware
    threads: int = 0  # intra-op threads per unit; 0 = this machine's cores, stored resolved when a run starts, so a
    # unit trains alike wherever it runs (resumed, merged, on a Dask worker that shares cores)
    device: str = "auto"  # auto | cpu | gpu (gpu: refused when the backend sees none)
    mixed_precision: str = "auto"  # auto (float32, best on an H200 too) | on | off | bfloat16 | float16
    xla: str = "auto"  # auto | on | off: jit_compile (auto: always on JAX, on GPUs on TensorFlow)
    deterministic: bool = False  # the backend's deterministic ops: repeatable to the bit, slower
    save_models: bool = True  # model.keras per unit (needed to predict new images later)
    # Keras' TensorBoard logs per unit, in units/f<K>-s<S>/tensorboard/ (units trained here, not on a Dask cluster);
    # the callback writes with TensorFlow: refused on another backend before a run folder exists
    tensorboard: bool = False

    def __post_init__(self) -> None:
        positive = ["folds", "seeds", "epochs", "batch_size", "width"]
        for name in positive:
            if getattr(self, name) < 1:
                raise UserError(f"config: {name} must be a positive integer, got {getattr(self, name)}")
        if self.folds < 2:
            raise UserError(f"config: folds must be at least 2, got {self.folds}")
        choices = [
            ("mixed_precision", ("auto", "on", "off", "bfloat16", "float16")),
            ("xla", ("auto", "on", "off")),
            ("device", ("auto", "cpu", "gpu")),
        ]
        for name, allowed in [*choices, ("schedule", ("onecycle", "exponential"))]:
            if getattr(self, name) not in allowed:
                raise UserError(f"config: {name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        fractions = ("dropout", "label_smoothing", "warmup_fraction", "ema")
        if not all(0 <= getattr(self, name) < 1 for name in fractions):
            raise UserError(f"config: {', '.join(fractions)} must be in [0, 1)")
        if self.ema and self.early_stopping:  # Keras puts the best raw weights back after averaging them in
            raise UserError("config: ema and early_stopping cannot go together (the best epoch's raw weights win)")
        if not 0 <= self.aug_probability <= 1:  # albumentations would refuse it only once training starts
            raise UserError(f"config: aug_probability must be in [0, 1], got {self.aug_probability}")
        if not 0 <= self.holdout < 1 or not 0 < self.pseudo_threshold <= 1:
            raise UserError("config: holdout must be in [0, 1) and pseudo_threshold in (0, 1]")
        if self.threads < 0:
            raise UserError(f"config: threads must be 0 (this machine's cores) or positive, got {self.threads}")
        if not 0 <= self.tta <= 8:
            raise UserError(f"config: tta must be between 0 and 8 (one-pixel shifts), got {self.tta}")
        unknown = sorted(set(self.distortions) - set(DISTORTIONS))
        if unknown:
            raise UserError(f"config: distort {unknown[0]!r} is unknown (expected any of {', '.join(DISTORTIONS)})")
        if not 0 <= self.seed < 2**31:  # numpy and scikit-learn take seeds below 2**32; unit seeds add to it
            raise UserError(f"config: seed must be between 0 and {2**31 - 1}, got {self.seed}")

    @property
    def distortions(self) -> list[str]:
        return [name.strip() for name in self.distort.split(",") if name.strip()]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TransductiveConfig:
    """The Kaggle notebook's transductive round (`kernel --transductive`); its values live in
    configs/transductive.yaml, with what they were measured to reach."""

    threshold: float  # a hidden test image joins the round when the ensemble gives its answer this probability
    epochs: int  # fine-tuning epochs per model and round
    rounds: int  # each round chooses the sure images again, with the ensemble the last round fine-tuned
    train_rows: int  # rows of train.csv mixed in, so the models keep what they learnt
    lr: float
    batch_size: int
    max_minutes: float  # a model the round has not reached by then keeps its previous answer

    def __post_init__(self) -> None:
        if not 0 <= self.threshold <= 1:
            raise UserError(f"transductive: threshold must be in [0, 1], got {self.threshold}")
        for name in ("epochs", "rounds", "train_rows", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"transductive: {name} must be a positive integer, got {getattr(self, name)}")
        if self.lr <= 0 or self.max_minutes < 0:
            raise UserError("transductive: lr must be positive and max_minutes at least 0")


FIELD_TYPES = typing.get_type_hints(Config)
TRANSDUCTIVE_TYPES = typing.get_type_hints(TransductiveConfig)


def coerce(key: str, value: Any, source: str, types: dict[str, type] = FIELD_TYPES) -> Any:
    """`value` as the field's type; strings (from the command line) are parsed as YAML scalars first."""
    if key not in types:
        raise UserError(f"{source}: unknown config key {key!r} (known: {', '.join(types)})")
    wanted = types[key]
    if isinstance(value, str) and wanted is not str:
        value = yaml.safe_load(value)
    if isinstance(value, str) and wanted is float:
        value = _float_or_same(value)  # YAML 1.1 reads "1e-3" as a string
    if wanted is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not wanted:
        raise UserError(f"{source}: {key} must be {wanted.__name__}, got {value!r}")
    return value


def _float_or_same(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def read_yaml(path: Path, types: dict[str, type] = FIELD_TYPES) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"{path}: invalid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of key: value")
    return {key: coerce(str(key), value, str(path), types) for key, value in data.items()}


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
    preset: str | None = None, config_file: str | Path | None = None, overrides: list[str] = ()
) -> list[dict[str, Any]]:
    """What the user chose, in order of precedence: the preset, --config, key=value overrides."""
    layers = []
    if preset:
        preset_file = CONFIG_DIR / "presets" / f"{preset}.yaml"
        if not preset_file.is_file():
            raise UserError(f"unknown preset {preset!r}: expected one of {', '.join(available_presets())}")
        layers.append(read_yaml(preset_file))
    if config_file:
        layers.append(read_yaml(Path(config_file)))
    return [*layers, parse_overrides(list(overrides))]


def load_config(
    competition: str, preset: str | None = None, config_file: str | Path | None = None, overrides: list[str] = ()
) -> tuple[Config, str]:
    """The resolved config (the competition's defaults, then the user's layers) and a short label for it (the
    preset's name, or 'default')."""
    values = read_yaml(CONFIG_DIR / f"{competition}.yaml")
    for layer in user_layers(preset, config_file, overrides):
        values |= layer
    return Config(**values), preset or "default"


def load_transductive(overrides: dict[str, Any] | None = None, source: str = "transductive") -> TransductiveConfig:
    """configs/transductive.yaml with `overrides` (values or command-line strings, typed like the file's)."""
    values = read_yaml(CONFIG_DIR / "transductive.yaml", TRANSDUCTIVE_TYPES)
    for key, value in (overrides or {}).items():
        values[key] = coerce(key, value, source, TRANSDUCTIVE_TYPES)
    return TransductiveConfig(**values)


def chosen_keys(config_file: str | Path | None, overrides: list[str]) -> set[str]:
    """The keys the user set by hand (--config, key=value). The competition's defaults and the presets serve
    their own models, so a key of theirs that another chosen model ignores is no mistake."""
    return {key for layer in user_layers(None, config_file, overrides) for key in layer}
