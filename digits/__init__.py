"""An offline competition built from scikit-learn's bundled 8x8 digits, in Kaggle's exact layout.

It needs no credentials or network, so newcomers and the tests run the whole path on it.
"""

from common.data.synthetic import write_sklearn_digits_competition
from common.ground.spec import CompetitionSpec

SPEC = CompetitionSpec(
    name="digits",
    slug="sklearn-digits",
    test_id_column="id",
    submission_columns=("id", "label"),
    # Labelled digits that neither train.csv nor test.csv holds, scored with every run (as Dig-MNIST is for kannada);
    # not named "holdout", which is the config key that holds rows of train.csv out.
    extra_sets={"sklearn_test": "sklearn_test.csv"},
    make_files=write_sklearn_digits_competition,
)
