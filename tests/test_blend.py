"""common/commands/blend.py: weighted means of run folders' probabilities, written as a run folder of its own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from common.commands.blend import blend_runs
from common.commands.compare import compare_table
from common.data.files import load_dataset
from common.ground.errors import UserError
from common.ground.spec import get_spec
from common.runs import load_run
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
    rows_b = np.random.default_rng(0).permutation(rows_a)  # the same rows, in another order
    a = write_digits_run(tmp_path, RUN_A, rows_a, train_labels, seed=10)
    b = write_digits_run(tmp_path, RUN_B, rows_b, train_labels, seed=20)

    folder = blend_runs(tmp_path, "digits", ["20260101-000000", RUN_B], weights=[3, 1], data_dir=digits_dir)

    assert "-blend-" in folder.name
    folds = pd.read_csv(folder / "folds.csv")
    np.testing.assert_array_equal(folds["row"], rows_a)
    np.testing.assert_array_equal(folds["label"], train_labels[rows_a])
    np.testing.assert_array_equal(folds["fold"], rows_a % 4)  # the first run's folds
    oof_b = np.load(b / "oof.npy")[pd.Index(rows_b).get_indexer(rows_a)]
    expected_oof = 0.75 * np.load(a / "oof.npy") + 0.25 * oof_b
    np.testing.assert_allclose(np.load(folder / "oof.npy"), expected_oof, rtol=1e-6)
    for name in ("test", "sklearn_test"):
        expected = 0.75 * np.load(a / f"{name}.npy") + 0.25 * np.load(b / f"{name}.npy")
        np.testing.assert_allclose(np.load(folder / f"{name}.npy"), expected, rtol=1e-6)

    metrics = json.loads((folder / "metrics.json").read_text())
    config = load_run(folder).blend
    assert config.sources == (RUN_A, RUN_B) and config.weights == (0.75, 0.25)
    blended_accuracy = (expected_oof.argmax(axis=1) == train_labels[rows_a]).mean()
    assert metrics["oof_accuracy"] == pytest.approx(blended_accuracy)
    assert set(metrics["extra_accuracy"]) == {"sklearn_test"} and len(metrics["per_class"]) == 11
    assert set(metrics["inputs"]) == {RUN_A, RUN_B}
    # The blend submits both runs' fold models, which OOF judges: it is ranked by its OOF.
    assert metrics["submitted"]["signal"] == "oof" and metrics["submitted"]["accuracy"] == metrics["oof_accuracy"]
    assert len(metrics["submitted"]["units"]) == 10
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "finished"
    assert [Path(f["path"]).name for f in record["data_files"]] == ["sklearn-digits.zip"]  # what the blend read
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
        ([RUN_A, RUN_B], None, f"different train rows \\({RUN_A}: 600, {RUN_B}: 600; 0 in common\\)"),
        ([RUN_A, "20260101-000004"], [1.0], "2 runs"),
        ([RUN_A, "20260101-000004"], [1.0, -1.0], "non-negative"),
        ([RUN_A, "20260101-000004"], ["oof", "1"], "one number per run, or 'oof' alone, got 'oof'"),
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


def run_command(capsys, *args: str) -> tuple[int, str, str]:
    """`python run.py ARGS` as a user types it, in this process: (exit status, stdout, stderr)."""
    import run

    status = run.main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_blend_header_keeps_long_set_names_apart(tmp_path, digits_dir, train_labels, monkeypatch, capsys):
    """The scores table names every column once, however long the set names (sklearn_test_report: 19 letters)."""
    from dataclasses import replace

    import common.commands.blend as blend

    monkeypatch.setattr(blend, "get_spec", lambda name: replace(get_spec("digits"), judged_sets=("sklearn_test",)))
    rows = np.arange(0, 600)
    write_digits_run(tmp_path, RUN_A, rows, train_labels, seed=1)
    write_digits_run(tmp_path, RUN_B, rows, train_labels, seed=2)
    status, out, err = run_command(
        capsys, "blend", "digits", RUN_A, RUN_B, "--data-dir", str(digits_dir), "--out", str(tmp_path)
    )
    assert status == 0, err
    lines = out.strip().splitlines()
    header = next(line for line in lines if "weight" in line)
    assert header.split() == ["weight", "oof", "sklearn_test", "sklearn_test_pick", "sklearn_test_report"]
    body = lines[lines.index(header) + 1 : lines.index(header) + 4]
    assert [line.split()[0] for line in body] == [RUN_A, RUN_B, "blend"]
    assert [len(line.split()) for line in body] == [6, 6, 5]  # the blend has no weight of its own


def test_a_10000_row_run_and_a_50_row_run_are_not_blended(tmp_path, digits_dir, train_labels, capsys):
    """`blend` of a run of every train row with a run of 50 was scored on those 50 rows and topped `compare`: now
    it is one line naming each run's rows, exit status 2, and no run folder."""
    every, fifty = np.arange(len(train_labels)), np.arange(0, 1300, 26)
    write_digits_run(tmp_path, RUN_A, every, train_labels, seed=1)
    write_digits_run(tmp_path, RUN_B, fifty, train_labels, seed=2)
    before = run_folders(tmp_path)
    status, out, err = run_command(
        capsys, "blend", "digits", RUN_A, RUN_B, "--data-dir", str(digits_dir), "--out", str(tmp_path)
    )
    assert status == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(
        f"error: blend: the runs scored different train rows ({RUN_A}: 1300, {RUN_B}: 50; 50 in common)"
    )
    assert run_folders(tmp_path) == before
    status, out, _ = run_command(capsys, "compare", "digits", "--out", str(tmp_path))
    assert status == 0 and "blend" not in out


