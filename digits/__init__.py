"""An offline competition built from scikit-learn's bundled 8x8 digits, in Kaggle's exact layout.

It needs no credentials or network, so newcomers and the tests run the whole path on it.
"""

from pathlib import Path

from common.ground.spec import CompetitionSpec


def write_files(folder: Path) -> Path:
    """The competition's files; late, because the writer's pandas, OpenCV and scikit-learn take seconds to import
    and naming the competition must not (a mistake on the command line is refused first)."""
    from common.data.synthetic import write_sklearn_digits_competition

    return write_sklearn_digits_competition(folder)


SPEC = CompetitionSpec(
    name="digits",
    slug="sklearn-digits",
    test_id_column="id",
    submission_columns=("id", "label"),
    # Labelled digits that neither train.csv nor test.csv holds, scored with every run (as Dig-MNIST is for kannada);
    # not named "holdout", which is the config key that holds rows of train.csv out.
    extra_sets={"sklearn_test": "sklearn_test.csv"},
    make_files=write_files,
)
