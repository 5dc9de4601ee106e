"""common/commands/fixed_split.py: the fixed split the zoo and the benchmark train on, and one config trained on
it through the trainer a run uses."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from common.commands.fixed_split import capped_rows, checked_config, fixed_split, prepare_split, train_split_model
from common.data.folds import HOLDOUT_SEED, holdout_split
from common.ground.errors import UserError


def test_capped_rows_is_a_stratified_subset_of_the_training_rows():
    labels = np.repeat(np.arange(10), 20)
    train, _ = holdout_split(labels, 0.1)
    capped = capped_rows(labels, train, 0, 50)
    assert len(capped) == 50 and set(capped) <= set(train) and np.array_equal(np.bincount(labels[capped]), [5] * 10)
    assert np.array_equal(capped_rows(labels, train, 0, 0), train)
    assert np.array_equal(capped_rows(labels, train, 100, 50), capped)  # the smaller cap wins


def test_a_checked_config_is_the_competitions_then_preset_then_overrides():
    cfg = checked_config("digits", "reference", ["epochs=10"])
    assert (cfg.model, cfg.schedule, cfg.epochs) == ("deotte", "exponential", 10)
    with pytest.raises(UserError, match="unknown model 'nosuch'"):
        checked_config("digits", None, ["model=nosuch"])
    with pytest.raises(UserError, match="model mlp does not read width"):
        checked_config("digits", None, ["model=mlp", "width=48"])


def test_the_benchmarks_split_is_the_config_holdout_and_the_zoos_is_of_a_subset():
    labels = np.repeat(np.arange(10), 30)
    train, held = fixed_split(labels, 0.1, 0, HOLDOUT_SEED)
    expected = holdout_split(labels, 0.1)
    assert np.array_equal(train, expected[0]) and np.array_equal(held, expected[1])
    train, held = fixed_split(labels, 0.1, 100, seed=42)
    assert (len(train), len(held)) == (90, 10) and np.array_equal(np.bincount(labels[held]), [1] * 10)


def test_the_split_is_fixed_stratified_and_disjoint():
    labels = np.repeat(np.arange(10), 100)
    train, valid = fixed_split(labels, 0.1, 0, seed=42)
    again = fixed_split(labels, 0.1, 0, seed=42)
    assert np.array_equal(train, again[0]) and np.array_equal(valid, again[1])
    assert len(valid) == 100 and not set(train) & set(valid) and len(train) + len(valid) == 1000
    assert np.array_equal(np.bincount(labels[valid]), np.full(10, 10))  # 10% of every class
    small_train, small_valid = fixed_split(labels, 0.1, 500, seed=42)
    assert len(small_train) + len(small_valid) == 500 and np.array_equal(np.bincount(labels[small_valid]), [5] * 10)


class EpochsSeen(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[int] = []

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.epochs.append(epoch)


@pytest.mark.slow  # trains a tiny model for 2 epochs
def test_a_config_trains_through_the_runs_trainer_with_the_callbacks_given(digits_dir):
    cfg = checked_config("digits", None, ["model=small", "width=8", "epochs=2", "tta=2"])
    split = prepare_split("digits", 0.1, 400, HOLDOUT_SEED, str(digits_dir))
    seen = EpochsSeen()
    trained = train_split_model(cfg, split, max_train_rows=100, callbacks=[seen])
    keras.backend.clear_session()
    assert seen.epochs == [0, 1] and trained.train_rows == 100 and len(trained.result.history) == 2
    assert list(trained.result.probabilities) == ["valid", *split.data.extras]  # the holdout, then each extra set
    assert trained.result.probabilities["valid"].shape == (len(split.holdout_rows), 10)
    assert trained.result.images_trained == 2 * (100 // cfg.batch_size) * cfg.batch_size
    assert trained.model.count_params() > 0 and trained.hardware


def test_a_config_trains_on_train_csv_rows_alone_and_only_predicts_the_extra_sets(digits_dir, monkeypatch):
    """The leak test of the split: the arrays handed to the trainer are the split's rows of train.csv, none of
    its holdout; the extra sets (Kannada's Dig-MNIST, judged on its halves; digits' sklearn_test here) are only
    predicted."""
    import common.commands.fixed_split as fixed

    handed = {}

    def recording(job, hardware, progress=None):
        handed.update(train=job.train, valid=job.valid, predict=job.predict)
        return None, None

    monkeypatch.setattr(fixed, "train_unit", recording)
    split = prepare_split("digits", 0.1, 400, HOLDOUT_SEED, str(digits_dir))
    train_split_model(checked_config("digits", None, []), split, max_train_rows=300)
    images, labels = handed["train"]
    rows = capped_rows(split.data.train.labels, split.train_rows, 300)
    assert np.array_equal(images, split.data.train.images[rows]) and np.array_equal(
        labels, split.data.train.labels[rows]
    )
    assert not set(rows) & set(split.holdout_rows)
    assert np.array_equal(handed["valid"][0], split.data.train.images[split.holdout_rows])
    assert set(handed["predict"]) == set(split.data.extras) == {"sklearn_test"}
