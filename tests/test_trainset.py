"""common/data/trainset.py: which rows a run trains on, holds out and scores (holdout, extra_train)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from common.data.files import Table, load_dataset
from common.data.trainset import HOLDOUT_SET, prepare_train_set
from common.ground.config import Config
from common.ground.errors import UserError
from common.ground.spec import get_spec

DIGITS = get_spec("digits")


@pytest.fixture(scope="module")
def dataset(digits_dir):
    return load_dataset(DIGITS, digits_dir)


def test_plain_run_trains_on_every_train_row(dataset):
    data, train = prepare_train_set(dataset, Config(folds=3))
    assert np.array_equal(train.rows, np.arange(len(dataset.train.labels)))
    assert set(data.extras) == set(dataset.extras) and train.from_train_csv().all()


def test_holdout_rows_leave_training_and_join_the_scored_sets(dataset):
    data, train = prepare_train_set(dataset, Config(folds=3, holdout=0.2))
    held = data.extras[HOLDOUT_SET]
    n = len(dataset.train.labels)
    assert len(train.rows) + len(held.labels) == n and abs(len(held.labels) - 0.2 * n) <= 1
    kept = np.setdiff1d(np.arange(n), train.rows)  # the held-out rows, in train.csv order
    assert np.array_equal(held.images, dataset.train.images[kept])
    again, _ = prepare_train_set(dataset, Config(folds=3, holdout=0.2, seed=7))
    assert np.array_equal(again.extras[HOLDOUT_SET].labels, held.labels)  # the holdout does not move with the seed


def test_holdout_and_max_train_rows_combine(dataset):
    full_data, full = prepare_train_set(dataset, Config(folds=3, holdout=0.2))
    data, train = prepare_train_set(dataset, Config(folds=3, holdout=0.2, max_train_rows=300))
    assert len(train.rows) == 300 and set(train.rows) <= set(full.rows)  # the cap never reaches the holdout
    assert np.array_equal(data.extras[HOLDOUT_SET].labels, full_data.extras[HOLDOUT_SET].labels)


def test_extra_train_is_folded_like_train_and_no_longer_scored(dataset):
    plain_data, plain = prepare_train_set(dataset, Config(folds=3))
    data, train = prepare_train_set(dataset, Config(folds=3, extra_train="sklearn_test"))
    extra = dataset.extras["sklearn_test"]
    n = len(dataset.train.labels)
    assert "sklearn_test" not in data.extras and "sklearn_test" in plain_data.extras
    assert len(train.rows) == n + len(extra.labels)
    assert np.array_equal(train.rows[n:], n + np.arange(len(extra.labels)))
    assert np.array_equal(train.images[n:], extra.images) and np.array_equal(train.labels[n:], extra.labels)
    assert np.array_equal(train.folds[:n], plain.folds)  # train.csv keeps the folds of a run without it
    assert sorted(np.unique(train.folds[n:])) == [0, 1, 2]
    assert list(np.unique(train.origin)) == ["sklearn_test", "train"]


def test_unknown_extra_train_set_is_refused(dataset):
    with pytest.raises(UserError, match="extra_train 'dig_mnist' is not an extra set of digits \\(sklearn_test\\)"):
        prepare_train_set(dataset, Config(folds=3, extra_train="dig_mnist"))


def test_a_subset_too_small_for_its_rarest_label_names_the_least_that_folds(dataset):
    """Config refuses fewer rows than classes x folds; how many of each label a subset keeps is the data's."""
    labels = np.concatenate([np.zeros(6, np.int64), np.repeat(np.arange(1, 10), 10), [1, 2, 3, 4]])  # label 0: 6%
    skewed = replace(dataset, train=Table(np.zeros((len(labels), 28, 28, 1), np.uint8), labels))
    with pytest.raises(UserError) as refused:
        prepare_train_set(skewed, Config(folds=5, max_train_rows=50))
    least = int(np.ceil(5 * len(labels) / 6))  # label 0 needs 5 rows: 5 / 6% of the rows
    assert str(refused.value) == (
        "config: max_train_rows 50 leaves label 0 3 rows, fewer than the 5 folds (one row of each label per fold);"
        f" the least is max_train_rows={least} (0 = every row)"
    )
    _, train = prepare_train_set(skewed, Config(folds=5, max_train_rows=least))
    assert np.bincount(train.labels)[0] >= 5 and len(train.rows) == least


@pytest.fixture(scope="module")
def judged(digits_dir):
    """The digits competition with its sklearn_test.csv declared judged, as Kannada's Dig-MNIST is."""
    return load_dataset(replace(DIGITS, judged_sets=("sklearn_test",)), digits_dir)


def test_a_judged_set_splits_once_into_a_picking_and_a_reporting_half(judged, digits_dir):
    halves = judged.judged_halves()
    assert list(halves) == ["sklearn_test_pick", "sklearn_test_report"]
    (_, pick), (_, report) = halves.values()
    labels = judged.extras["sklearn_test"].labels
    assert sorted([*pick, *report]) == list(range(len(labels)))  # disjoint, and together the whole set
    assert abs(np.bincount(labels[pick]) - np.bincount(labels[report])).max() <= 1  # stratified by label
    again = load_dataset(replace(DIGITS, judged_sets=("sklearn_test",)), digits_dir).judged_halves()
    assert np.array_equal(again["sklearn_test_pick"][1], pick)  # the same halves every time
    probabilities = np.eye(10, dtype=np.float32)[labels]
    probabilities[pick] = np.roll(probabilities[pick], 1, axis=1)  # every row of the picking half wrong
    scored = judged.scored_sets({"sklearn_test": probabilities})
    assert set(scored) == {"sklearn_test", "sklearn_test_pick", "sklearn_test_report"}
    assert np.array_equal(scored["sklearn_test_report"][1], probabilities[report])
    assert (scored["sklearn_test_pick"][1].argmax(axis=1) != scored["sklearn_test_pick"][0]).all()


def test_a_judged_set_trained_on_loses_both_halves(judged):
    data, _ = prepare_train_set(judged, Config(folds=3, extra_train="sklearn_test"))
    assert "sklearn_test" not in data.extras and data.judged_halves() == {}


def test_kannada_judges_recipes_on_half_of_dig_mnist():
    assert get_spec("kannada").judged_sets == ("dig_mnist",)
