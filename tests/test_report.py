"""common/runs/report.py and common/commands/report.py: figures and report.html written from a fake finished run
folder; the command's train images and labelled sets."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from common import runs
from common.commands.report import report_images
from common.data.files import Dataset, Table, judged_rows
from common.ground.errors import UserError
from common.ground.spec import get_spec
from common.runs import UnitKey, unit_dir
from common.runs.figures import learning_curves_figure, most_confidently_wrong, wrong_gallery_figure
from common.runs.metrics import oof_from_units, per_class_table, run_metrics
from common.runs.report import FIGURES, write_report

N_ROWS = 60
N_FOLDS = 2


def confident(labels: np.ndarray, confidence: float = 0.9) -> np.ndarray:
    """(n, 10) probabilities putting `confidence` on each label and the rest spread evenly."""
    probabilities = np.full((len(labels), 10), (1 - confidence) / 9, np.float32)
    probabilities[np.arange(len(labels)), labels] = confidence
    return probabilities


def fake_history(epochs: int, with_validation: bool) -> pd.DataFrame:
    epoch = np.arange(1, epochs + 1)
    history = pd.DataFrame({"epoch": epoch, "accuracy": 1 - 0.5 / epoch, "loss": 2.0 / epoch})
    if with_validation:
        history["val_accuracy"] = 0.95 - 0.5 / epoch
        history["val_loss"] = 2.2 / epoch
    return history


def write_fake_run(root: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A finished run folder of N_ROWS rows, N_FOLDS folds, one seed; rows 3, 7 and 11 predicted wrong."""
    rng = np.random.default_rng(0)
    labels = np.arange(N_ROWS) % 10
    folds = np.arange(N_ROWS) % N_FOLDS
    images = rng.integers(0, 256, (N_ROWS, 28, 28, 1), dtype=np.uint8)
    folder = runs.create_run_dir(root, "digits", "fake")
    runs.start_run(folder, {"model": "small", "epochs": 3, "folds": N_FOLDS}, ["digits"], "CPU, float32")
    pd.DataFrame({"row": np.arange(N_ROWS), "label": labels, "fold": folds}).to_csv(folder / "folds.csv", index=False)
    probabilities = confident(labels)
    probabilities[[3, 7, 11]] = confident(np.array([5, 1, 2]), 0.8)
    held_out = {UnitKey(f, 0): probabilities[folds == f] for f in range(N_FOLDS)}
    for fold in range(N_FOLDS):
        unit = unit_dir(folder, UnitKey(fold, 0))
        unit.mkdir(parents=True)
        fake_history(3, with_validation=fold == 0).to_csv(unit / "history.csv", index=False)
    oof = oof_from_units(folds, held_out)
    runs.save_array(folder / "oof.npy", oof)
    extras = {"holdout": (labels[:10], confident(labels[:10]))}
    scores = run_metrics(labels, folds, held_out, oof, {key: 1.5 for key in held_out}, extras)
    units = [key.name for key in held_out]
    submitted = runs.Submitted("all", units, runs.OOF, scores["oof_accuracy"])
    runs.write_json(folder / "metrics.json", runs.Metrics(submitted, **scores).to_dict())
    per_class_table(labels, oof).to_csv(folder / "per_class.csv", index=False)
    runs.finish_run(folder, 12.3)
    return folder, images, labels


@pytest.fixture
def fake_run(tmp_path) -> tuple[Path, np.ndarray, np.ndarray]:
    return write_fake_run(tmp_path / "runs")


# ---------------------------------------------------------------------------
# Choosing the gallery
# ---------------------------------------------------------------------------


def test_most_confidently_wrong_orders_by_confidence_and_skips_right_rows():
    labels = np.array([0, 1, 2, 3, 4])
    probabilities = np.array(
        [
            [0.9, 0.1, 0, 0, 0, 0, 0, 0, 0, 0],  # right
            [0.6, 0.4, 0, 0, 0, 0, 0, 0, 0, 0],  # wrong at 0.6
            [0, 0.95, 0.05, 0, 0, 0, 0, 0, 0, 0],  # wrong at 0.95
            [0, 0, 0, 0.99, 0.01, 0, 0, 0, 0, 0],  # right, and the most confident row of all
            [0, 0, 0, 0.7, 0.3, 0, 0, 0, 0, 0],  # wrong at 0.7
        ]
    )
    np.testing.assert_array_equal(most_confidently_wrong(labels, probabilities), [2, 4, 1])
    np.testing.assert_array_equal(most_confidently_wrong(labels, probabilities, limit=2), [2, 4])


def test_most_confidently_wrong_is_empty_when_all_right():
    labels = np.arange(10)
    assert most_confidently_wrong(labels, confident(labels)).size == 0


# ---------------------------------------------------------------------------
# write_report
# ---------------------------------------------------------------------------


