"""common/commands/blend.py: weighted means of run folders' probabilities, written as a run folder of its own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common.commands.blend import blend_runs
from common.commands.compare import compare_table
from common.data.files import load_dataset
from common.ground.errors import UserError
from common.ground.spec import get_spec
from tests.test_compare import write_run

N_TEST, N_EXTRA = 300, 197  # the offline digits competition's test and sklearn_test sets
RUN_A, RUN_B = "20260101-000000-default-aaaa", "20260101-000001-wide-bbbb"


@pytest.fixture(scope="module")
def train_labels(digits_dir) -> np.ndarray:
    return load_dataset(get_spec("digits"), digits_dir).train.labels


def probabilities(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(10), n).astype(np.float32)


def write_digits_run(root: Path, run_id: str, rows: np.ndarray, labels: np.ndarray, seed: int, **changes) -> Path:
    """A finished digits run scoring `rows` of train.csv, with test and sklearn_test probabilities."""
    arrays = {"test": probabilities(N_TEST, seed + 1), "sklearn_test": probabilities(N_EXTRA, seed + 2)}
    arrays |= changes.pop("arrays", {})
    oof = probabilities(len(rows), seed)
    return write_run(root, run_id, rows, labels[rows], rows % 4, oof, arrays=arrays, **changes)


def run_folders(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "digits").iterdir() if p.is_dir())


def test_blend_is_the_weighted_mean_and_a_finished_run(tmp_path, digits_dir, train_labels):
    rows_a = np.arange(0, 800)
    rows_b = np.random.default_rng(0).permutation(np.arange(400, 1300))  # overlapping rows, another order
    a = write_digits_run(tmp_path, RUN_A, rows_a, train_labels, seed=10)
    b = write_digits_run(tmp_path, RUN_B, rows_b, train_labels, seed=20)

    folder = blend_runs(tmp_path, "digits", ["20260101-000000", RUN_B], weights=[3, 1], data_dir=digits_dir)

    assert "-blend-" in folder.name
    folds = pd.read_csv(folder / "folds.csv")
    np.testing.assert_array_equal(folds["row"], np.arange(400, 800))
    np.testing.assert_array_equal(folds["label"], train_labels[400:800])
    np.testing.assert_array_equal(folds["fold"], np.arange(400, 800) % 4)  # the first run's folds
    oof_b = np.load(b / "oof.npy")[pd.Index(rows_b).get_indexer(np.arange(400, 800))]
    expected_oof = 0.75 * np.load(a / "oof.npy")[400:800] + 0.25 * oof_b
    np.testing.assert_allclose(np.load(folder / "oof.npy"), expected_oof, rtol=1e-6)
    for name in ("test", "sklearn_test"):
        expected = 0.75 * np.load(a / f"{name}.npy") + 0.25 * np.load(b / f"{name}.npy")
        np.testing.assert_allclose(np.load(folder / f"{name}.npy"), expected, rtol=1e-6)

    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["blend_of"] == [RUN_A, RUN_B] and metrics["weights"] == [0.75, 0.25]
    blended_accuracy = (expected_oof.argmax(axis=1) == train_labels[400:800]).mean()
    assert metrics["oof_accuracy"] == pytest.approx(blended_accuracy)
    assert set(metrics["extra_accuracy"]) == {"sklearn_test"} and len(metrics["per_class"]) == 11
    assert set(metrics["inputs"]) == {RUN_A, RUN_B}
    assert json.loads((folder / "run.json").read_text())["status"] == "finished"
    submission = pd.read_csv(folder / "submission.csv")
    assert list(submission.columns) == ["id", "label"] and len(submission) == N_TEST
    np.testing.assert_array_equal(submission["label"], np.load(folder / "test.npy").argmax(axis=1))

    # The blend is listed like any run, and can itself be blended with equal weights.
    table = compare_table(tmp_path, "digits")
    assert table.set_index("preset").loc["blend", "folds x seeds"] == "blend of 2"
    again = blend_runs(tmp_path, "digits", [RUN_A, folder.name], data_dir=digits_dir)
    expected_test = (np.load(a / "test.npy") + np.load(folder / "test.npy")) / 2
    np.testing.assert_allclose(np.load(again / "test.npy"), expected_test, rtol=1e-6)


def test_blend_refuses_bad_inputs_before_writing_anything(tmp_path, digits_dir, train_labels):
    rows = np.arange(0, 600)
    write_digits_run(tmp_path, RUN_A, rows, train_labels, seed=1)
    write_digits_run(tmp_path, RUN_B, rows + 600, train_labels, seed=2)  # no row in common with A
    write_digits_run(tmp_path, "20260101-000002-default-cccc", rows, train_labels, seed=3, status="running")
    short_test = {"test": probabilities(N_TEST - 1, 4)}
    write_digits_run(tmp_path, "20260101-000003-default-dddd", rows, train_labels, seed=4, arrays=short_test)
    write_digits_run(tmp_path, "20260101-000004-default-eeee", rows, train_labels, seed=5)
    before = run_folders(tmp_path)

    cases = [
        ([RUN_A], None, "at least 2 runs"),
        ([RUN_A, "20260101-000002"], None, "not finished"),
        ([RUN_A, "20260101-000003"], None, "299 rows, expected 300"),
        ([RUN_A, RUN_B], None, "no train row in common"),
        ([RUN_A, "20260101-000004"], [1.0], "2 runs"),
        ([RUN_A, "20260101-000004"], [1.0, -1.0], "non-negative"),
        ([RUN_A, "20260101-000000-default"], None, "named twice"),
    ]
    for run_ids, weights, message in cases:
        with pytest.raises(UserError, match=message):
            blend_runs(tmp_path, "digits", run_ids, weights=weights, data_dir=digits_dir)
    assert run_folders(tmp_path) == before


def test_blend_scores_a_judged_sets_halves_as_a_trained_run_does(tmp_path, digits_dir, train_labels, monkeypatch):
    """With sklearn_test.csv judged (as Kannada's Dig-MNIST is), the blend and each input are scored on its picking
    and reporting halves too, cut from the whole set's probabilities."""
    from dataclasses import replace

    import common.commands.blend as blend
    from common.data.files import judged_rows

    judged = replace(get_spec("digits"), judged_sets=("sklearn_test",))
    monkeypatch.setattr(blend, "get_spec", lambda name: judged)
    rows = np.arange(0, 600)
    a = write_digits_run(tmp_path, RUN_A, rows, train_labels, seed=1)
    write_digits_run(tmp_path, RUN_B, rows, train_labels, seed=2)
    folder = blend_runs(tmp_path, "digits", [RUN_A, RUN_B], data_dir=digits_dir)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics["extra_accuracy"]) == {"sklearn_test", "sklearn_test_pick", "sklearn_test_report"}
    labels = load_dataset(judged, digits_dir).extras["sklearn_test"].labels
    _, report = judged_rows(labels)
    blended = np.load(folder / "sklearn_test.npy")[report]
    assert metrics["extra_accuracy"]["sklearn_test_report"] == pytest.approx(
        (blended.argmax(1) == labels[report]).mean()
    )
    own = (np.load(a / "sklearn_test.npy")[report].argmax(1) == labels[report]).mean()
    assert metrics["inputs"][RUN_A]["extra_accuracy"]["sklearn_test_report"] == pytest.approx(own)
