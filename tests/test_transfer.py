"""common/training/transfer.py: warm starts from another run's weights, frozen conv layers, and the checks that keep
out-of-fold scores honest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import run as cli
from common import runs
from common.execution.pipeline import RunOptions, run_competition
from common.ground.config import Config
from common.ground.config_files import load_config
from common.ground.errors import UserError
from common.ground.spec import get_spec
from common.runs import UnitKey
from common.training.models import create_model
from common.training.transfer import source_unit, transfer_plan, warm_start
from tests.kaggle_fakes import write_competition

pytestmark = pytest.mark.usefixtures("figures_left_out")  # no report is tested here

DIGITS = get_spec("digits")
TINY = ["max_train_rows=300", "epochs=1", "seeds=1", "model=small"]


def saved_model(tmp_path: Path, cfg: Config) -> tuple[Path, list[np.ndarray]]:
    model = create_model(cfg.model, cfg)
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(size=w.shape).astype(w.dtype) for w in model.get_weights()])
    path = tmp_path / "source.keras"
    model.save(path)
    return path, model.get_weights()


def test_warm_start_copies_every_weight(tmp_path):
    cfg = Config(model="small", width=16)
    path, source = saved_model(tmp_path, cfg)
    model = create_model(cfg.model, cfg)
    warm_start(model, path, freeze_convs=False)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), source, strict=True))
    assert all(layer.trainable for layer in model.layers)


def test_freeze_convs_keeps_convs_and_gives_a_fresh_classifier(tmp_path):
    cfg = Config(model="small", width=16)
    path, _ = saved_model(tmp_path, cfg)
    import keras

    source = keras.models.load_model(path, compile=False)
    model = create_model(cfg.model, cfg)
    warm_start(model, path, freeze_convs=True)
    for layer, origin in zip(model.layers, source.layers, strict=True):
        if isinstance(layer, keras.layers.Conv2D | keras.layers.BatchNormalization):
            assert not layer.trainable
            assert all(np.array_equal(a, b) for a, b in zip(layer.get_weights(), origin.get_weights(), strict=True))
    classifier, origin = model.get_layer("classifier"), source.get_layer("classifier")
    assert classifier.trainable and not np.array_equal(classifier.get_weights()[0], origin.get_weights()[0])


def test_other_layer_shapes_are_refused(tmp_path):
    path, _ = saved_model(tmp_path, Config(model="small", width=16))
    with pytest.raises(UserError, match="other layers"):
        warm_start(create_model("small", Config(model="small", width=32)), path, freeze_convs=False)


@pytest.fixture(scope="module")
def source_run(digits_dir, tmp_path_factory) -> tuple[Path, Path]:
    cfg, label = load_config("digits", "smoke", overrides=TINY)
    out = tmp_path_factory.mktemp("runs")
    return out, run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), out))


@pytest.mark.slow  # the module's source run
def test_frozen_run_keeps_the_source_conv_weights(source_run, digits_dir):
    import keras

    out, source = source_run
    cfg, label = load_config("digits", "smoke", overrides=[*TINY, "init_from=digits/latest", "freeze_convs=true"])
    folder = run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), out))
    recorded = yaml.safe_load((folder / "config.yaml").read_text())
    assert recorded["init_from"] == str(source.resolve())
    for unit in ("f0-s0", "f1-s0"):
        old = keras.models.load_model(source / "units" / unit / "model.keras", compile=False)
        new = keras.models.load_model(folder / "units" / unit / "model.keras", compile=False)
        pairs = [(a, b) for a, b in zip(old.layers, new.layers, strict=True) if isinstance(a, keras.layers.Conv2D)]
        assert len(pairs) == 3
        for layer_old, layer_new in pairs:
            assert np.array_equal(layer_old.get_weights()[0], layer_new.get_weights()[0])
        classifier_old, classifier_new = old.get_layer("classifier"), new.get_layer("classifier")
        assert not np.array_equal(classifier_old.get_weights()[0], classifier_new.get_weights()[0])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["init_from=digits/latest", "folds=3"], "other folds"),
        (["init_from=digits/latest", "model=mlp"], "has model=small, this config model=mlp"),
        (["init_from=digits/nosuchrun"], r"init_from: no run of digits matches .*, in .*digits \(name a run elsewhere"),
        (["init_from=latest"], "expected COMPETITION/RUN"),
        (
            ["init_from=digits/latest", "full_models=1", "full_width=64"],
            r"full-data models have width=64 \(set full_width=16 to reuse",
        ),
        (["init_from=digits/latest", "folds=0", "full_models=1", "holdout=0.1"], "kept holdout=0.0 and trained on"),
    ],
)
@pytest.mark.slow  # the module's source run
def test_unusable_sources_are_refused_before_a_folder_exists(source_run, digits_dir, overrides, message):
    out, _ = source_run
    before = sorted((out / "digits").iterdir())
    cfg, label = load_config("digits", "smoke", overrides=[*TINY, *overrides])
    with pytest.raises(UserError, match=message):
        run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), out))
    assert sorted((out / "digits").iterdir()) == before


@pytest.mark.slow  # the module's source run
def test_command_line_flags_reach_the_config(source_run, digits_dir, capsys):
    import run

    out, _ = source_run
    argv = ["digits", "--preset", "smoke", "--data-dir", str(digits_dir), "--out", str(out)]
    assert run.main([*argv, "--freeze-convs"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: config: freeze_convs needs init_from (the run whose convolutional layers to keep)"
    )
    assert run.main([*argv, "--init-from", "digits/latest", "model=mlp"]) == 2
    assert "init_from: run " in capsys.readouterr().err


@pytest.mark.slow  # the module's source run
def test_a_copied_source_of_the_same_competition_is_still_checked_for_folds(source_run, digits_dir, tmp_path):
    import shutil

    out, source = source_run
    copy = shutil.copytree(source, tmp_path / "elsewhere" / "my-run")  # its parent folder no longer names it
    cfg, label = load_config("digits", "smoke", overrides=[*TINY, f"init_from={copy}", "folds=3"])
    with pytest.raises(UserError, match="other folds"):
        run_competition(DIGITS, cfg, label, ["digits"], RunOptions(str(digits_dir), out))


# ---------------------------------------------------------------------------
# Full-data models: an mnist run into Kannada's default shape (full_models=1, ensemble=full)
# ---------------------------------------------------------------------------


def test_each_unit_starts_from_the_source_model_of_its_kind():
    folds_only, with_full, full_only = (
        Config(folds=5, seeds=2),
        Config(folds=5, full_models=2),
        Config(folds=0, full_models=1),
    )
    kannada = Config(folds=5, full_models=1, ensemble="full")
    assert source_unit(folds_only, UnitKey(3, 1)) == UnitKey(3, 1)
    assert source_unit(Config(folds=2), UnitKey(3, 1)) == UnitKey(1, 0)
    assert source_unit(folds_only, UnitKey(None, 1)) == UnitKey(0, 1)  # no full-data model: fold 0's
    assert source_unit(with_full, UnitKey(None, 3)) == UnitKey(None, 1)
    assert source_unit(full_only, UnitKey(2, 0)) == UnitKey(None, 0)  # no fold models: its full-data model
    assert transfer_plan(folds_only, kannada)[UnitKey(None, 0)] == UnitKey(0, 0)


def test_init_from_goes_with_full_data_models():
    cfg, _ = load_config("kannada", "smoke", overrides=["init_from=mnist/latest", "freeze_convs=true"])
    assert cfg.full_models == 1 and cfg.ensemble == "full" and cfg.init_from == "mnist/latest"


SMALL = ["model=small", "width=8", "epochs=1", "full_epochs=1"]


@pytest.fixture(scope="module")
def transfer_root(tmp_path_factory) -> Path:
    """Generated mnist and kannada files, and two finished mnist runs: fold models only, and a full-data model
    alone (folds 0, scored on its holdout)."""
    root = tmp_path_factory.mktemp("transfer")
    for competition in ("mnist", "kannada"):
        write_competition(root / competition, competition)
    for extra in ([], ["folds=0", "full_models=1", "holdout=0.1"]):
        argv = ["mnist", "--preset", "smoke", "--data-dir", str(root / "mnist"), "--out", str(root / "runs")]
        assert cli.main([*argv, *SMALL, *extra]) == 0
    return root


def kannada_from(root: Path, source: runs.Run, capsys, *flags: str) -> tuple[runs.Run, str]:
    """`python run.py kannada --preset smoke --init-from mnist/<source> ...`: the run and what it logged."""
    capsys.readouterr()
    argv = ["kannada", "--preset", "smoke", "--data-dir", str(root / "kannada"), "--out", str(root / "runs")]
    assert cli.main([*argv, "--init-from", f"mnist/{source.run_id}", *flags, *SMALL]) == 0
    run = runs.list_runs(root / "runs", "kannada")[-1]
    assert (run.cfg.full_models, run.cfg.ensemble) == (1, "full")
    return run, capsys.readouterr().err


def mnist_run(root: Path, folds: int) -> runs.Run:
    return next(run for run in runs.list_runs(root / "runs", "mnist") if run.cfg.folds == folds)


def conv_kernels(model_file: Path) -> list[np.ndarray]:
    import keras

    model = keras.models.load_model(model_file, compile=False)
    return [layer.get_weights()[0] for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


@pytest.mark.slow  # three runs of two or three tiny units
def test_frozen_kannada_full_data_model_keeps_the_mnist_fold_model_convs(transfer_root, capsys):
    source = mnist_run(transfer_root, folds=2)
    run, logged = kannada_from(transfer_root, source, capsys, "--freeze-convs")
    line = (
        f"init_from: full-data model all-s0 starts from run {source.run_id}'s fold model f0-s0 (that run has no"
        " full-data model); conv layers kept as they are, a fresh classifier (freeze_convs)"
    )
    assert line in logged and line in (run.folder / runs.TRAIN_LOG).read_text()
    model = runs.MODEL_KERAS
    assert run.record.init_from == {
        name: str(source.unit_dir(UnitKey.parse(origin)) / model)
        for name, origin in {"f0-s0": "f0-s0", "f1-s0": "f1-s0", "all-s0": "f0-s0"}.items()
    }
    for name, origin in run.record.init_from.items():
        kernels, theirs = conv_kernels(run.unit_dir(UnitKey.parse(name)) / model), conv_kernels(Path(origin))
        assert len(kernels) == 3 and all(np.array_equal(a, b) for a, b in zip(kernels, theirs, strict=True)), name


@pytest.mark.slow
def test_kannada_starts_from_the_full_data_model_of_an_mnist_run_without_folds(transfer_root, capsys):
    source = mnist_run(transfer_root, folds=0)
    run, logged = kannada_from(transfer_root, source, capsys)
    assert f"init_from: full-data model all-s0 starts from run {source.run_id}'s full-data model all-s0\n" in logged
    assert (
        f"fold models start from run {source.run_id}'s full-data models (f0-s0 from all-s0, f1-s0 from all-s0)"
        in logged
    )
    full_model = str(source.unit_dir(UnitKey(None, 0)) / runs.MODEL_KERAS)
    assert run.record.init_from == {"f0-s0": full_model, "f1-s0": full_model, "all-s0": full_model}
