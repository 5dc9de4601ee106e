"""common/commands/compare.py: the table of runs, row alignment and McNemar's test between two runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from common.commands.compare import compare_pair, compare_table, mcnemar, print_compare, verdict
from common.ground.errors import UserError
from common.runs import load_run
from common.runs.aligned import aligned_oof
from tests.run_fakes import fake_metrics, fake_record

COMPETITION = "digits"
BASE_CONFIG = {"folds": 5, "seeds": 1, "epochs": 12, "lr": 0.005, "dropout": 0.2, "model": "small"}


def one_hot(predicted: np.ndarray) -> np.ndarray:
    return np.eye(10, dtype=np.float32)[predicted]


def write_run(
    root: Path,
    run_id: str,
    rows: np.ndarray,
    labels: np.ndarray,
    folds: np.ndarray,
    oof: np.ndarray,
    *,
    status: str = "finished",
    config: dict | None = None,
    metrics: dict | None = None,
    arrays: dict[str, np.ndarray] | None = None,
    competition: str = COMPETITION,
) -> Path:
    """A fake run folder with the files compare and blend read (run.json, config.yaml, folds.csv, .npy; a finished
    one's metrics.json, by default its OOF accuracy as its fold models' own score)."""
    folder = root / competition / run_id
    folder.mkdir(parents=True)
    wall_seconds = 12.5 if status == "finished" else None
    record = fake_record(folder, status, started="2026-01-02T03:04:05+00:00", wall_seconds=wall_seconds)
    (folder / "run.json").write_text(json.dumps(record))
    (folder / "config.yaml").write_text(yaml.safe_dump(BASE_CONFIG | (config or {})))
    pd.DataFrame({"row": rows, "label": labels, "fold": folds}).to_csv(folder / "folds.csv", index=False)
    np.save(folder / "oof.npy", oof.astype(np.float32))
    for name, array in (arrays or {}).items():
        np.save(folder / f"{name}.npy", array.astype(np.float32))
    if metrics is None and status == "finished":
        metrics = fake_metrics(float((oof.argmax(axis=1) == labels).mean()), n_train_rows=len(rows))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


# ---------------------------------------------------------------------------
# McNemar and Wilson, against values worked out by hand
# ---------------------------------------------------------------------------


def test_mcnemar_five_discordant_rows_all_for_a():
    correct_a = np.array([True] * 5 + [True] * 10 + [False] * 3)
    correct_b = np.array([False] * 5 + [True] * 10 + [False] * 3)
    result = mcnemar(correct_a, correct_b)
    assert (result.n, result.only_a, result.only_b) == (18, 5, 0)
    assert result.p_value == pytest.approx(2 * 0.5**5)  # 0.0625: not significant
    assert not result.significant
    assert result.acc_a == pytest.approx(15 / 18) and result.acc_b == pytest.approx(10 / 18)


def test_mcnemar_balanced_and_identical_give_p_one():
    correct_a = np.array([True, True, True, False, False, False, True])
    correct_b = np.array([False, False, False, True, True, True, True])
    assert mcnemar(correct_a, correct_b).p_value == pytest.approx(1.0)
    same = mcnemar(correct_a, correct_a)
    assert (same.only_a, same.only_b, same.p_value) == (0, 0, 1.0)
    assert "same rows" in verdict(same)


def test_wilson_interval_matches_hand_computation():
    # 8 of 10 right, z = 1.96: centre (0.8 + z^2/20) / (1 + z^2/10), half-width z*sqrt(0.016 + z^2/400) / (1 + z^2/10).
    result = mcnemar(np.array([True] * 8 + [False] * 2), np.array([True] * 10))
    assert result.ci_a == pytest.approx((0.49016, 0.94332), abs=1e-5)
    assert result.ci_b[1] == pytest.approx(1.0)


def test_small_gap_on_many_rows_is_noise_and_large_gap_is_not():
    n = 60_000
    # A right on 530 rows B missed, B right on 500 rows A missed: a gap of 30 / 60,000 = 0.0005.
    correct_a = np.ones(n, bool)
    correct_b = np.ones(n, bool)
    correct_b[:530] = False
    correct_a[530:1030] = False
    noise = mcnemar(correct_a, correct_b)
    assert noise.acc_a - noise.acc_b == pytest.approx(0.0005)
    assert not noise.significant and "likely noise" in verdict(noise)
    correct_a[530:1030] = True  # now B never beats A on a row
    real = mcnemar(correct_a, correct_b)
    assert real.significant and "A really beats B" in verdict(real)


# ---------------------------------------------------------------------------
# Aligning two runs by folds.csv's `row`
# ---------------------------------------------------------------------------


def test_alignment_uses_only_rows_both_scored_in_row_order(tmp_path):
    labels = np.arange(20) % 10
    rows_a = np.arange(0, 12)
    rows_b = np.array([19, 15, 11, 9, 7, 5, 3, 1, 17, 13])  # another subset, in another order
    write_run(tmp_path, "20260101-000000-default-aaaa", rows_a, labels[rows_a], rows_a % 2, one_hot(labels[rows_a]))
    wrong = (labels[rows_b] + 1) % 10
    write_run(tmp_path, "20260101-000001-default-bbbb", rows_b, labels[rows_b], rows_b % 3, one_hot(wrong))
    runs = [load_run(p) for p in sorted((tmp_path / COMPETITION).iterdir())]
    aligned = aligned_oof(runs)
    np.testing.assert_array_equal(aligned.rows, [1, 3, 5, 7, 9, 11])
    np.testing.assert_array_equal(aligned.labels, labels[[1, 3, 5, 7, 9, 11]])
    np.testing.assert_array_equal(aligned.probabilities[1].argmax(axis=1), (labels[aligned.rows] + 1) % 10)
    np.testing.assert_array_equal(aligned.folds[1], aligned.rows % 3)
    assert aligned.scored == [12, 10]

    text = compare_pair(tmp_path, COMPETITION, "20260101-000000", "20260101-000001")
    assert "only A right on 6, only B on 0" in text
    assert "6 train rows both scored" in text
    assert "different train rows" in text and "folds differ" in text
    assert "p = 0.0312" in text  # 2 * 0.5**6


def test_same_split_with_other_fold_numbers_is_not_flagged(tmp_path):
    rows = np.arange(10)
    labels = rows % 10
    write_run(tmp_path, "20260101-000000-default-aaaa", rows, labels, rows % 2, one_hot(labels))
    write_run(tmp_path, "20260101-000001-default-bbbb", rows, labels, 1 - rows % 2, one_hot(labels))
    text = compare_pair(tmp_path, COMPETITION, "20260101-000000", "latest")
    assert "note:" not in text
    assert "exactly the same rows" in text


def test_pair_refuses_unfinished_disjoint_or_contradicting_runs(tmp_path):
    rows = np.arange(10)
    labels = rows % 10
    write_run(tmp_path, "20260101-000000-default-aaaa", rows, labels, rows % 2, one_hot(labels))
    write_run(tmp_path, "20260101-000001-default-bbbb", rows + 10, labels, rows % 2, one_hot(labels))
    write_run(tmp_path, "20260101-000002-default-cccc", rows, labels, rows % 2, one_hot(labels), status="running")
    write_run(tmp_path, "20260101-000003-default-dddd", rows, (labels + 1) % 10, rows % 2, one_hot(labels))
    with pytest.raises(UserError, match="no train row in common"):
        compare_pair(tmp_path, COMPETITION, "20260101-000000", "20260101-000001")
    with pytest.raises(UserError, match="not finished"):
        compare_pair(tmp_path, COMPETITION, "20260101-000000", "20260101-000002")
    with pytest.raises(UserError, match="different labels"):
        compare_pair(tmp_path, COMPETITION, "20260101-000000", "20260101-000003")
    with pytest.raises(UserError, match="no run"):
        compare_pair(tmp_path, COMPETITION, "20260101-000000", "nope")


# ---------------------------------------------------------------------------
# The table of all runs
# ---------------------------------------------------------------------------


def write_table_runs(root: Path) -> None:
    rows = np.arange(10)
    labels = rows % 10
    for run_id, score, config in [
        ("20260101-000000-default-aaaa", 0.90, {}),
        ("20260101-000001-wide-bbbb", 0.95, {"lr": 0.01}),
        ("20260101-000002-default-cccc", 0.80, {"epochs": 30}),
    ]:
        metrics = fake_metrics(score, {"holdout": score - 0.1})
        write_run(root, run_id, rows, labels, rows % 2, one_hot(labels), config=config, metrics=metrics)
    write_run(root, "20260101-000003-smoke-dddd", rows, labels, rows % 2, one_hot(labels), status="running")


def test_table_is_best_first_with_unfinished_last_and_only_differing_keys(tmp_path):
    write_table_runs(tmp_path)
    table = compare_table(tmp_path, COMPETITION)
    assert table["run_id"].str[-4:].tolist() == ["bbbb", "aaaa", "cccc", "dddd"]
    assert table["preset"].tolist() == ["wide", "default", "default", "smoke"]
    assert table["status"].tolist() == ["finished", "finished", "finished", "unfinished"]
    assert table["score"].iloc[:3].tolist() == [0.95, 0.90, 0.80] and table["judged on"].iloc[0] == "OOF"
    assert table["oof_accuracy"].iloc[:3].tolist() == [0.95, 0.90, 0.80]
    assert np.isnan(table["oof_accuracy"].iloc[3]) and np.isnan(table["wall_seconds"].iloc[3])
    assert table["holdout_accuracy"].iloc[0] == pytest.approx(0.85)
    # lr differs between runs; dropout and model do not; epochs and width (the submitted models') have their own.
    assert "lr" in table.columns and "dropout" not in table.columns and "model" not in table.columns
    assert table["lr"].tolist() == [0.01, 0.005, 0.005, 0.005]
    assert table["epochs"].tolist() == ["12", "12", "30", "12"] and set(table["width"]) == {"32"}
    assert table["folds x seeds"].iloc[0] == "5x1"
    assert table["date"].iloc[0] == "2026-01-02 03:04"


def test_print_compare_writes_csv_and_marks_unfinished(tmp_path, capsys):
    write_table_runs(tmp_path)
    path = print_compare(tmp_path, COMPETITION)
    assert path == tmp_path / COMPETITION / "compare.csv"
    saved = pd.read_csv(path)
    assert saved["run_id"].str[-4:].tolist() == ["bbbb", "aaaa", "cccc", "dddd"]
    out = capsys.readouterr().out
    assert "0.95000" in out and "1 unfinished run" in out and str(path) in out
    assert compare_table(tmp_path, COMPETITION)["run_id"].tolist() == saved["run_id"].tolist()  # the CSV is no run


def test_no_runs_is_a_user_error(tmp_path):
    assert compare_table(tmp_path, COMPETITION).empty
    with pytest.raises(UserError, match="no runs of digits"):
        print_compare(tmp_path, COMPETITION)


def test_pair_tests_each_extra_set_both_runs_predicted(tmp_path, digits_dir, monkeypatch):
    from common.data.files import load_dataset
    from common.ground.spec import get_spec

    truth = load_dataset(get_spec(COMPETITION), str(digits_dir)).extras["sklearn_test"].labels
    rows = np.arange(10)
    for run_id, holdout in [("20260101-000000-default-aaaa", truth), ("20260101-000001-default-bbbb", truth[::-1])]:
        arrays = {"sklearn_test": one_hot(holdout)}
        write_run(tmp_path, run_id, rows, rows % 10, rows % 2, one_hot(rows % 10), arrays=arrays)
    wrong = int((truth[::-1] != truth).sum())
    text = compare_pair(tmp_path, COMPETITION, "20260101-000000", "20260101-000001", data_dir=str(digits_dir))
    assert f"sklearn_test: A 1.00000, B {1 - wrong / len(truth):.5f}; only A right on {wrong}, only B on 0;" in text

    def no_files(spec, data_dir):
        raise UserError("no digits files found")

    monkeypatch.setattr("common.commands.compare.load_dataset", no_files)  # OOF needs no data files: only a note
    text = compare_pair(tmp_path, COMPETITION, "20260101-000000", "20260101-000001")
    assert "note: extra sets not compared: no digits files found" in text and "sklearn_test: A" not in text


def test_compare_notes_when_two_runs_trained_on_different_steps(tmp_path):
    fused = "tensorflow on CPU (x, 2 cores), float32, jit off, fused BatchNorm on, affine native, 2 threads"
    jax = "jax on CPU (x, 2 cores), float32, jit on, fused BatchNorm off, affine native"
    rows = np.arange(20)
    for run_id, hardware in (("20260101-000000-default-aaaa", fused), ("20260101-000001-default-bbbb", fused),
                             ("20260101-000002-default-cccc", jax)):  # fmt: skip
        folder = write_run(tmp_path, run_id, rows, rows % 10, rows % 2, one_hot(rows % 10))
        record = json.loads((folder / "run.json").read_text()) | {"hardware": [hardware]}
        (folder / "run.json").write_text(json.dumps(record))

    assert "different steps" not in compare_pair(tmp_path, COMPETITION, "20260101-000000", "20260101-000001")
    out = compare_pair(tmp_path, COMPETITION, "20260101-000000", "20260101-000002")
    assert f"note: the runs trained on different steps: A {fused}; B {jax}" in out.splitlines()
