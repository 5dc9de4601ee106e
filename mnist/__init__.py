"""Kaggle "digit-recognizer": MNIST digits; test.csv has no id column, ImageId counts from 1."""

from common.ground.spec import CompetitionSpec

SPEC = CompetitionSpec(
    name="mnist",
    slug="digit-recognizer",
    test_id_column=None,
    first_id=1,
    submission_columns=("ImageId", "Label"),
)
