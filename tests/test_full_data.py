"""Full-data models (units all-s<S>, trained on every row of a run): config, training, scores, resume, growth,
merge, Dask, and the leak test: the rows each unit passed to `fit`."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import run as cli
from common import runs
from common.commands.merge import merge_run
from common.data.files import load_dataset
from common.data.trainset import HOLDOUT_SET, NO_FOLD, prepare_train_set
from common.execution import pipeline
from common.execution.pipeline import RunOptions, run_competition
from common.ground.config import Config
from common.ground.config_files import load_config
from common.ground.errors import UserError
from common.ground.spec import get_spec
from common.runs.metrics import accuracy
from common.runs.units import UnitKey, all_units, is_complete
from common.training import stacked  # train_units calls train_unit from here
from common.training.unit import unit_config, unit_seed
from tests.test_quiet_start import run_digits, startup_lines

DIGITS = get_spec("digits")
TINY = ["epochs=1", "model=small", "width=8", "max_train_rows=200", "holdout=0.1", "deterministic=true"]
# two fold models and one full-data model, longer and wider
BOTH = [*TINY, "folds=2", "full_models=1", "full_epochs=2", "full_width=24"]
FULL = [*TINY, "folds=0", "full_models=1"]  # a full-data model alone, scored on the holdout and the extra set


@dataclass(frozen=True)
class Trained:
    folder: Path
    cfg: Config
    fits: dict[str, tuple[np.ndarray, tuple | None]]  # unit name -> (images passed to fit, valid arrays or None)
    summary: str  # what the run printed


def train_recorded(overrides: list[str], digits_dir: Path, out: Path) -> Trained:
    """A run whose every unit's training arrays are recorded as train_unit received them."""
    cfg, label = load_config("digits", "smoke", overrides=overrides)
    fits, original = {}, stacked.train_unit
    keys = iter(all_units(cfg))

    def recording(job, *args, **kwargs):
        fits[next(keys).name] = (job.train[0].copy(), job.valid)  # the local executor trains units in key order
        return original(job, *args, **kwargs)

    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(stacked, "train_unit", recording)
        folder = run_competition(DIGITS, cfg, label, ["digits", *overrides], RunOptions(str(digits_dir), out))
    return Trained(folder, runs.load_run(folder).cfg, fits, printed.getvalue())


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def full_run(digits_dir, root) -> Trained:
    """folds 0, one full-data model: no fold models, so no OOF (one unit: cheap)."""
    return train_recorded(FULL, digits_dir, root)


