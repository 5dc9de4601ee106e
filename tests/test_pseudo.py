"""common/training/pseudo.py: a second round trained with another run's confident test predictions, fold by fold."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from common.execution.pipeline import RunOptions, run_competition
from common.ground.config import Config
from common.ground.config_files import load_config
from common.ground.errors import UserError
from common.ground.spec import get_spec
from common.training.pseudo import pseudo_labels

pytestmark = pytest.mark.usefixtures("figures_left_out")  # no report is tested here

DIGITS = get_spec("digits")
TINY = ["max_train_rows=300", "epochs=1", "seeds=1", "model=mlp"]


def test_pseudo_labels_come_from_the_folds_own_models_above_the_threshold(tmp_path):
    first = np.array([[0.995, 0.005], [0.6, 0.4], [0.0, 1.0]])
    second = np.array([[0.985, 0.015], [0.6, 0.4], [0.0, 1.0]])
    for unit, probabilities in {"f0-s0": first, "f0-s1": second, "f1-s0": np.eye(3, 2)}.items():
        (tmp_path / "units" / unit).mkdir(parents=True)
        np.save(tmp_path / "units" / unit / "test.npy", np.pad(probabilities, ((0, 0), (0, 8))))
    images = np.arange(3, dtype=np.uint8).reshape(3, 1, 1, 1)
    cfg = Config(pseudo_from=str(tmp_path), pseudo_threshold=0.99)
    chosen, labels = pseudo_labels(cfg, 0, images)
    assert chosen.ravel().tolist() == [0, 2] and labels.tolist() == [0, 1]  # row 0: mean of the seeds 0.99
    assert len(pseudo_labels(Config(pseudo_from=str(tmp_path), pseudo_threshold=1.0), 0, images)[1]) == 1
    assert len(pseudo_labels(Config(), 0, images)[1]) == 0
    with pytest.raises(UserError, match="no test predictions of fold 2"):
        pseudo_labels(cfg, 2, images)
    with pytest.raises(UserError, match="has 3 rows, test.csv 4"):
        pseudo_labels(cfg, 0, np.zeros((4, 1, 1, 1), np.uint8))


@pytest.fixture(scope="module")
def first_round(digits_dir, tmp_path_factory) -> tuple[Path, Path]:
    cfg, label = load_config("digits", "smoke", overrides=TINY)
    out = tmp_path_factory.mktemp("runs")
    return out, run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), out))


@pytest.mark.slow  # the module's first round, then a second
def test_second_round_trains_on_each_folds_confident_test_images(first_round, digits_dir):
    out, source = first_round
    overrides = [*TINY, "pseudo_from=digits/latest", "pseudo_threshold=0.1"]  # any class of an untrained model
    cfg, label = load_config("digits", "smoke", overrides=overrides)
    folder = run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), out))
    assert yaml.safe_load((folder / "config.yaml").read_text())["pseudo_from"] == str(source.resolve())
    assert json.loads((folder / "run.json").read_text())["status"] == "finished"
    log = (folder / "train.log").read_text()
    for fold in (0, 1):
        sure = (np.load(source / "units" / f"f{fold}-s0" / "test.npy").max(axis=1) >= 0.1).sum()
        assert sure > 0 and f"fold {fold} seed 0: {sure} pseudo-labelled test images" in log


def edited_copy(source: Path, where: Path, **changes) -> Path:
    copy = shutil.copytree(source, where / "copy")
    record = json.loads((copy / "run.json").read_text()) | changes
    (copy / "run.json").write_text(json.dumps(record))
    return copy


@pytest.mark.parametrize(
    ("overrides", "changes", "message"),
    [
        (["folds=3"], {}, "has other rows or folds"),
        (["max_train_rows=200"], {}, "has other rows or folds"),
        ([], {"competition": "mnist"}, "is mnist; its test set is not digits'"),
        ([], {"status": "running"}, "is not finished"),
    ],
)
@pytest.mark.slow  # the module's first round
def test_unusable_sources_are_refused_before_a_folder_exists(
    first_round, digits_dir, tmp_path, overrides, changes, message
):
    out, source = first_round
    copy = edited_copy(source, tmp_path, **changes)
    before = sorted((out / "digits").iterdir())
    cfg, label = load_config("digits", "smoke", overrides=[*TINY, f"pseudo_from={copy}", *overrides])
    with pytest.raises(UserError, match=message):
        run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), out))
    assert sorted((out / "digits").iterdir()) == before


@pytest.mark.slow  # the module's first round, then a second
def test_command_line_flag_reaches_the_config(first_round, digits_dir, capsys):
    import run

    out, _ = first_round
    argv = ["digits", "--preset", "smoke", "--data-dir", str(digits_dir), "--out", str(out), *TINY]
    assert run.main([*argv, "--pseudo-from", "digits/nosuchrun"]) == 2
    assert "no run of digits matches" in capsys.readouterr().err
    assert run.main([*argv, "--pseudo-from", "latest"]) == 2
    assert "error: pseudo_from 'latest': expected COMPETITION/RUN" in capsys.readouterr().err


@pytest.mark.slow  # the module's first round, then a second
def test_no_unit_trains_on_its_own_held_out_rows(first_round, digits_dir, monkeypatch):
    """OOF stays honest with pseudo-labels: each unit's training rows (train.csv's and the pseudo-labelled test
    images) never include a row of the fold it predicts. Rows are recognised by their pixels; images that the
    data itself holds twice are left out of the check."""
    from common.data.files import load_dataset
    from common.training import stacked  # train_units calls train_unit from here

    seen, real = {}, stacked.train_unit

    def spy(job, *args, **kwargs):
        seen[job.seed] = (job.train[0], job.valid[0])
        return real(job, *args, **kwargs)

    monkeypatch.setattr(stacked, "train_unit", spy)
    out, _ = first_round
    overrides = [*TINY, "pseudo_from=digits/latest", "pseudo_threshold=0.1"]
    cfg, label = load_config("digits", "smoke", overrides=overrides)
    folder = run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), out))
    data = load_dataset(DIGITS, digits_dir)
    every = Counter(image.tobytes() for image in np.concatenate([data.train.images, data.test.images]))
    twice = {image for image, count in every.items() if count > 1}
    folds = pd.read_csv(folder / "folds.csv")
    assert len(seen) == cfg.folds
    for fit_images, valid_images in seen.values():
        held_out = {image.tobytes() for image in valid_images} - twice
        assert held_out and not held_out & {image.tobytes() for image in fit_images}
        assert len(fit_images) > len(folds) - len(valid_images)  # pseudo-labelled test images joined