def fitted_run(root: Path, run_id: str, rows: np.ndarray, labels: np.ndarray, sharpness: float, seed: int) -> Path:
    """A run whose OOF puts `sharpness` of each row's mass on its true label (0: no better than chance)."""
    noise = probabilities(len(rows), seed)
    oof = sharpness * np.eye(10, dtype=np.float32)[labels[rows]] + (1 - sharpness) * noise
    arrays = {"test": probabilities(N_TEST, seed + 1), "sklearn_test": probabilities(N_EXTRA, seed + 2)}
    return write_run(root, run_id, rows, labels[rows], rows % 4, oof, arrays=arrays)


def log_loss(arrays: list[np.ndarray], labels: np.ndarray, weights: np.ndarray) -> float:
    mixture = sum(w * a[np.arange(len(labels)), labels] for w, a in zip(weights, arrays, strict=True))
    return float(-np.log(np.maximum(mixture, 1e-15)).mean())


def test_weights_oof_fits_on_other_folds_and_scores_each_fold_out_of_fold(tmp_path, digits_dir, train_labels, capsys):
    """--weights oof: the fitted weights are the lowest log-loss on OOF (no weight on a grid does better), the
    good run gets most of the weight, and the blend's OOF is cross-fitted: each fold blended with weights fitted
    on the other three, which is the score it reports."""
    rows = np.arange(0, 800)
    a = fitted_run(tmp_path, RUN_A, rows, train_labels, 0.5, seed=1)
    b = fitted_run(tmp_path, RUN_B, rows, train_labels, 0.1, seed=2)
    status, out, err = run_command(
        capsys,
        "blend",
        "digits",
        RUN_A,
        RUN_B,
        "--weights",
        "oof",
        "--data-dir",
        str(digits_dir),
        "--out",
        str(tmp_path),
    )
    assert status == 0, err
    (folder,) = [tmp_path / "digits" / name for name in run_folders(tmp_path) if "-blend-" in name]
    metrics = json.loads((folder / "metrics.json").read_text())
    oofs, labels, folds = [np.load(f / "oof.npy") for f in (a, b)], train_labels[rows], rows % 4
    weights = np.array(load_run(folder).blend.weights)
    grid = [np.array([w, 1 - w]) for w in np.linspace(0, 1, 201)]
    assert log_loss(oofs, labels, weights) <= min(log_loss(oofs, labels, w) for w in grid) + 1e-6
    assert weights[0] > 0.7 and weights.sum() == pytest.approx(1.0)
    fit = metrics["weights_fit"]
    assert fit["on"] == "oof" and fit["cv_folds"] == 4
    cross_fitted = np.zeros_like(oofs[0])
    for fold in range(4):
        held = folds == fold
        fold_weights = np.array(fit["weights_by_fold"][str(fold)])
        grid_best = min(log_loss([o[~held] for o in oofs], labels[~held], w) for w in grid)
        assert log_loss([o[~held] for o in oofs], labels[~held], fold_weights) <= grid_best + 1e-6
        cross_fitted[held] = fold_weights[0] * oofs[0][held] + fold_weights[1] * oofs[1][held]
    np.testing.assert_allclose(np.load(folder / "oof.npy"), cross_fitted, atol=1e-6)
    assert metrics["oof_accuracy"] == pytest.approx((cross_fitted.argmax(1) == labels).mean())
    # The fold models are judged on OOF: the blend's own score is the cross-fitted one, not the fit's own rows'.
    assert metrics["submitted"]["signal"] == "oof" and metrics["submitted"]["accuracy"] == metrics["oof_accuracy"]
    expected_test = weights[0] * np.load(a / "test.npy") + weights[1] * np.load(b / "test.npy")
    np.testing.assert_allclose(np.load(folder / "test.npy"), expected_test, atol=1e-6)
    assert "weights fitted on OOF by scipy.optimize.minimize (SLSQP)" in out
    assert "cross-validated over 4 folds" in out
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["fitted_on"] == "oof" and config["weights"] == pytest.approx(weights.tolist())