@pytest.fixture(scope="module")
def both_run(digits_dir, root) -> Trained:
    """Two fold models and one full-data model trained for its own two epochs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "write_report", lambda *args: "skipped")  # figures are tested on full_run
        return train_recorded(BOTH, digits_dir, root)


def train_set(trained: Trained, digits_dir: Path):
    return prepare_train_set(load_dataset(DIGITS, digits_dir), trained.cfg)


def image_rows(images: np.ndarray) -> set[bytes]:
    return {image.tobytes() for image in images}


# ---------------------------------------------------------------------------
# Config and units (no training)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["folds=0"], "folds 0 needs full_models"),
        (["folds=1", "full_models=1"], "folds must be at least 2, got 1"),
        (["full_models=-1"], "full_models must be 0 or a positive integer, got -1"),
        (["full_width=-1"], "full_width must be 0 or a positive integer, got -1"),
        (["ensemble=full"], "ensemble full names models this run does not train"),
        (["folds=0", "full_models=1", "ensemble=folds"], "ensemble folds names models"),
        (["ensemble=some"], "ensemble must be one of folds, full, all"),
        (["full_models=1", "early_stopping=2"], "early_stopping works fold by fold"),
        (["full_models=1", "pseudo_from=mnist/latest"], "pseudo_from works fold by fold"),
    ],
)
def test_config_refuses_what_full_data_models_cannot_do(overrides, message):
    with pytest.raises(UserError, match=message):
        load_config("digits", None, overrides=overrides)


def test_a_run_with_nothing_to_score_it_is_refused_before_any_folder(tmp_path):
    cfg, label = load_config("mnist", "smoke", overrides=["folds=0", "full_models=1"])
    with pytest.raises(UserError, match="folds 0 leaves nothing to score the run"):
        run_competition(get_spec("mnist"), cfg, label, ["mnist"], RunOptions(None, tmp_path))
    assert not list(tmp_path.iterdir())


def test_units_are_fold_models_then_full_data_models_with_seeds_of_their_own():
    cfg = Config(folds=3, seeds=2, full_models=2, epochs=4, full_epochs=9, width=16, full_width=32)
    keys = all_units(cfg)
    assert [key.name for key in keys] == ["f0-s0", "f0-s1", "f1-s0", "f1-s1", "f2-s0", "f2-s1", "all-s0", "all-s1"]
    assert len({unit_seed(cfg, key) for key in keys}) == len(keys)
    # a full-data model's seed is no fold model's, whatever the folds: growing a run keeps its models
    fold_seeds = {unit_seed(replace(cfg, folds=50), key) for key in all_units(replace(cfg, folds=50)) if key.holds_out}
    assert not fold_seeds & {unit_seed(cfg, UnitKey(None, s)) for s in range(2)}
    assert unit_config(cfg, UnitKey(None, 0)).epochs == 9 and unit_config(cfg, UnitKey(1, 0)).epochs == 4
    assert unit_config(replace(cfg, full_epochs=0), UnitKey(None, 0)).epochs == 4
    assert unit_config(cfg, UnitKey(None, 1)).width == 32 and unit_config(cfg, UnitKey(2, 1)).width == 16
    assert unit_config(replace(cfg, full_width=0), UnitKey(None, 0)).width == 16
    assert [k.name for k in runs.ensemble_keys(keys, "full")] == ["all-s0", "all-s1"]
    assert len(runs.ensemble_keys(keys, "folds")) == 6 and runs.ensemble_keys(keys, "all") == keys


def test_resume_takes_only_seeds_and_full_models(tmp_path):
    with pytest.raises(UserError, match="only --seeds N and --full-models N may grow it"):
        cli.train(["digits", "--resume", "latest", "--full-models", "2", "lr=0.1", "--out", str(tmp_path)])


# ---------------------------------------------------------------------------
# A run without fold models (quick: one unit)
# ---------------------------------------------------------------------------


def test_a_run_without_fold_models_is_scored_on_its_holdout_and_extra_sets(full_run, digits_dir):
    folder = full_run.folder
    names = {path.name for path in folder.iterdir()}
    assert {"test.npy", "sklearn_test.npy", "train_holdout.npy", "submission.csv", "metrics.json"} <= names
    assert "oof.npy" not in names and "per_class.csv" not in names
    assert [key.name for key in runs.unit_keys(folder)] == ["all-s0"]
    assert not (runs.unit_dir(folder, UnitKey(None, 0)) / "valid.npy").exists()
    history = pd.read_csv(runs.unit_dir(folder, UnitKey(None, 0)) / "history.csv")
    assert len(history) == 1 and "val_loss" not in history
    folds = runs.load_run(folder).folds()
    assert len(folds) == 200 and (folds["fold"] == NO_FOLD).all()
    metrics = runs.load_run(folder).metrics()
    assert metrics.oof_accuracy is None and metrics.leaderboard_estimate is None
    assert metrics.submitted.signal == HOLDOUT_SET and metrics.score == metrics.extra_accuracy[HOLDOUT_SET]
    data, _ = train_set(full_run, digits_dir)
    for name in ("sklearn_test", HOLDOUT_SET):
        assert metrics.extra_accuracy[name] == pytest.approx(
            accuracy(data.extras[name].labels, np.load(folder / f"{name}.npy"))
        )
    assert "OOF ensemble" not in full_run.summary
    note = "this run has no fold models (folds 0): no OOF; it is scored on "
    (line,) = [line for line in full_run.summary.splitlines() if line.startswith(note)]
    assert sorted(line.removeprefix(note).split(" and ")) == ["sklearn_test", "train_holdout"]
    unit_test = np.load(runs.unit_dir(folder, UnitKey(None, 0)) / "test.npy")
    assert np.array_equal(np.load(folder / "test.npy"), unit_test)


def test_report_of_a_run_without_oof_shows_each_labelled_set_for_its_submitted_models(full_run, root, digits_dir):
    argv = ["report", "digits", full_run.folder.name, "--out", str(root), "--data-dir", str(digits_dir)]
    assert cli.main(argv) == 0
    folder = full_run.folder
    page = (folder / "report.html").read_text()
    note = re.search(r"no OOF predictions \(no fold models\): it is scored on (.*?)\. So it has no OOF", page)
    assert sorted(note.group(1).split(" and ")) == ["sklearn_test", "train_holdout"]
    assert "each labelled set below shows them for its submitted models" in page
    assert "Per class (OOF)" not in page and 'alt="confusion"' not in page and 'alt="learning_curves"' in page
    sets = ("sklearn_test", HOLDOUT_SET)
    expected = ["learning_curves.png"] + [f"{kind}_{name}.png" for name in sets for kind in ("confusion", "wrong")]
    assert sorted(p.name for p in (folder / "figures").iterdir()) == sorted(expected)
    metrics = runs.load_run(folder).metrics()
    for name in sets:
        assert f"<h2>{name} (the submitted models)</h2>" in page
        assert f'alt="confusion_{name}"' in page and f'alt="wrong_{name}"' in page
        assert pd.read_csv(folder / f"per_class_{name}.csv")["class"].tolist()[-1] == "macro"
        assert f"accuracy {metrics.extra_accuracy[name]:.5f}" in page
    assert f"accuracy {metrics.score:.5f}: the score that ranks the run" in page  # the holdout judges it
    seconds = metrics.units["all-s0"]["seconds"]
    assert f"<td>full-data model all-s0 (holds no rows out)</td>\n      <td></td>\n      <td>{seconds:.1f}</td>" in page
    assert ">None<" not in page


# ---------------------------------------------------------------------------
# Fold and full-data models together (slow: three units)
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_no_unit_trains_on_a_row_it_is_scored_on(both_run, full_run, digits_dir):
    """The leak test: from the very arrays each unit passed to fit, no fold model saw a row of its own fold,
    full-data models trained on every row and predict none held out, and no unit saw a holdout row."""
    for trained in (both_run, full_run):
        data, train = train_set(trained, digits_dir)
        holdout = image_rows(data.extras[HOLDOUT_SET].images)
        assert set(trained.fits) == {key.name for key in all_units(trained.cfg)}
        for name, (images, valid) in trained.fits.items():
            key = UnitKey.parse(name)
            seen = image_rows(images)
            assert not seen & holdout, name
            if key.holds_out:
                own = train.folds == key.fold
                assert not seen & image_rows(train.images[own]), name
                assert seen == image_rows(train.images[~own]) and len(images) == (~own).sum()
                assert np.array_equal(valid[0], train.images[own])
            else:
                assert valid is None and len(images) == len(train.images) and seen == image_rows(train.images)


@pytest.mark.slow
def test_oof_comes_from_fold_models_and_the_submission_from_the_ensemble(both_run, digits_dir):
    folder = both_run.folder
    folds = runs.load_run(folder).folds()["fold"].to_numpy()
    oof = np.load(folder / "oof.npy")
    for fold in (0, 1):
        assert np.allclose(oof[folds == fold], np.load(runs.unit_dir(folder, UnitKey(fold, 0)) / "valid.npy"))
    assert not (runs.unit_dir(folder, UnitKey(None, 0)) / "valid.npy").exists()
    assert len(pd.read_csv(runs.unit_dir(folder, UnitKey(None, 0)) / "history.csv")) == 2  # full_epochs
    first_conv = {key: conv_filters(runs.unit_dir(folder, key) / runs.MODEL_KERAS) for key in all_units(both_run.cfg)}
    assert first_conv == {UnitKey(0, 0): 8, UnitKey(1, 0): 8, UnitKey(None, 0): 12}  # small: width // 2, at least 8
    units = {key: np.load(runs.unit_dir(folder, key) / "test.npy") for key in all_units(both_run.cfg)}
    assert np.allclose(np.load(folder / "test.npy"), np.mean(list(units.values()), axis=0), atol=1e-6)
    metrics = runs.load_run(folder).metrics()
    assert metrics.submitted.units == ["f0-s0", "f1-s0", "all-s0"] and metrics.leaderboard_estimate is not None
    data, _ = train_set(both_run, digits_dir)
    for name in ("sklearn_test", HOLDOUT_SET):
        by_group = metrics.extra_accuracy_by_group[name]
        arrays = {key: np.load(runs.unit_dir(folder, key) / f"{name}.npy") for key in units}
        for group in runs.ENSEMBLE_GROUPS:
            mean = np.mean([arrays[key] for key in runs.ensemble_keys(list(arrays), group)], axis=0)
            assert by_group[group] == pytest.approx(accuracy(data.extras[name].labels, mean)), (name, group)
        assert f"{name} (full)" in both_run.summary
    assert metrics.units["all-s0"]["accuracy"] is None


def conv_filters(model_file: Path) -> int:
    """The filters of a saved model's first convolution: its width."""
    import keras

    model = keras.models.load_model(model_file, compile=False)
    return next(layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


def copy_run(trained: Trained, root: Path) -> Path:
    copy = root / "digits" / f"{trained.folder.name[:-4]}copy"
    shutil.copytree(trained.folder, copy)
    return copy


@pytest.mark.slow
def test_more_full_data_models_grow_a_finished_run(full_run, digits_dir, tmp_path):
    folder = copy_run(full_run, tmp_path)
    first = runs.unit_dir(folder, UnitKey(None, 0)) / "unit.json"
    mtime = first.stat().st_mtime_ns
    with pytest.raises(UserError, match="--full-models 1: the run has 1 already; ask for more"):
        run_competition(DIGITS, full_run.cfg, "", [], RunOptions(str(digits_dir), tmp_path, folder.name, full_models=1))
    grown = RunOptions(str(digits_dir), tmp_path, folder.name, full_models=2)
    assert run_competition(DIGITS, full_run.cfg, "", ["digits"], grown) == folder
    run = runs.load_run(folder)
    assert run.finished and run.cfg.full_models == 2 and first.stat().st_mtime_ns == mtime
    tests = [np.load(runs.unit_dir(folder, UnitKey(None, s)) / "test.npy") for s in (0, 1)]
    assert np.allclose(np.load(folder / "test.npy"), np.mean(tests, axis=0), atol=1e-6)


@pytest.mark.slow
def test_an_interrupted_run_resumes_its_missing_full_data_model_then_merges(both_run, digits_dir, tmp_path, caplog):
    """A run stopped before its full-data model (its folder removed, its status running) trains that unit
    alone with `--fold all --seed 0`; merge refuses while it is missing and finalises once it is there."""
    folder = copy_run(both_run, tmp_path)
    shutil.rmtree(runs.unit_dir(folder, UnitKey(None, 0)))
    runs.update_record(folder, status=runs.RunStatus.RUNNING)
    with pytest.raises(UserError, match="1 of 3 units missing: all-s0"):
        merge_run(DIGITS, folder.name, str(digits_dir), tmp_path)
    argv = ["digits", "--resume", folder.name, "--fold", "all", "--seed", "0"]
    with caplog.at_level(logging.INFO, logger="digits"):
        assert cli.main([*argv, "--data-dir", str(digits_dir), "--out", str(tmp_path)]) == 0
    assert "2 of 3 units finished and loaded; training 1 now (all-s0)" in caplog.text
    assert is_complete(folder, UnitKey(None, 0)) and runs.load_run(folder).finished
    merged = merge_run(DIGITS, folder.name, str(digits_dir), tmp_path)
    assert (merged / "submission.csv").is_file()
    # deterministic=true: the unit trained again equals the one of the uninterrupted run
    for name in ("test.npy", "oof.npy"):
        assert np.array_equal(np.load(folder / name), np.load(both_run.folder / name)), name


@pytest.mark.slow
def test_dask_trains_full_data_models_as_a_user_runs_it_and_its_workers_stay_quiet(full_run, digits_dir, tmp_path):
    """`run.py ... --scheduler local:1` as typed in a user's shell: the full-data model the worker trains predicts
    what the one trained in this process predicts, and no start-up line (TensorFlow's as each worker loads it,
    Dask's warnings) reaches the terminal."""
    done = run_digits(tmp_path, digits_dir, *FULL, "--preset", "smoke", "--scheduler", "local:1")
    assert "dask local:1" in done.stdout
    assert startup_lines(done.stdout + done.stderr) == []
    assert "WARNING" not in done.stderr and "distributed." not in done.stderr
    (run,) = runs.list_runs(tmp_path / "runs", "digits")
    assert is_complete(run.folder, UnitKey(None, 0))
    assert np.array_equal(np.load(run.folder / "test.npy"), np.load(full_run.folder / "test.npy"))


# ---------------------------------------------------------------------------
# Readers: compare, blend, kernel and the notebook's transductive round
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_compare_a_run_without_oof_on_its_holdout_and_extra_sets(both_run, full_run, root, digits_dir, capsys):
    from common.commands.compare import compare_pair, print_compare

    print_compare(root, "digits")
    table = capsys.readouterr().out
    assert "2x1 + 1 full" in table and "1 full" in table
    text = compare_pair(root, "digits", full_run.folder.name, both_run.folder.name, data_dir=str(digits_dir))
    lines = text.splitlines()
    assert lines[0].startswith(f"judged on {HOLDOUT_SET}, the signal of both runs' submitted models")
    assert lines[1].startswith(f"A  {full_run.folder.name}  submits 1 full-data model (1 epoch, width 8): ")
    assert lines[3].startswith("A (") and "without OOF (no fold models): compared on the holdout and extra" in lines[3]
    assert [line.split(":")[0] for line in lines[4:]] == [HOLDOUT_SET, "sklearn_test"]  # the signal's test first


@pytest.mark.slow
def test_compare_a_group_of_each_runs_models_on_the_extra_sets(both_run, full_run, root, digits_dir):
    """--ensemble full: each run's full-data models, whatever the run submits; a group a run lacks is one line."""
    from common.commands.compare import compare_pair

    text = compare_pair(root, "digits", full_run.folder.name, both_run.folder.name, str(digits_dir), group="full")
    lines = text.splitlines()
    assert lines[4] == "extra sets: each run's full models (ensemble full)"
    data, _ = train_set(both_run, digits_dir)
    labels = data.extras[HOLDOUT_SET].labels
    own = np.load(runs.unit_dir(both_run.folder, UnitKey(None, 0)) / f"{HOLDOUT_SET}.npy")  # its one full-data model
    assert f"B {accuracy(labels, own):.5f}" in next(line for line in lines if line.startswith(f"{HOLDOUT_SET}:"))
    with pytest.raises(UserError, match="no sklearn_test predictions of its folds models"):
        compare_pair(root, "digits", full_run.folder.name, both_run.folder.name, str(digits_dir), group="folds")


@pytest.mark.slow
def test_blend_of_runs_without_oof_blends_the_holdout_extra_sets_and_test(both_run, full_run, root, digits_dir):
    from common.commands.blend import NO_OOF_BLEND, blend_runs

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        folder = blend_runs(root, "digits", [full_run.folder.name, both_run.folder.name], None, str(digits_dir))
    assert NO_OOF_BLEND in printed.getvalue()
    assert not (folder / "oof.npy").exists() and (folder / "report.html").is_file()
    for name in ("test", "sklearn_test", HOLDOUT_SET):
        sources = [np.load(run.folder / f"{name}.npy") for run in (full_run, both_run)]
        assert np.allclose(np.load(folder / f"{name}.npy"), np.mean(sources, axis=0), atol=1e-6), name
    metrics = runs.load_run(folder).metrics()
    assert metrics.oof_accuracy is None and set(metrics.extra_accuracy) == {"sklearn_test", HOLDOUT_SET}
    assert metrics.submitted.signal == HOLDOUT_SET and len(metrics.submitted.units) == 4  # both runs' submitted


@pytest.mark.slow
def test_the_notebook_averages_the_units_that_test_npy_averages(both_run, root, digits_dir, tmp_path):
    from common.runs.notebook import write_kernel
    from common.training.inference import predict_with_models
    from tests.test_kernel import check_submission, kaggle_layout, run_script

    kernel = write_kernel(root, DIGITS, both_run.folder.name, tmp_path / "kernel")
    facts = (kernel / "dataset" / "ensemble.json").read_text()
    assert all(f'"{name}.keras"' in facts for name in ("f0-s0", "f1-s0", "all-s0"))
    test = load_dataset(DIGITS, digits_dir).test.images
    predicted = predict_with_models(runs.load_run(both_run.folder).model_files(), test)
    assert np.allclose(predicted, np.load(both_run.folder / "test.npy"), atol=1e-5)
    frame = pd.DataFrame(test.reshape(len(test), -1), columns=[f"pixel{i}" for i in range(784)])
    frame.insert(0, "id", np.arange(len(test)))
    inputs, work = kaggle_layout(tmp_path, kernel / "dataset", kernel / "predict.py", frame)
    run_script(inputs, work)
    check_submission(work, frame, np.arange(len(test)), both_run.folder)
    # ensemble=full: the notebook and predict take the full-data model alone
    copy = copy_run(both_run, tmp_path / "copy")
    runs.write_config(copy, replace(both_run.cfg, ensemble="full"))
    assert runs.load_run(copy).model_files() == [runs.unit_dir(copy, UnitKey(None, 0)) / "model.keras"]


@pytest.mark.slow
def test_the_transductive_round_fine_tunes_full_data_models(full_run, root, tmp_path):
    from common.runs.notebook import NotebookLevers, write_kernel
    from tests.conftest import pixel_frame
    from tests.test_kernel import kaggle_layout, run_script

    settings = {"threshold": 0.0, "epochs": 1, "rounds": 1, "train_rows": 40, "batch_size": 32}
    kernel = write_kernel(root, DIGITS, full_run.folder.name, tmp_path / "kernel", NotebookLevers(settings))
    test = pixel_frame(50, 3, ("id", np.arange(50)))
    inputs, work = kaggle_layout(tmp_path, kernel / "dataset", kernel / "predict.py", test)
    pixel_frame(60, 4, ("label", np.arange(60) % 10)).to_csv(inputs / "Kannada-MNIST" / "train.csv", index=False)
    done = run_script(inputs, work)
    assert "fine-tuned and predicted with all-s0.keras" in done.stdout
    assert pd.read_csv(work / "submission.csv")["id"].tolist() == list(range(50))
