"""common/training/batches.py: fixed-size shuffled batches from memory; per-image distortions in worker processes."""

from __future__ import annotations

import numpy as np
import pytest

from common.ground.config import Config
from common.ground.errors import UserError
from common.training.batches import TrainBatches, build_distortions, padded

pytestmark = pytest.mark.usefixtures("figures_left_out")  # no report is tested here

IMAGES = np.zeros((100, 28, 28, 1), np.uint8)
IMAGES[:, 8:20, 12:16] = 255
IMAGES[:, 0, 0, 0] = np.arange(100)  # each image tells its row
LABELS = np.arange(100) % 10


def epoch_rows(batches: TrainBatches) -> np.ndarray:
    return np.concatenate([batches[i][0][:, 0, 0, 0] for i in range(len(batches))])


def test_every_batch_has_the_same_shape_and_one_hot_labels():
    batches = TrainBatches(IMAGES, LABELS, Config(batch_size=32), seed=0)
    assert len(batches) == 3  # 100 // 32: the remainder waits for another epoch
    for i in range(len(batches)):
        x, y = batches[i]
        assert x.shape == (32, 28, 28, 1) and x.dtype == np.uint8 and y.shape == (32, 10)
        assert np.array_equal(y.argmax(axis=1), LABELS[x[:, 0, 0, 0]])


def test_each_epoch_is_a_new_order_drawn_from_the_seed():
    first, again = (
        TrainBatches(IMAGES, LABELS, Config(batch_size=32), 5),
        TrainBatches(IMAGES, LABELS, Config(batch_size=32), 5),
    )
    rows = epoch_rows(first)
    assert len(set(rows)) == 96 and np.array_equal(rows, epoch_rows(again))
    first.on_epoch_end()
    assert not np.array_equal(rows, epoch_rows(first))


def test_a_set_smaller_than_a_batch_is_one_batch():
    assert len(TrainBatches(IMAGES[:10], LABELS[:10], Config(batch_size=32), 0)) == 1


def test_distortions_change_images_and_repeat_from_the_seed():
    cfg = Config(batch_size=32, distort="elastic,grid")
    a, b = TrainBatches(IMAGES, LABELS, cfg, 1), TrainBatches(IMAGES, LABELS, cfg, 1)
    assert a.workers == 2 and a.use_multiprocessing  # albumentations holds the GIL: processes, not threads
    assert np.array_equal(a[0][0], b[0][0])
    plain = TrainBatches(IMAGES, LABELS, Config(batch_size=32), 1)[0][0]
    assert not np.array_equal(a[0][0], plain)


def test_unknown_distortion_is_refused_in_the_config():
    with pytest.raises(UserError, match="distort 'wobble'"):
        Config(distort="elastic,wobble")
    assert build_distortions([]) is None


def test_padding_gives_whole_batches():
    assert padded(IMAGES, 64).shape[0] == 128 and np.array_equal(padded(IMAGES, 64)[:100], IMAGES)
    assert padded(IMAGES, 50) is IMAGES


@pytest.mark.slow  # trains a tiny run through worker processes
def test_a_run_with_distortions_trains_through_worker_processes(digits_dir, tmp_path):
    import json

    from common.execution.pipeline import RunOptions, run_competition
    from common.ground.config_files import load_config
    from common.ground.spec import get_spec

    overrides = ["max_train_rows=300", "epochs=1", "model=mlp", "distort=elastic,grid"]
    cfg, label = load_config("digits", "smoke", overrides=overrides)
    folder = run_competition(get_spec("digits"), cfg, label, ["digits"], RunOptions(str(digits_dir), tmp_path))
    assert json.loads((folder / "run.json").read_text())["status"] == "finished"
