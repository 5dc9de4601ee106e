"""Kaggle "Kannada-MNIST": Kannada digits, with Dig-MNIST as a harder, out-of-distribution set."""

from common.ground.spec import CompetitionSpec

SPEC = CompetitionSpec(
    name="kannada",
    slug="Kannada-MNIST",
    test_id_column="id",
    submission_columns=("id", "label"),
    extra_sets={"dig_mnist": "Dig-MNIST.csv"},
    judged_sets=("dig_mnist",),  # dig_mnist_pick chooses Kannada recipes, dig_mnist_report reports them
    code_competition=True,
)
