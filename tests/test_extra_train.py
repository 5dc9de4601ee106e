"""Runs with `extra_train`: their extra rows (numbered after train.csv's in folds.csv) are reported, blended and
scored with test-time shifts like train.csv's rows (common.data.trainset.folds_rows maps both back to images)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import run as cli
from bench.tta import main as tta_main
from common.data.files import load_dataset
from common.data.trainset import folds_rows
from common.execution.pipeline import RunOptions, run_competition
from common.ground.config_files import load_config
from common.ground.errors import UserError
from common.ground.spec import get_spec

DIGITS = get_spec("digits")
TINY = ["max_train_rows=300", "epochs=1", "model=mlp", "folds=2", "extra_train=sklearn_test"]


@pytest.fixture(scope="module")
def extra_runs(digits_dir, tmp_path_factory):
    """Two tiny digits runs that also train on sklearn_test.csv, on the same rows (one seed) with two dropouts, so
    that they can be blended: the root and their folders."""
    root = tmp_path_factory.mktemp("runs")
    folders = []
    for dropout in (0.1, 0.2):
        cfg, label = load_config("digits", "smoke", overrides=[*TINY, f"dropout={dropout}"])
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DIGIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
            folders.append(run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), root)))
    return root, folders


@pytest.mark.slow  # the module's two tiny runs
def test_folds_rows_maps_extra_rows_to_their_own_file(extra_runs, digits_dir):
    _, (folder, _) = extra_runs
    data, folds = load_dataset(DIGITS, digits_dir), pd.read_csv(folder / "folds.csv")
    images, labels = folds_rows(data, folds, folder / "folds.csv")
    extra = (folds["origin"] == "sklearn_test").to_numpy()
    first = int(folds["row"][extra].min()) - len(data.train.labels)
    assert extra.any() and np.array_equal(images[np.flatnonzero(extra)[0]], data.extras["sklearn_test"].images[first])
    broken = folds.assign(label=(folds["label"] + 1) % 10)
    with pytest.raises(UserError, match="label differs"):
        folds_rows(data, broken, folder / "folds.csv")


@pytest.mark.slow  # the module's two tiny runs
def test_report_of_an_extra_train_run(extra_runs, digits_dir, capsys):
    root, (folder, _) = extra_runs
    args = ["report", "digits", folder.name, "--data-dir", str(digits_dir), "--out", str(root)]
    assert cli.main(args) == 0, capsys.readouterr().err
    assert (folder / "report.html").is_file() and (folder / "figures" / "wrong.png").is_file()


@pytest.mark.slow  # the module's two tiny runs
def test_blend_of_extra_train_runs(extra_runs, digits_dir, capsys):
    root, folders = extra_runs
    args = ["blend", "digits", *(f.name for f in folders), "--data-dir", str(digits_dir), "--out", str(root)]
    assert cli.main(args) == 0, capsys.readouterr().err
    (blend,) = (root / "digits").glob("*-blend-*")
    assert set(pd.read_csv(blend / "folds.csv")["origin"]) == {"train", "sklearn_test"}
    assert 0 < json.loads((blend / "metrics.json").read_text())["oof_accuracy"] <= 1


@pytest.mark.slow  # the module's two tiny runs
def test_tta_table_of_an_extra_train_run(extra_runs, digits_dir, tmp_path):
    root, (folder, _) = extra_runs
    args = ["digits", folder.name, "--data-dir", str(digits_dir), "--out", str(root), "--results", str(tmp_path)]
    assert tta_main(args) == 0
    (table,) = tmp_path.glob("tta-digits-*.json")
    rows = json.loads(table.read_text())
    assert len(rows["rows"] if isinstance(rows, dict) else rows) == 9
