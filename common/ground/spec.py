"""The declarative description of one competition, and the table of known competitions."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common.ground.errors import UserError

N_PIXELS = 784
IMAGE_SHAPE = (28, 28, 1)
N_CLASSES = 10
PIXEL_COLUMNS = tuple(f"pixel{i}" for i in range(N_PIXELS))

# Name on the command line -> package holding its SPEC.
COMPETITIONS = ("kannada", "mnist", "digits")


@dataclass(frozen=True)
class CompetitionSpec:
    """What a competition's files look like; no behaviour lives here."""

    name: str
    slug: str  # `kaggle competitions download -c SLUG`
    train_file: str = "train.csv"
    test_file: str = "test.csv"
    sample_file: str = "sample_submission.csv"
    label_column: str = "label"
    test_id_column: str | None = None  # None: ids are implicit, first_id + row number
    first_id: int = 0
    submission_columns: tuple[str, str] = ("id", "label")
    # Extra labelled sets scored with the ensemble (not trained on): report name -> file.
    extra_sets: dict[str, str] = field(default_factory=dict)
    # Extra sets split once (fixed seed, by label) into <name>_pick, a half that may pick recipes, and
    # <name>_report, a half that only reports: a set that chose a recipe no longer measures it honestly.
    judged_sets: tuple[str, ...] = ()
    # Code competitions take a notebook that predicts a hidden test set, never an uploaded CSV.
    code_competition: bool = False
    # Offline competitions write their own files on first use.
    make_files: Callable[[Path], None] | None = None

    @property
    def on_kaggle(self) -> bool:
        """False for an offline competition (it writes its own files): there is no Kaggle page to submit to."""
        return self.make_files is None

    @property
    def zip_name(self) -> str:
        return f"{self.slug}.zip"

    @property
    def download_command(self) -> str:
        return f"kaggle competitions download -c {self.slug}"


def get_spec(name: str) -> CompetitionSpec:
    """The spec registered under `name`; raises UserError on an unknown name."""
    if name not in COMPETITIONS:
        raise UserError(f"unknown competition {name!r}: expected one of {', '.join(COMPETITIONS)}")
    return importlib.import_module(name).SPEC
