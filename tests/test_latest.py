"""One meaning of "latest" (common/runs/latest.py) and rankings by the submitted models' own score, as a user meets
them: run.py's commands, their exit status and their output, on tiny competitions cut from scikit-learn's digits."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import run
from common.data.synthetic import digits_as_mnist
from common.ground.spec import PIXEL_COLUMNS
from tests.kaggle_fakes import make_run, no_kaggle  # noqa: F401 - fixtures
from tests.run_fakes import fake_metrics

TINY = ["model=mlp", "epochs=1", "tta=0"]  # a second's training on a few hundred rows
N_TRAIN, N_TEST, N_DIG = 400, 40, 100


def pixels(images: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(images.reshape(len(images), -1), columns=list(PIXEL_COLUMNS))


def with_first(column: str, values: np.ndarray, frame: pd.DataFrame) -> pd.DataFrame:
    frame.insert(0, column, values)
    return frame


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    images, labels = digits_as_mnist()
    order = np.random.default_rng(1).permutation(len(images))
    return images[order], labels[order]


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory, digits) -> Path:
    """digit-recognizer's files: train.csv (label, pixels), test.csv (pixels), sample_submission.csv."""
    images, labels = digits
    folder = tmp_path_factory.mktemp("digit-recognizer")
    with_first("label", labels[:N_TRAIN], pixels(images[:N_TRAIN])).to_csv(folder / "train.csv", index=False)
    pixels(images[N_TRAIN : N_TRAIN + N_TEST]).to_csv(folder / "test.csv", index=False)
    sample = pd.DataFrame({"ImageId": np.arange(1, N_TEST + 1), "Label": 0})
    sample.to_csv(folder / "sample_submission.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def kannada_dir(tmp_path_factory, digits) -> Path:
    """Kannada-MNIST's files: train.csv, test.csv (id, pixels), Dig-MNIST.csv (the judged set), the sample."""
    images, labels = digits
    folder = tmp_path_factory.mktemp("Kannada-MNIST")
    with_first("label", labels[:N_TRAIN], pixels(images[:N_TRAIN])).to_csv(folder / "train.csv", index=False)
    test = slice(N_TRAIN, N_TRAIN + N_TEST)
    with_first("id", np.arange(N_TEST), pixels(images[test])).to_csv(folder / "test.csv", index=False)
    dig = slice(N_TRAIN + N_TEST, N_TRAIN + N_TEST + N_DIG)
    with_first("label", labels[dig], pixels(images[dig])).to_csv(folder / "Dig-MNIST.csv", index=False)
    pd.DataFrame({"id": np.arange(N_TEST), "label": 0}).to_csv(folder / "sample_submission.csv", index=False)
    return folder


def cli(capsys, *args: str | Path) -> tuple[int, str, str]:
    """python run.py ARGS, in this process: its exit status, stdout and stderr."""
    status = run.main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def started(folder: Path) -> str:
    """When the run started, to the millisecond (its id holds the second only: two runs may share it)."""
    return json.loads((folder / "run.json").read_text())["started"]


def newest(out: Path, competition: str) -> Path:
    """The run folder started last."""
    return max((p for p in (out / competition).iterdir() if (p / "run.json").is_file()), key=started)


# ---------------------------------------------------------------------------
# Two meanings of "latest"
# ---------------------------------------------------------------------------


@pytest.mark.slow  # trains five tiny runs
def test_every_command_takes_one_latest_run_and_a_trying_run_never_replaces_the_submission(mnist_dir, tmp_path, capsys):
    """A blend made while a run trains, then that run finishes: the competition's submission.csv, submit,
    predict, report and kernel all take the run that finished last, and each says which and why. A smoke run
    and a subset run finish later still, and leave it alone."""
    out, data = tmp_path / "runs", ["--data-dir", mnist_dir, "--out", tmp_path / "runs"]
    assert cli(capsys, "mnist", *TINY, "folds=2", *data)[0] == 0
    a = newest(out, "mnist")
    assert cli(capsys, "mnist", *TINY, "folds=2", "lr=0.01", *data)[0] == 0
    b = newest(out, "mnist")
    assert cli(capsys, "mnist", *TINY, "folds=2", "--fold", "0", "--seed", "0", *data)[0] == 0  # still training
    late = newest(out, "mnist")
    assert cli(capsys, "blend", "mnist", a.name, b.name, *data)[0] == 0
    blend = newest(out, "mnist")
    status, printed, _ = cli(capsys, "mnist", "--resume", late.name, "--fold", "1", "--seed", "0", *data)
    assert (
        status == 0 and f"submission:  {late / 'submission.csv'} (also {out / 'mnist' / 'submission.csv'})" in printed
    )
    assert started(blend) > started(late)  # the blend started last; the run finished last
    latest = f"run {late.name}: the latest: the last to finish"
    assert (out / "mnist" / "submission.csv").read_bytes() == (late / "submission.csv").read_bytes()

    status, printed, _ = cli(capsys, "submit", "mnist", "--dry-run", "--yes", *data)
    assert status == 0 and printed.startswith("dry run: checks passed; would submit\n" + latest)
    assert f"file:        {late / 'submission.csv'}" in printed
    assert "submits:     2 fold models (1 epoch, width 16): 0." in printed and " on OOF" in printed
    assert f"preset:      default; {N_TRAIN} training rows" in printed
    status, printed, _ = cli(capsys, "report", "mnist", *data)
    assert status == 0 and printed.startswith(latest)
    image = tmp_path / "seven.png"
    cv2.imwrite(str(image), cv2.line(np.full((40, 40), 255, np.uint8), (20, 5), (14, 35), 0, 4))  # dark ink
    status, printed, _ = cli(capsys, "predict", "mnist", "latest", image, "--out", out)
    assert status == 0 and printed.startswith(latest)
    status, printed, _ = cli(capsys, "kernel", "mnist", "--dest", tmp_path / "kernel", "--out", out)
    assert status == 0 and printed.startswith(latest)
    assert json.loads((tmp_path / "kernel" / "dataset" / "ensemble.json").read_text())["run_id"] == late.name

    status, printed, _ = cli(capsys, "mnist", "--preset", "smoke", *TINY, "max_train_rows=200", *data)
    smoke = newest(out, "mnist")
    assert status == 0 and f"(not {out / 'mnist' / 'submission.csv'}: a smoke run (--preset smoke))" in printed
    assert cli(capsys, "mnist", *TINY, "folds=2", "max_train_rows=200", *data)[0] == 0
    subset = newest(out, "mnist")
    assert (out / "mnist" / "submission.csv").read_bytes() == (late / "submission.csv").read_bytes()
    assert cli(capsys, "report", "mnist", *data)[1].startswith(latest)

    for trying, why in [(smoke, "a smoke run (--preset smoke)"), (subset, "trained on a subset (max_train_rows=200)")]:
        status, printed, error = cli(capsys, "submit", "mnist", trying.name, "--dry-run", *data)
        assert status == 2 and printed == "" and error.count("\n") == 1
        assert f"run {trying.name} is {why}; submit it anyway with --yes" in error
    status, printed, _ = cli(capsys, "submit", "mnist", smoke.name, "--dry-run", "--yes", *data)
    assert (
        status == 0 and f"run {smoke.name}: as named" in printed and "preset:      smoke; 200 training rows" in printed
    )


def test_with_only_trying_runs_a_command_takes_the_last_and_says_why(tmp_path, capsys):
    folder = make_run(tmp_path, "mnist", b"ImageId,Label\n1,3\n", run_id="20260101-000000-smoke-abcd")
    printed = cli(capsys, "kernel", "mnist", "--dest", tmp_path / "kernel", "--out", tmp_path)[1]  # it saved no models
    assert printed.startswith(f"run {folder.name}: the last run to finish, though a smoke run (--preset smoke): no")
    assert "finished run of mnist is made to be submitted" in printed.splitlines()[0]


# ---------------------------------------------------------------------------
# submit: the score it sends, and a run below the best
# ---------------------------------------------------------------------------


@pytest.mark.usefixtures("no_kaggle")  # a dry run never imports the kaggle package
def test_submit_refuses_a_run_scoring_below_the_best_on_its_signal_unless_yes(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("label,pixel0\n")
    pd.DataFrame({"ImageId": [1, 2], "Label": 0}).to_csv(data / "sample_submission.csv", index=False)
    good = make_run(
        tmp_path,
        "mnist",
        b"ImageId,Label\n1,3\n2,4\n",
        metrics=fake_metrics(0.99),
        run_id="20260101-000000-default-aaaa",
    )
    worse = make_run(
        tmp_path,
        "mnist",
        b"ImageId,Label\n1,3\n2,4\n",
        metrics=fake_metrics(0.98),
        run_id="20260101-000001-default-bbbb",
    )
    other = fake_metrics(0.999, {"train_holdout": 0.97}, signal="train_holdout")  # another signal: not a rival
    make_run(tmp_path, "mnist", b"ImageId,Label\n1,3\n2,4\n", metrics=other, run_id="20260101-000002-default-cccc")
    args = ["submit", "mnist", worse.name, "--dry-run", "--data-dir", data, "--out", tmp_path]
    status, printed, error = cli(capsys, *args)
    assert status == 2 and printed == "" and error.count("\n") == 1
    assert f"run {worse.name} scores 0.98000 on OOF, below run {good.name}'s 0.99000: submit it anyway" in error
    status, printed, _ = cli(capsys, *args, "--yes")
    assert status == 0 and "submits:     2 fold models (" in printed and "0.98000 on OOF" in printed
    assert f"message:     run {worse.name}, 0.98000 on OOF" in printed
    assert cli(capsys, "submit", "mnist", good.name, "--dry-run", "--data-dir", data, "--out", tmp_path)[0] == 0


# ---------------------------------------------------------------------------
# Rankings by the signal that judges the submission
# ---------------------------------------------------------------------------


@pytest.mark.slow  # trains two tiny runs
def test_kannada_runs_are_ranked_on_dig_mnist_by_their_submitted_models(kannada_dir, tmp_path, capsys):
    """Kannada's default shape submits one full-data model, trained longer than its fold models; the fast preset
    trains that model alone (no OOF). Both are ranked by Dig-MNIST's reporting half of the model each submits,
    and the list shows the submitted model's epochs."""
    out, data = tmp_path / "runs", ["--data-dir", kannada_dir, "--out", tmp_path / "runs"]
    status, printed, _ = cli(capsys, "kannada", *TINY, "--folds", "2", "full_epochs=2", *data)
    default = newest(out, "kannada")
    assert status == 0
    assert next(line for line in printed.splitlines() if line.startswith("dig_mnist_report (full)")).endswith(
        "<- judges the submission"
    )
    assert "submitted:   1 full-data model (2 epochs, width 16): 0." in printed and " on dig_mnist_report" in printed
    assert "<b>Submitted: 1 full-data model (2 epochs" in (default / "report.html").read_text()
    assert cli(capsys, "kannada", "--preset", "fast", *TINY, "full_epochs=3", *data)[0] == 0
    fast = newest(out, "kannada")

    status, printed, _ = cli(capsys, "compare", "kannada", "--out", out)
    assert status == 0 and "ranked by score: the submitted models' own accuracy" in printed
    table = pd.read_csv(out / "kannada" / "compare.csv", dtype={"epochs": str}).set_index("run_id")
    assert table["score"].notna().all() and table["score"].is_monotonic_decreasing  # fast has no OOF, still ranked
    assert set(table["judged on"]) == {"dig_mnist_report"}
    assert table.loc[default.name, "epochs"] == "2" and table.loc[fast.name, "epochs"] == "3"  # not the folds' 1
    metrics = {run: json.loads((run / "metrics.json").read_text()) for run in (default, fast)}
    for folder, row in table.iterrows():
        submitted = metrics[out / "kannada" / folder]["submitted"]
        assert row["score"] == pytest.approx(submitted["accuracy"])
        assert submitted["accuracy"] == metrics[out / "kannada" / folder]["extra_accuracy"]["dig_mnist_report"]

    status, printed, _ = cli(capsys, "compare", "kannada", fast.name, default.name, *data)
    lines = printed.splitlines()
    assert status == 0 and lines[0].startswith("judged on dig_mnist_report, the signal of both runs' submitted")
    assert " ".join(lines[1].split()).startswith(f"A {fast.name} submits 1 full-data model (3 epochs, width 16): ")
    assert lines[4].startswith("dig_mnist_report: A ")  # after the header and the note on A's missing OOF
