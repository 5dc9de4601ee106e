"""common/training/stacked.py: units trained in one compiled program (`stack`) train as they would alone, each on
its own rows; grouping, refusals, and a stacked run end to end (the leak test's rows included)."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import replace

import numpy as np
import pytest

from common import runs
from common.data.files import load_dataset
from common.data.trainset import HOLDOUT_SET, prepare_train_set
from common.execution.pipeline import RunOptions, check_before_folder, run_competition
from common.ground.config import Config
from common.ground.config_files import load_config
from common.ground.errors import UserError
from common.ground.spec import get_spec
from common.runs.units import UnitKey, all_units
from common.training import stacked
from common.training.backend import setup_hardware
from common.training.batches import TrainBatches
from common.training.stacked import StackedBatches, train_stacked
from common.training.train import UnitJob, train_unit
from common.training.unit import stack_groups

DIGITS = get_spec("digits")
# BatchNorm, dropout and the affine: every seeded part of a unit, in a model small enough for the quick tier
CFG = Config(model="small", width=8, epochs=2, batch_size=32, dropout=0.3, rotate=10, shift=0.1, deterministic=True)


def random_rows(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (rows, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, rows)


def test_each_model_of_a_stack_trains_as_it_would_alone():
    """Same seeds, rows and config: the stacked models end with the weights and predictions of models trained
    one at a time (only float rounding apart), and each unit's history has a unit's own columns."""
    hardware = setup_hardware(CFG)
    predict = {"test": random_rows(30, 99)[0]}
    jobs = [UnitJob(CFG, seed, random_rows(96, seed), random_rows(20, seed + 1), predict) for seed in (7, 11)]
    together = train_stacked(jobs, hardware)
    for job, (model, output) in zip(jobs, together, strict=True):
        alone_model, alone = train_unit(job, hardware)
        for got, want in zip(model.get_weights(), alone_model.get_weights(), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        for name in ("valid", "test"):
            np.testing.assert_allclose(output.probabilities[name], alone.probabilities[name], atol=1e-5)
        assert list(output.history.columns) == list(alone.history.columns)
        np.testing.assert_allclose(output.history["loss"], alone.history["loss"], rtol=1e-4)
        assert output.images_trained == alone.images_trained == 2 * 3 * 32


def test_models_of_a_stack_differ_from_each_other():
    """Each member has its own seed: a stack of two is not one model twice."""
    cfg = replace(CFG, epochs=1)
    jobs = [UnitJob(cfg, seed, random_rows(64, 0), None, {"test": random_rows(8, 3)[0]}) for seed in (1, 2)]
    (first, _), (second, _) = train_stacked(jobs, setup_hardware(cfg))
    assert not np.allclose(first.get_weights()[0], second.get_weights()[0])


def test_a_stack_steps_as_often_as_its_smallest_member():
    batches = StackedBatches([TrainBatches(*random_rows(rows, 0), CFG, seed) for seed, rows in ((1, 100), (2, 70))])
    assert len(batches) == 70 // CFG.batch_size
    images, labels = batches[0]
    assert list(images) == ["image_0", "image_1"] and list(labels) == ["unit_0", "unit_1"]
    assert images["image_0"].shape == (32, 28, 28, 1) and labels["unit_1"].shape == (32, 10)


def test_units_stack_only_with_units_of_the_same_config():
    cfg = Config(folds=5, full_models=3, full_epochs=4, stack=2)
    groups = stack_groups(cfg, all_units(cfg))
    assert [[key.name for key in group] for group in groups] == [
        ["f0-s0", "f1-s0"],
        ["f2-s0", "f3-s0"],
        ["f4-s0"],
        ["all-s0", "all-s1"],
        ["all-s2"],
    ]
    assert stack_groups(Config(stack=1), all_units(Config())) == [[key] for key in all_units(Config())]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"stack": 0}, "stack must be a positive integer"),
        ({"stack": 2, "early_stopping": 2}, "early_stopping works unit by unit"),
        ({"stack": 3, "tensorboard": True}, "tensorboard works unit by unit"),
    ],
)
def test_config_refuses_what_a_stack_cannot_do(overrides, message):
    with pytest.raises(UserError, match=message):
        Config(**overrides)


@pytest.mark.parametrize("cfg, name", [(Config(stack=2), "stack"), (Config(tensorboard=True), "tensorboard=true")])
def test_units_on_a_dask_cluster_do_not_stack(cfg, name):
    with pytest.raises(UserError, match=f"^{name}: .*not with --scheduler"):
        check_before_folder(DIGITS, cfg, RunOptions(scheduler="local:2"))


# ---------------------------------------------------------------------------
# A stacked run, end to end
# ---------------------------------------------------------------------------

TINY = ["epochs=1", "model=small", "width=8", "max_train_rows=200", "holdout=0.1", "deterministic=true"]
STACKED = [*TINY, "folds=3", "full_models=2", "full_epochs=2", "stack=3"]


@pytest.fixture(scope="module")
def stacked_run(digits_dir, tmp_path_factory):
    """Three fold models in one stack, two full-data models in another; every member's arrays recorded."""
    cfg, label = load_config("digits", "smoke", overrides=STACKED)
    fits, original = [], stacked.train_stacked

    def recording(jobs, *args, **kwargs):
        fits.extend((job.train[0].copy(), job.valid) for job in jobs)
        return original(jobs, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        patch.setattr(stacked, "train_stacked", recording)
        folder = run_competition(
            DIGITS, cfg, label, ["digits", *STACKED], RunOptions(str(digits_dir), tmp_path_factory.mktemp("runs"))
        )
    keys = all_units(cfg)
    return folder, cfg, dict(zip([key.name for key in keys], fits, strict=True))


@pytest.mark.slow
def test_a_stacked_run_trains_every_unit_on_its_own_rows(stacked_run, digits_dir):
    """The leak test for stacks: from the arrays each member passed to the stack, no fold model saw a row of its
    own fold and full-data models saw every training row; every unit is saved, says it was stacked, and the run
    finalises with OOF from its fold models."""
    folder, cfg, fits = stacked_run
    data, train = prepare_train_set(load_dataset(DIGITS, digits_dir), cfg)
    rows = lambda images: {image.tobytes() for image in images}  # noqa: E731
    assert not rows(data.extras[HOLDOUT_SET].images) & set().union(*(rows(images) for images, _ in fits.values()))
    for name, (images, valid) in fits.items():
        key = UnitKey.parse(name)
        if key.holds_out:
            own = train.folds == key.fold
            assert rows(images) == rows(train.images[~own]) and not rows(images) & rows(train.images[own])
            assert np.array_equal(valid[0], train.images[own])
        else:
            assert valid is None and rows(images) == rows(train.images)
        record = json.loads((runs.unit_dir(folder, key) / runs.UNIT_JSON).read_text())
        assert record["stacked"] == (3 if key.holds_out else 2)
    run = runs.load_run(folder)
    assert run.finished and run.metrics().oof_accuracy is not None
    oof = np.load(folder / "oof.npy")
    for fold in range(3):
        valid = np.load(runs.unit_dir(folder, UnitKey(fold, 0)) / "valid.npy")
        assert np.allclose(oof[train.folds == fold], valid)
    assert "3 at a time in one program" in (folder / runs.TRAIN_LOG).read_text()
