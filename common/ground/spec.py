"""The declarative description of one competition, and the table of known competitions (`COMPETITIONS`).

A spec is data only: an offline competition names the writer of its files, which the data floor looks up
(`WRITERS` of common/data/synthetic.py), so naming a competition imports nothing but this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.ground.errors import UserError

N_PIXELS = 784
IMAGE_SHAPE = (28, 28, 1)
N_CLASSES = 10
PIXEL_COLUMNS = tuple(f"pixel{i}" for i in range(N_PIXELS))


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
    # An offline competition writes its own files on first use: its writer's name in common/data/synthetic.py.
    writer: str | None = None

    @property
    def on_kaggle(self) -> bool:
        """False for an offline competition (it writes its own files): there is no Kaggle page to submit to."""
        return self.writer is None

    @property
    def zip_name(self) -> str:
        return f"{self.slug}.zip"

    @property
    def download_command(self) -> str:
        return f"kaggle competitions download -c {self.slug}"


KANNADA = CompetitionSpec(  # Kaggle "Kannada-MNIST": Kannada digits, with Dig-MNIST a harder, out-of-distribution set
    name="kannada",
    slug="Kannada-MNIST",
    test_id_column="id",
    submission_columns=("id", "label"),
    extra_sets={"dig_mnist": "Dig-MNIST.csv"},
    judged_sets=("dig_mnist",),  # dig_mnist_pick chooses Kannada recipes, dig_mnist_report reports them
    code_competition=True,
)
MNIST = CompetitionSpec(  # Kaggle "digit-recognizer": MNIST digits; test.csv has no id column, ImageId counts from 1
    name="mnist",
    slug="digit-recognizer",
    test_id_column=None,
    first_id=1,
    submission_columns=("ImageId", "Label"),
)
DIGITS = CompetitionSpec(  # offline, from scikit-learn's bundled 8x8 digits: newcomers and the tests need no account
    name="digits",
    slug="sklearn-digits",
    test_id_column="id",
    submission_columns=("id", "label"),
    # Labelled digits that neither train.csv nor test.csv holds, scored with every run (as Dig-MNIST is for kannada);
    # not named "holdout", which is the config key that holds rows of train.csv out.
    extra_sets={"sklearn_test": "sklearn_test.csv"},
    writer="sklearn_digits",
)

# The competitions by their name on the command line (and in configs/<name>.yaml); a new one is a spec added here.
COMPETITIONS: dict[str, CompetitionSpec] = {spec.name: spec for spec in (KANNADA, MNIST, DIGITS)}


def get_spec(name: str) -> CompetitionSpec:
    """The spec registered under `name`; raises UserError on an unknown name."""
    if name not in COMPETITIONS:
        raise UserError(f"unknown competition {name!r}: expected one of {', '.join(COMPETITIONS)}")
    return COMPETITIONS[name]