def test_write_report_writes_valid_figures(fake_run):
    folder, images, labels = fake_run
    write_report(folder, images, labels)
    for name in FIGURES:
        path = folder / "figures" / f"{name}.png"
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.width > 300 and image.height > 200
            # Not a blank canvas: a drawn figure has many distinct colours.
            assert len(image.convert("RGB").getcolors(maxcolors=1_000_000)) > 20
    assert not list(folder.rglob("*.partial*")), "temporary files left behind"


def test_report_html_shows_run_facts_metrics_and_embedded_figures(fake_run):
    folder, images, labels = fake_run
    page = write_report(folder, images, labels).read_text()
    metrics = runs.load_run(folder).metrics()
    assert folder.name in page
    assert metrics.oof_accuracy == pytest.approx(57 / 60)
    assert f"OOF accuracy {57 / 60:.5f}" in page
    assert f"<b>Submitted: {N_FOLDS} fold models (3 epochs, width 32): {57 / 60:.5f} on OOF</b>" in page
    for text in ("python run.py digits", "finished", "CPU, float32", "holdout", "fold 1", "seed 0", "precision"):
        assert text in page
    assert "epochs: 3" in page  # the resolved config
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == len(FIGURES)
    assert base64.b64decode(embedded[0]) == (folder / "figures" / "confusion.png").read_bytes()


def test_report_without_histories_or_errors_still_draws_every_figure(fake_run):
    folder, images, labels = fake_run
    for history in folder.glob("units/*/history.csv"):
        history.unlink()
    runs.save_array(folder / "oof.npy", confident(labels))
    write_report(folder, images, labels)
    for name in FIGURES:
        with Image.open(folder / "figures" / f"{name}.png") as image:
            assert image.width > 300 and image.height > 100


N_SET = 40
WRONG_ROWS = {4: 0.8, 1: 0.7, 9: 0.6}  # row -> confidence of its wrong prediction (class label + 1)


def wrong_at(labels: np.ndarray) -> np.ndarray:
    """Probabilities right on every row but WRONG_ROWS, which predict the next class at their confidence."""
    probabilities = confident(labels)
    for row, confidence in WRONG_ROWS.items():
        probabilities[row] = confident(np.array([(labels[row] + 1) % 10]), confidence)[0]
    return probabilities


def judged_set(folder: Path) -> tuple[Dataset, np.ndarray]:
    """The digits competition with sklearn_test judged (as Kannada's Dig-MNIST is: cut into a picking and a
    reporting half) holding N_SET rows, and the run's sklearn_test.npy: right but for WRONG_ROWS."""
    labels = np.arange(N_SET) % 10
    images = np.random.default_rng(1).integers(0, 256, (N_SET, 28, 28, 1), dtype=np.uint8)
    probabilities = wrong_at(labels)
    runs.save_array(folder / "sklearn_test.npy", probabilities)
    spec = replace(get_spec("digits"), judged_sets=("sklearn_test",))
    empty = Table(images[:0], labels[:0])
    return Dataset(spec, empty, empty, pd.DataFrame(), {"sklearn_test": Table(images, labels)}), probabilities


def embedded(page: str, name: str) -> bytes:
    return base64.b64decode(re.search(f'alt="{name}" src="data:image/png;base64,([^"]+)"', page).group(1))


def test_each_labelled_set_has_its_confusion_matrix_per_class_table_and_errors(fake_run):
    folder, images, labels = fake_run
    data, probabilities = judged_set(folder)
    page = write_report(folder, images, labels, data).read_text()
    pick, report = judged_rows(data.extras["sklearn_test"].labels)
    set_labels = data.extras["sklearn_test"].labels
    for name, rows in {
        "sklearn_test": np.arange(N_SET),
        "sklearn_test_pick": pick,
        "sklearn_test_report": report,
    }.items():
        table = per_class_table(set_labels[rows], probabilities[rows])
        assert (folder / f"per_class_{name}.csv").read_text() == table.to_csv(index=False)
        assert f"<h2>{name} (the submitted models)</h2>" in page
        assert f"accuracy {(probabilities[rows].argmax(1) == set_labels[rows]).mean():.5f}" in page
        for figure in (f"confusion_{name}", f"wrong_{name}"):
            png = (folder / "figures" / f"{figure}.png").read_bytes()
            assert embedded(page, figure) == png
            with Image.open(folder / "figures" / f"{figure}.png") as image:
                assert image.format == "PNG" and len(image.convert("RGB").getcolors(maxcolors=1_000_000)) > 20
    assert f"{len(pick)} rows of sklearn_test" in page and "Per class (OOF)" in page  # the OOF's, still shown


def test_a_sets_gallery_shows_its_most_confidently_wrong_images_first():
    labels = np.arange(N_SET) % 10
    probabilities = wrong_at(labels)
    images = np.zeros((N_SET, 28, 28, 1), np.uint8)
    figure = wrong_gallery_figure(images, labels, probabilities, "sklearn_test (the submitted models)")
    titles = [text.get_text() for text in figure.axes[0].texts]
    assert titles == [f"true {labels[r]} pred {(labels[r] + 1) % 10}\n{c:.3f}" for r, c in WRONG_ROWS.items()]
    assert figure.get_suptitle().startswith("sklearn_test (the submitted models) errors: 3 most confidently wrong of 3")


