"""The names in a run folder: its files, its units' folders and files, and the words run.json records.

    submissions/<competition>/<run_id>/
      run.json  config.yaml  folds.csv  metrics.json  submission.csv  oof.npy  test.npy  <extra set>.npy
      per_class.csv  per_class_<set>.csv  report.html  figures/<name>.png  train.log
      units/f<K>-s<S>/    a model of fold K and seed index S: valid.npy, test.npy, <extra set>.npy,
                          history.csv, model.keras, tensorboard/, unit.json (written last)
      units/all-s<S>/     a model trained on every row (no held-out fold), same files but valid.npy
    submissions/<competition>/submission.csv   the latest run's (common/runs/latest.py)

Every other module names these through the constants and helpers below, so the layout is written down once.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from common.ground.config import ENSEMBLES

# The run folder's own files
RUN_JSON = "run.json"
RUN_FORMAT = 1  # the layout of a run folder, in its run.json: a reader refuses a folder of another format
CONFIG_YAML = "config.yaml"
FOLDS_CSV = "folds.csv"
METRICS_JSON = "metrics.json"
SUBMISSION_CSV = "submission.csv"  # also the competition's, one folder up: a copy of the latest run's
PER_CLASS_CSV = "per_class.csv"  # OOF's; each labelled set's by the submitted models: per_class_name(set)
REPORT_HTML = "report.html"
FIGURES = "figures"
TRAIN_LOG = "train.log"
UNITS = "units"
OOF = "oof"  # the ensemble's arrays are <name>.npy: oof, test, and each extra set's name
TEST = "test"

# A unit folder's own files
UNIT_JSON = "unit.json"
VALID = "valid"  # the unit's held-out fold: valid.npy (its other arrays: test.npy and the extra sets')
HISTORY_CSV = "history.csv"
MODEL_KERAS = "model.keras"
TENSORBOARD = "tensorboard"

TRIAL_PREFIX = "tune-"  # labels of a study's trials: runs like any other, but made for trying things
BLEND_LABEL = "blend"


def array_name(name: str) -> str:
    """The file of an array by its set's name: oof, test, valid or an extra set's."""
    return f"{name}.npy"


def figure_name(name: str) -> str:
    return f"{FIGURES}/{name}.png"


# The report's figures by name (figures/<name>.png); a labelled set's own: set_figure(CONFUSION, set name)
CONFUSION = "confusion"  # OOF's confusion matrix
LEARNING_CURVES = "learning_curves"
WRONG = "wrong"  # the most confidently wrong OOF images


def set_figure(figure: str, set_name: str) -> str:
    """The name of a labelled set's figure (CONFUSION or WRONG) by the submitted models: confusion_dig_mnist."""
    return f"{figure}_{set_name}"


def per_class_name(set_name: str) -> str:
    """The per-class table of a labelled set (an extra set, a judged set's half, the holdout) by the submitted
    models: per_class_<set>.csv."""
    return f"per_class_{set_name}.csv"


class RunStatus(StrEnum):
    """What run.json's `status` says. A study's trial that stopped early is pruned or failed; its folder stays."""

    RUNNING = "running"
    FINISHED = "finished"
    PRUNED = "pruned"
    FAILED = "failed"

    @classmethod
    def decode(cls, value: object) -> RunStatus:
        """The one reading of a recorded status; a missing or unknown one counts as not finished."""
        try:
            return cls(value)
        except ValueError:
            return cls.RUNNING

    @property
    def shown(self) -> str:
        """The word tables print: a run still running (or killed) is 'unfinished'."""
        return "unfinished" if self is RunStatus.RUNNING else self.value


class RunKind(StrEnum):
    """How a run's probabilities came about."""

    TRAINED = "trained"  # its own units, fold x seed
    BLEND = "blend"  # a weighted mean of other runs' probabilities (no units of its own)
    TRIAL = "trial"  # a study's trial (`run.py tune`): trained, made for trying things (common/runs/latest.py)


ENSEMBLE_GROUPS = ENSEMBLES  # a unit's group, and the values of Config.ensemble
FOLD_GROUP, FULL_GROUP, ALL_GROUPS = ENSEMBLE_GROUPS  # fold models, full-data models, both

_UNIT_NAME = re.compile(r"(?:f(?P<fold>\d+)|(?P<all>all))-s(?P<seed>\d+)")


@functools.total_ordering
@dataclass(frozen=True)
class UnitKey:
    """One model of a run: fold `fold` (its held-out rows) and seed index `seed` (0 .. seeds-1, not the random
    seed); `fold` None for a model trained on every row. Ordered fold by fold, full-data models last."""

    fold: int | None
    seed: int

    @property
    def name(self) -> str:
        """Its folder's name under units/: f<K>-s<S>, or all-s<S> for a model trained on every row."""
        return f"{'all' if self.fold is None else f'f{self.fold}'}-s{self.seed}"

    @property
    def holds_out(self) -> bool:
        """Whether it has a held-out fold (and so a valid.npy and an OOF share)."""
        return self.fold is not None

    @property
    def group(self) -> str:
        """`folds` for a fold model, `full` for a model trained on every row: the words of Config.ensemble."""
        return FOLD_GROUP if self.holds_out else FULL_GROUP

    @classmethod
    def parse(cls, name: str) -> UnitKey:
        """The key of a unit folder's name; ValueError for any other name."""
        match = _UNIT_NAME.fullmatch(name)
        if match is None:
            raise ValueError(f"not a unit folder name: {name!r} (expected f<K>-s<S> or all-s<S>)")
        fold = None if match["all"] else int(match["fold"])
        return cls(fold, int(match["seed"]))

    def _order(self) -> tuple[bool, int, int]:
        return (self.fold is None, self.fold or 0, self.seed)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, UnitKey):
            return NotImplemented
        return self._order() < other._order()

    def __str__(self) -> str:
        return self.name


def ensemble_keys(keys: list[UnitKey], ensemble: str) -> list[UnitKey]:
    """The units of `keys` that a run's ensemble averages: its fold models, its full-data models, or all of them
    (`ensemble`: Config.ensemble, or a group's name)."""
    return [key for key in keys if ensemble == ALL_GROUPS or key.group == ensemble]


def unit_dir(folder: Path, key: UnitKey) -> Path:
    return folder / UNITS / key.name


def unit_keys(folder: Path) -> list[UnitKey]:
    """The keys of every unit folder of a run (complete or not), in key order; other entries are ignored."""
    keys = []
    for path in (folder / UNITS).iterdir() if (folder / UNITS).is_dir() else []:
        try:
            keys.append(UnitKey.parse(path.name))
        except ValueError:
            continue
    return sorted(keys)


def unit_files(folder: Path, name: str, fold: int | None = None) -> list[Path]:
    """The file `name` of every unit that has one (of fold `fold` only, when given), in unit order."""
    keys = [key for key in unit_keys(folder) if fold is None or key.fold == fold]
    return [path for key in keys if (path := unit_dir(folder, key) / name).is_file()]