def test_weights_oof_without_oof_fits_on_the_shared_holdout(tmp_path, digits_dir, train_labels, capsys):
    from common.data.trainset import holdout_table

    data = load_dataset(get_spec("digits"), digits_dir)
    held = holdout_table(data, 0.1).labels
    for run_id, sharpness, seed in [(RUN_A, 0.5, 1), (RUN_B, 0.0, 2)]:
        holdout = sharpness * np.eye(10, dtype=np.float32)[held] + (1 - sharpness) * probabilities(len(held), seed)
        arrays = {
            "train_holdout": holdout,
            "test": probabilities(N_TEST, seed),
            "sklearn_test": probabilities(N_EXTRA, seed),
        }
        folder = write_run(
            tmp_path,
            run_id,
            np.arange(10),
            train_labels[:10],
            np.full(10, -1),
            probabilities(10, 0),
            arrays=arrays,
            config={"folds": 0, "full_models": 1, "holdout": 0.1},
        )
        (folder / "oof.npy").unlink()  # no fold models
    status, out, err = run_command(
        capsys,
        "blend",
        "digits",
        RUN_A,
        RUN_B,
        "--weights",
        "oof",
        "--data-dir",
        str(digits_dir),
        "--out",
        str(tmp_path),
    )
    assert status == 0, err
    (folder,) = [tmp_path / "digits" / name for name in run_folders(tmp_path) if "-blend-" in name]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["weights_fit"]["on"] == "train_holdout" and metrics["weights_fit"]["cv_folds"] == 5
    assert load_run(folder).blend.weights[0] > 0.7 and metrics["oof_accuracy"] is None
    blended = np.load(folder / "train_holdout.npy")
    assert metrics["extra_accuracy"]["train_holdout"] == pytest.approx((blended.argmax(1) == held).mean())
    submitted = metrics["submitted"]  # full-data models, judged on the holdout: its cross-fitted score
    assert (
        submitted["signal"] == "train_holdout" and submitted["accuracy"] == metrics["extra_accuracy"]["train_holdout"]
    )
    assert "cross-validated over 5 stratified parts of the holdout" in out


