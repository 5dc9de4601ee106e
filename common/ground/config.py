"""Run configuration: the frozen dataclass a run trains with (`Config`, each key with its group and help text),
the notebook's transductive round (`TransductiveConfig`), and the constants their keys name. Reading them from
YAML files and key=value overrides: common/ground/config_files.py."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from common.ground.errors import UserError

# `distort`'s names: per-image albumentations transforms with no batched form, each as (transform, its arguments);
# common/training/batches.py builds them (black borders, p = 0.5 each).
DISTORTIONS: dict[str, tuple[str, dict[str, float]]] = {
    "elastic": ("ElasticTransform", {"alpha": 8.0, "sigma": 3.0}),
    "grid": ("GridDistortion", {"num_steps": 4, "distort_limit": 0.2}),
}
ENSEMBLES = ("folds", "full", "all")  # Config.ensemble: fold models, full-data models, or both
# `tta`'s views: the image, then these one-pixel (dy, dx) shifts in this order, the cheapest views that keep a
# digit's shape exactly (common/training/augment.py; the notebook's copy is tested against it).
TTA_SHIFTS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))
# The keys --resume may grow (more units; nothing else changes): Config's names, and RunOptions' and run.py's.
GROWABLE = ("seeds", "full_models")


# Field metadata: "help" says what a key does and "group" where docs/configuration.md lists it
# (python -m common.ground.config_doc writes that page from these; tests/test_config_doc.py keeps them in step).
CV = "Cross-validation and ensembling"
PSEUDO = "Pseudo-labelling: a second round that also trains on another run's confident test predictions"
MODEL = "Model"
OPTIM = "Optimisation"
AUGMENT = "Augmentation"
TRANSFER = "Transfer: start every unit from another run's weights"
HARDWARE = "Hardware and precision"
OUTPUT = "What a run keeps"


def setting(default: Any, group: str, what: str) -> Any:
    """A config field with its group and help text (read by the documentation generator)."""
    return field(default=default, metadata={"group": group, "help": what})


@dataclass(frozen=True)
class Config:
    folds: int = setting(
        5,
        CV,
        "Stratified folds; each fold's models predict its held-out rows (OOF). At least 2, or 0 for no fold models"
        " (with full_models: no OOF; the run is then scored on its holdout, when it keeps one, and its extra sets).",
    )
    seeds: int = setting(1, CV, "Models per fold, each with its own seed; OOF averages over a fold's seeds.")
    seed: int = setting(42, CV, "Base seed: folds and unit seeds derive from it, so two runs line up row by row.")
    full_models: int = setting(
        0,
        CV,
        "Models trained on every training row of the run (train.csv minus any holdout, plus an extra_train set),"
        " beside the fold models or instead of them (folds 0); unit folders all-s<S>. They give no OOF.",
    )
    full_epochs: int = setting(0, CV, "Epochs of each full-data model (its own schedule spans them); 0 = epochs.")
    full_width: int = setting(
        0,
        CV,
        "Width of each full-data model (for the models that read width); 0 = width. The fold models that give OOF"
        " can stay narrow and cheap while the models the submission averages are wider.",
    )
    ensemble: str = setting(
        "all",
        CV,
        "The models that test.npy, the submission and the extra sets' scores average: `folds`, `full` (the"
        " full-data models) or `all` (every model the run has). With both kinds, metrics.json scores each choice"
        " on the holdout and extra sets (`extra_accuracy_by_group`).",
    )
    max_train_rows: int = setting(0, CV, "0 = every row of train.csv; otherwise a stratified subset of that many rows.")
    holdout: float = setting(
        0.0,
        CV,
        "Share of train.csv kept out of training altogether (always the same stratified rows) and scored by the"
        " run's ensemble as `train_holdout`: an estimate that no model of the run has seen.",
    )
    extra_train: str = setting(
        "",
        CV,
        "An extra labelled set trained on too (kannada: `dig_mnist`), folded on its own like train.csv and scored"
        " out of fold (`dig_mnist_oof`).",
    )
    pseudo_from: str = setting(
        "",
        PSEUDO,
        "COMPETITION/RUN or a run folder with the very same folds (`--pseudo-from`); fold k also trains on the test"
        " images that run's fold-k models are sure of. Stored resolved to the folder's path.",
    )
    pseudo_threshold: float = setting(
        0.99, PSEUDO, "A test image joins training when its predicted class has at least this probability."
    )
    model: str = setting(
        "deotte",
        MODEL,
        "A model of the registry in common/training/models.py: `deotte` (Chris Deotte's 7-convolution BatchNorm CNN),"
        " `vgg6` (six convolutions in VGG blocks, after a top Kannada-MNIST notebook) or a baseline of the model zoo"
        " (`python run.py zoo COMP` trains them all).",
    )
    dropout: float = setting(0.4, MODEL, "Dropout rate, in [0, 1), for the models that read it.")
    width: int = setting(32, MODEL, "Channels of the first block; later blocks double it (models that read it).")
    epochs: int = setting(15, OPTIM, "Epochs per model.")
    batch_size: int = setting(128, OPTIM, "Images per training step.")
    lr: float = setting(3e-3, OPTIM, "Peak learning rate (AdamW).")
    schedule: str = setting(
        "onecycle", OPTIM, "`onecycle` (warm up, then cosine down to zero) or `exponential` (lr * lr_decay ** epoch)."
    )
    warmup_fraction: float = setting(0.2, OPTIM, "onecycle: share of the steps spent warming up, in [0, 1).")
    lr_decay: float = setting(0.95, OPTIM, "exponential: factor applied to the learning rate after every epoch.")
    weight_decay: float = setting(0.0, OPTIM, "AdamW's decoupled weight decay; 0 = off.")
    label_smoothing: float = setting(0.0, OPTIM, "Label smoothing of the cross-entropy loss, in [0, 1).")
    ema: float = setting(
        0.0,
        OPTIM,
        "Momentum of an exponential moving average of the weights (Keras `use_ema`), whose average is saved;"
        " 0 = off. Not with early_stopping.",
    )
    early_stopping: int = setting(
        0, OPTIM, "Patience in epochs on the held-out fold's val_loss (best weights restored); 0 = off."
    )
    aug_probability: float = setting(
        1.0, AUGMENT, "Share of training images given an affine transform (the others pass unchanged), in [0, 1]."
    )
    rotate: float = setting(10.0, AUGMENT, "Rotation, drawn per image in +- this many degrees.")
    scale: float = setting(0.1, AUGMENT, "Zoom, drawn per image (x and y apart) in 1 +- this fraction.")
    shift: float = setting(0.1, AUGMENT, "Shift, drawn per image in +- this fraction of the image size (whole pixels).")
    shear: float = setting(0.0, AUGMENT, "Shear, drawn per image (x and y apart) in +- this many degrees.")
    distort: str = setting(
        "",
        AUGMENT,
        "Per-image albumentations distortions on top of the affine, comma-separated: "
        + ", ".join(f"`{name}`" for name in DISTORTIONS)
        + " (p = 0.5 each, in worker processes).",
    )
    tta: int = setting(
        0,
        AUGMENT,
        "Test-time augmentation: each prediction averaged over the image and this many one-pixel shifts"
        f" (0-{len(TTA_SHIFTS)}),"
        " for the held-out fold, the test set, extra sets, `predict` and the Kaggle notebook.",
    )
    init_from: str = setting(
        "",
        TRANSFER,
        "COMPETITION/RUN (id, unique prefix or latest) or a run folder (`--init-from`) with the same model, width"
        " and saved models; fold model (k, s) starts from its fold model (k mod folds, s mod seeds), a full-data"
        " model from its full-data model, else from its fold 0 model (the log and run.json say which). Stored"
        " resolved to its path.",
    )
    freeze_convs: bool = setting(
        False, TRANSFER, "With init_from: Conv2D and BatchNorm layers stay fixed and a fresh classifier is trained."
    )
    threads: int = setting(
        0,
        HARDWARE,
        "Intra-op threads per unit; 0 = this machine's cores, stored resolved when a run starts, so a unit trains"
        " alike wherever it runs (resumed, merged, on a Dask worker). Not applied on JAX.",
    )
    device: str = setting("auto", HARDWARE, "`auto`, `cpu` or `gpu` (`gpu` is refused when the backend sees none).")
    mixed_precision: str = setting(
        "auto",
        HARDWARE,
        "`auto`: float32, except on a CPU with bfloat16 (AVX512-BF16 or AMX), where a new run trained here takes"
        " bfloat16 if a short probe times it at least 1.2x faster (cached per machine; the run's config stores the"
        " choice);"
        " `on` (bfloat16 where the device has it, float16 on older GPUs), `off`, `bfloat16` or `float16`."
        " Probabilities stay float32.",
    )
    xla: str = setting(
        "auto", HARDWARE, "`auto`, `on` or `off`: Keras `jit_compile` (auto: on with JAX, on GPUs with TensorFlow)."
    )
    stack: int = setting(
        1,
        HARDWARE,
        "Units trained together in one compiled program, up to this many at a time (fold models with fold models,"
        " full-data models with full-data models): one dispatch steps them all, a lever for small CNNs on a GPU."
        " Each model trains on its own rows, seed and augmentation as when trained alone (the members of a stack"
        " take the smallest member's number of steps per epoch). Units trained here only: not with --scheduler,"
        " early_stopping or tensorboard.",
    )
    deterministic: bool = setting(
        False, HARDWARE, "The backend's deterministic ops: a resumed or repeated run is the same to the bit, slower."
    )
    save_models: bool = setting(True, OUTPUT, "Write each unit's model.keras (needed by predict, kernel, transfer).")
    tensorboard: bool = setting(
        False,
        OUTPUT,
        "Keras TensorBoard logs per unit, in the unit's tensorboard/ folder (units trained here, not on a Dask"
        " cluster). TensorFlow only: refused on another backend before a run folder exists.",
    )

    def __post_init__(self) -> None:
        positive = ["seeds", "epochs", "batch_size", "width", "stack"]
        for name in positive:
            if getattr(self, name) < 1:
                raise UserError(f"config: {name} must be a positive integer, got {getattr(self, name)}")
        self.check_units()
        choices = [
            ("mixed_precision", ("auto", "on", "off", "bfloat16", "float16")),
            ("xla", ("auto", "on", "off")),
            ("device", ("auto", "cpu", "gpu")),
        ]
        for name, allowed in [*choices, ("schedule", ("onecycle", "exponential")), ("ensemble", ENSEMBLES)]:
            if getattr(self, name) not in allowed:
                raise UserError(f"config: {name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("dropout", "label_smoothing", "warmup_fraction", "ema", "holdout"):
            if not 0 <= getattr(self, name) < 1:
                raise UserError(f"config: {name} must be in [0, 1), got {getattr(self, name)}")
        per_unit = [name for name in ("early_stopping", "tensorboard") if getattr(self, name)]
        if self.stack > 1 and per_unit:  # both act on one unit's fit; a stack fits several at once
            raise UserError(f"config: stack {self.stack} trains units together; {per_unit[0]} works unit by unit")
        if self.ema and self.early_stopping:  # Keras puts the best raw weights back after averaging them in
            raise UserError("config: ema and early_stopping cannot go together (the best epoch's raw weights win)")
        if not 0 <= self.aug_probability <= 1:  # albumentations would refuse it only once training starts
            raise UserError(f"config: aug_probability must be in [0, 1], got {self.aug_probability}")
        if not 0 < self.pseudo_threshold <= 1:
            raise UserError(f"config: pseudo_threshold must be in (0, 1], got {self.pseudo_threshold}")
        if self.freeze_convs and not self.init_from:
            raise UserError("config: freeze_convs needs init_from (the run whose convolutional layers to keep)")
        if self.threads < 0:
            raise UserError(f"config: threads must be 0 (this machine's cores) or positive, got {self.threads}")
        if not 0 <= self.tta <= len(TTA_SHIFTS):
            raise UserError(f"config: tta must be between 0 and {len(TTA_SHIFTS)} (one-pixel shifts), got {self.tta}")
        unknown = sorted(set(self.distortions) - set(DISTORTIONS))
        if unknown:
            raise UserError(f"config: distort {unknown[0]!r} is unknown (expected any of {', '.join(DISTORTIONS)})")
        if not 0 <= self.seed < 2**31:  # numpy and scikit-learn take seeds below 2**32; unit seeds add to it
            raise UserError(f"config: seed must be between 0 and {2**31 - 1}, got {self.seed}")

    def check_units(self) -> None:
        """Which models the run trains: folds (0, or at least 2), full-data models, and what the ensemble takes."""
        if self.folds < 0:
            raise UserError(f"config: folds must be a positive integer, got {self.folds}")
        for name in ("full_models", "full_epochs", "full_width"):
            if getattr(self, name) < 0:
                raise UserError(f"config: {name} must be 0 or a positive integer, got {getattr(self, name)}")
        if self.folds == 0 and not self.full_models:
            raise UserError("config: folds must be a positive integer, got 0 (folds 0 needs full_models of 1 or more)")
        if self.folds == 1:
            raise UserError("config: folds must be at least 2, got 1 (or 0 with full_models: no fold models)")
        lacking = dict(zip(ENSEMBLES[:2], (not self.folds, not self.full_models), strict=True))
        if lacking.get(self.ensemble):
            other = {"folds": "full", "full": "folds"}[self.ensemble]  # what such a run can submit instead
            raise UserError(
                f"config: ensemble {self.ensemble} names models this run does not train (set ensemble={other})"
            )
        per_fold = [name for name in ("early_stopping", "pseudo_from") if getattr(self, name)]
        if self.full_models and per_fold:  # full-data models hold no fold out, and these work fold by fold
            fix = "full_models=0" + (" ensemble=folds" if self.ensemble == "full" else "")
            raise UserError(
                f"config: {per_fold[0]} works fold by fold; full-data models (full_models) hold no fold out (add {fix})"
            )

    @property
    def full_data_epochs(self) -> int:
        """The schedule length of a full-data model."""
        return self.full_epochs or self.epochs

    @property
    def full_data_width(self) -> int:
        """The width of a full-data model."""
        return self.full_width or self.width

    @property
    def distortions(self) -> list[str]:
        return [name.strip() for name in self.distort.split(",") if name.strip()]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def explained(what: str) -> Any:
    """A required field (no default: its value comes from a YAML file) with its help text."""
    return field(metadata={"help": what})


@dataclass(frozen=True)
class TransductiveConfig:
    """The Kaggle notebook's transductive round (`kernel --transductive`); its values live in
    configs/transductive.yaml, with what they were measured to reach."""

    threshold: float = explained(
        "A hidden test image joins the round when the ensemble gives its answer this probability."
    )
    epochs: int = explained("Fine-tuning epochs per model and round.")
    rounds: int = explained("Rounds; each chooses the sure images again, with the ensemble the last round fine-tuned.")
    train_rows: int = explained("Random rows of train.csv mixed in, so that the models keep what they learnt.")
    lr: float = explained("Learning rate of the fine-tuning (Adam, cosine to zero).")
    batch_size: int = explained("Images per fine-tuning step.")
    max_minutes: float = explained("A model the round has not reached by then keeps its previous answers.")

    def __post_init__(self) -> None:
        if not 0 <= self.threshold <= 1:
            raise UserError(f"transductive: threshold must be in [0, 1], got {self.threshold}")
        for name in ("epochs", "rounds", "train_rows", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"transductive: {name} must be a positive integer, got {getattr(self, name)}")
        if self.lr <= 0:
            raise UserError(f"transductive: lr must be positive, got {self.lr}")
        if self.max_minutes < 0:
            raise UserError(f"transductive: max_minutes must be 0 or more, got {self.max_minutes}")