def legend_texts(figure) -> list[str]:
    return [text.get_text() for text in figure.axes[0].get_legend().get_texts()]


def final_epoch_validation(epochs: int) -> pd.DataFrame:
    """A history as a unit without early stopping writes it: its fold scored once, after the last epoch."""
    history = fake_history(epochs, with_validation=True)
    history.loc[history.index[:-1], ["val_accuracy", "val_loss"]] = np.nan
    return history


def test_learning_curve_legend_says_what_is_drawn():
    once = learning_curves_figure({"f0-s0": final_epoch_validation(3), "f1-s0": final_epoch_validation(3)})
    assert legend_texts(once) == ["train, each epoch", "validation (held-out fold), one dot after the last epoch"]
    every = learning_curves_figure({"f0-s0": fake_history(3, with_validation=True), "f1-s0": fake_history(3, False)})
    assert legend_texts(every)[1] == "validation (held-out fold), dots each epoch"
    assert [t.get_text() for t in every.axes[1].get_legend().get_texts()] == ["f0-s0", "f1-s0"]


def test_report_falls_back_to_per_class_csv(fake_run):
    folder, images, labels = fake_run
    metrics = runs.load_run(folder).metrics()
    runs.write_json(folder / "metrics.json", metrics.to_dict() | {"per_class": []})
    page = write_report(folder, images, labels).read_text()
    assert "<th>recall</th>" in page and "macro" in page


def test_write_report_rejects_images_out_of_line_with_folds(fake_run):
    folder, images, labels = fake_run
    with pytest.raises(UserError, match="folds.csv has 60 rows"):
        write_report(folder, images[:-1], labels[:-1])
    with pytest.raises(UserError, match="line 2: label 0"):
        write_report(folder, images, (labels + 1) % 10)


def test_report_images_reloads_the_runs_train_rows(tmp_path, digits_dir):
    from common.data.files import load_dataset
    from common.ground.spec import get_spec

    train = load_dataset(get_spec("digits"), digits_dir).train
    folder = runs.create_run_dir(tmp_path, "digits", "fake")
    runs.start_run(folder, {}, ["digits"], "CPU")
    rows = np.array([5, 0, 17])
    pd.DataFrame({"row": rows, "label": train.labels[rows], "fold": [0, 1, 0]}).to_csv(
        folder / "folds.csv", index=False
    )
    images, labels, _ = report_images(runs.load_run(folder), str(digits_dir))
    np.testing.assert_array_equal(images, train.images[rows])
    np.testing.assert_array_equal(labels, train.labels[rows])
    pd.DataFrame({"row": rows, "label": (train.labels[rows] + 1) % 10, "fold": 0}).to_csv(
        folder / "folds.csv", index=False
    )
    with pytest.raises(UserError, match="line 2: label differs from the competition's files"):
        report_images(runs.load_run(folder), str(digits_dir))


@pytest.mark.slow  # one tiny full-data model
def test_a_kannada_run_without_fold_models_reports_dig_mnist_and_its_halves(tmp_path, capsys):
    """`python run.py kannada --preset smoke folds=0` then `python run.py report kannada RUN`: Dig-MNIST and its
    halves each get a section, per_class_<set>.csv and figures, by the submitted full-data model."""
    import run as cli
    from tests.kaggle_fakes import write_competition

    data_dir, out = write_competition(tmp_path / "kannada", "kannada"), tmp_path / "runs"
    small = ["model=small", "width=8", "full_epochs=1", "folds=0"]
    assert cli.main(["kannada", "--preset", "smoke", "--data-dir", str(data_dir), "--out", str(out), *small]) == 0
    run = runs.list_runs(out, "kannada")[-1]
    (run.folder / "report.html").unlink()
    capsys.readouterr()
    assert cli.main(["report", "kannada", run.run_id, "--data-dir", str(data_dir), "--out", str(out)]) == 0
    assert capsys.readouterr().out.endswith(f"report: {run.report_file}\n")
    page, metrics = run.report_file.read_text(), run.metrics()
    assert metrics.submitted.signal == "dig_mnist_report"
    for name in ("dig_mnist", "dig_mnist_pick", "dig_mnist_report"):
        assert f"<h2>{name} (the submitted models)</h2>" in page and (run.folder / f"per_class_{name}.csv").is_file()
        assert embedded(page, f"confusion_{name}") == (run.folder / "figures" / f"confusion_{name}.png").read_bytes()
        assert embedded(page, f"wrong_{name}") == (run.folder / "figures" / f"wrong_{name}.png").read_bytes()
    assert f"accuracy {metrics.score:.5f}: the score that ranks the run" in page
    assert "Per class (OOF)" not in page and "not recorded" not in page and ">None<" not in page
