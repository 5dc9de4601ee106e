"""common/data/folds.py: stratified, seeded folds and subsets."""

from __future__ import annotations

import numpy as np
import pytest

from common.data.folds import holdout_split, make_folds, stratified_subset
from common.ground.errors import UserError

LABELS = np.repeat(np.arange(10), 20)


def test_folds_are_stratified_and_cover_every_row():
    folds = make_folds(LABELS, 5, seed=1)
    assert sorted(np.unique(folds)) == [0, 1, 2, 3, 4]
    for fold in range(5):
        assert np.bincount(LABELS[folds == fold], minlength=10).tolist() == [4] * 10


def test_same_seed_same_folds_other_seed_other_folds():
    assert np.array_equal(make_folds(LABELS, 5, 7), make_folds(LABELS, 5, 7))
    assert not np.array_equal(make_folds(LABELS, 5, 7), make_folds(LABELS, 5, 8))


@pytest.mark.parametrize("n_folds", [0, 1, -3, 21])
def test_impossible_fold_counts_raise(n_folds):
    with pytest.raises(UserError, match="folds must be between 2 and 20"):
        make_folds(LABELS, n_folds, 0)


def test_stratified_subset_keeps_class_balance_and_order():
    rows = stratified_subset(LABELS, 50, seed=0)
    assert len(rows) == 50 and np.all(np.diff(rows) > 0)
    assert np.bincount(LABELS[rows]).tolist() == [5] * 10
    assert np.array_equal(stratified_subset(LABELS, 0, 0), np.arange(len(LABELS)))


def test_a_subset_leaving_out_fewer_rows_than_labels_is_one_clear_error():
    with pytest.raises(UserError, match=r"max_train_rows 198: no stratified subset of 198 of 200 rows \(The test_size"):
        stratified_subset(LABELS, 198, seed=0)


def test_holdout_split_is_fixed_stratified_and_disjoint():
    labels = np.repeat(np.arange(10), 20)
    kept, held = holdout_split(labels, 0.1)
    again, _ = holdout_split(labels, 0.1)
    assert np.array_equal(kept, again) and not set(kept) & set(held) and len(held) == 20
    assert np.array_equal(np.bincount(labels[held]), np.full(10, 2))


def test_holdout_split_refuses_a_label_too_rare_to_split():
    with pytest.raises(UserError, match="cannot hold out 0.5 of 11 rows"):
        holdout_split(np.array([0] * 10 + [1]), 0.5)