def test_weights_oof_with_nothing_to_fit_on_is_one_line(tmp_path, digits_dir, train_labels, capsys):
    for run_id, seed in [(RUN_A, 1), (RUN_B, 2)]:
        folder = write_digits_run(
            tmp_path, run_id, np.arange(10), train_labels, seed, config={"folds": 0, "full_models": 1}
        )
        (folder / "oof.npy").unlink()
    status, _, err = run_command(
        capsys,
        "blend",
        "digits",
        RUN_A,
        RUN_B,
        "--weights",
        "oof",
        "--data-dir",
        str(digits_dir),
        "--out",
        str(tmp_path),
    )
    assert status == 2 and err.count("\n") == 1
    assert "--weights oof: the runs have no OOF (no fold models) and no holdout in common to fit weights on" in err


def test_rank_blend_averages_each_classs_rank_and_cannot_predict_images(tmp_path, digits_dir, train_labels, capsys):
    rows = np.arange(0, 600)
    sources = [write_digits_run(tmp_path, run_id, rows, train_labels, seed=s) for run_id, s in [(RUN_A, 1), (RUN_B, 2)]]
    status, out, err = run_command(
        capsys,
        "blend",
        "digits",
        RUN_A,
        RUN_B,
        "--rank",
        "--weights",
        "3",
        "1",
        "--data-dir",
        str(digits_dir),
        "--out",
        str(tmp_path),
    )
    assert status == 0, err
    assert "(--rank: each class's rank over a set's rows averaged, not its probabilities)" in out
    (folder,) = [tmp_path / "digits" / name for name in run_folders(tmp_path) if "-blend-" in name]
    # Its sources were made to be submitted, so it is the competition's latest though its models cannot predict.
    latest = tmp_path / "digits" / "submission.csv"
    assert f"{folder / 'submission.csv'} (also {latest})" in out and "submitted:   10 models of 2 runs" in out
    assert latest.read_bytes() == (folder / "submission.csv").read_bytes()

    def ranks(array: np.ndarray) -> np.ndarray:  # pandas' ranks, scaled to the rows, each row to sum 1
        frame = pd.DataFrame(array).rank(axis=0) / len(array)
        return (frame.div(frame.sum(axis=1), axis=0)).to_numpy()

    for name in ("oof", "test", "sklearn_test"):
        expected = 0.75 * ranks(np.load(sources[0] / f"{name}.npy")) + 0.25 * ranks(np.load(sources[1] / f"{name}.npy"))
        np.testing.assert_allclose(np.load(folder / f"{name}.npy"), expected, atol=1e-6)
    image = tmp_path / "digit.png"
    from PIL import Image

    seven = np.full((28, 28), 255, np.uint8)
    seven[6:22, 13:16] = 0  # one dark stroke on light paper
    Image.fromarray(seven).save(image)
    status, out, err = run_command(capsys, "predict", "digits", folder.name, str(image), "--out", str(tmp_path))
    assert status == 2 and err.count("\n") == 1 and "averages ranks over each set's rows (--rank)" in err


def test_compare_keeps_integer_settings_whole_beside_a_blend(tmp_path, digits_dir, train_labels, capsys):
    rows = np.arange(0, 600)
    write_digits_run(tmp_path, RUN_A, rows, train_labels, seed=1, config={"batch_size": 32, "width": 8})
    write_digits_run(tmp_path, RUN_B, rows, train_labels, seed=2, config={"batch_size": 64, "width": 16})
    assert (
        run_command(capsys, "blend", "digits", RUN_A, RUN_B, "--data-dir", str(digits_dir), "--out", str(tmp_path))[0]
        == 0
    )
    status, out, _ = run_command(capsys, "compare", "digits", "--out", str(tmp_path))
    header, *lines = out.split("\n\n")[0].splitlines()

    def column(name: str) -> list[str]:  # pandas right-aligns a column under its name
        end = header.index(f" {name}") + len(f" {name}")
        return sorted(line[:end].split()[-1] for line in lines)

    assert status == 0 and column("batch_size") == ["-", "32", "64"]
    assert column("width") == ["16", "8", "8/16"]  # the submitted models': a blend's are its sources'
