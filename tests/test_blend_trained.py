"""A blend of two real, tiny trained runs (common/commands/blend.py): every command reads it as a run: report,
compare, merge and resume, submit, predict and the Kaggle notebook."""

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
from common.runs import load_run

TINY = ["folds=2", "epochs=1", "model=mlp", "max_train_rows=200"]


@pytest.fixture(scope="module")
def blended(tmp_path_factory, digits_dir) -> tuple[Path, list[Path], Path]:
    """(runs root, the two trained runs' folders, the blend's folder): two tiny digits runs on the same folds, the
    second with other dropout (so other weights) and predicting with one test-time shift, blended 3:1. Trained once
    for this file."""
    from common.execution.pipeline import RunOptions, run_competition
    from common.ground.config_files import load_config

    root = tmp_path_factory.mktemp("runs")
    trained = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIGIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        for extra in ([], ["tta=1", "dropout=0.1"]):
            cfg, label = load_config("digits", "smoke", None, TINY + extra)
            options = RunOptions(str(digits_dir), root)
            trained.append(run_competition(get_spec("digits"), cfg, label, ["digits", *TINY, *extra], options))
        folder = blend_runs(root, "digits", [f.name for f in trained], weights=[3, 1], data_dir=digits_dir)
    return root, trained, folder


@pytest.mark.slow  # the module's two tiny runs and their blend
def test_a_blend_has_a_typed_config_and_its_own_report(blended, digits_dir, capsys):
    from common.commands.report import report
    from common.runs import RunKind

    _, trained, folder = blended
    run = load_run(folder)
    assert run.kind is RunKind.BLEND and run.blend.sources == tuple(f.name for f in trained)
    assert run.blend.weights == (0.75, 0.25) and run.blend.folds_from == trained[0].name
    assert run.report_file.is_file() and (folder / "figures" / "learning_curves.png").is_file()  # blend wrote them
    page = report(run, str(digits_dir)).read_text()  # `run.py report` on a blend
    assert "blend of" in page and f"{trained[1].name} (weight 0.250)" in page and "kind: blend" in page


@pytest.mark.slow  # the module's two tiny runs and their blend
def test_compare_lists_a_blend_and_tests_it_against_a_source(blended, digits_dir):
    from common.commands.compare import compare_pair, format_table

    root, trained, folder = blended
    table = compare_table(root, "digits").set_index("run_id")
    assert table.loc[folder.name, "folds x seeds"] == "blend of 2" and table.loc[folder.name, "status"] == "finished"
    assert table.loc[folder.name, "epochs"] == "1" and table.loc[trained[0].name, "epochs"] == "1"  # the sources'

    assert folder.name in format_table(table.reset_index())
    pair = compare_pair(root, "digits", folder.name, trained[0].name, data_dir=str(digits_dir))
    assert f"A  {folder.name}" in pair and "McNemar's exact test" in pair and "sklearn_test: A " in pair


@pytest.mark.slow  # the module's two tiny runs and their blend
def test_merge_and_resume_refuse_a_blend_in_one_line(blended, digits_dir):
    from common.commands.merge import merge_run
    from common.execution.pipeline import RunOptions, run_competition
    from common.ground.config_files import load_config

    root, _, folder = blended
    with pytest.raises(UserError, match="a blend has no units to merge") as refused:
        merge_run(get_spec("digits"), folder.name, str(digits_dir), root)
    assert "\n" not in str(refused.value)
    cfg, label = load_config("digits", "smoke", None, TINY)
    with pytest.raises(UserError, match="a blend trains nothing"):
        run_competition(get_spec("digits"), cfg, label, ["digits"], RunOptions(str(digits_dir), root, folder.name))


@pytest.mark.slow  # the module's two tiny runs and their blend
def test_submit_checks_a_blends_submission_like_any_runs(blended, digits_dir):
    from common.commands.submit.kaggle_api import describe
    from common.commands.submit.upload import checked_submission_file

    run = load_run(blended[2])
    assert checked_submission_file(run, get_spec("digits"), digits_dir) == run.submission_file
    assert describe(run, "blend").startswith(f"blend (run {run.run_id}, ") and " on OOF)" in describe(run, "blend")


def blend_probabilities(trained: list[Path], images: np.ndarray) -> np.ndarray:
    """The blend's ensemble by hand: each source's models averaged with its own tta, then 3:1."""
    from common.training.inference import predict_with_models

    a, b = (load_run(folder) for folder in trained)
    return 0.75 * predict_with_models(a.model_files(), images, 0) + 0.25 * predict_with_models(
        b.model_files(), images, 1
    )


@pytest.mark.slow  # the module's two tiny runs and their blend
def test_predict_uses_the_sources_models_with_the_blends_weights(blended, digits_dir, tmp_path):
    from PIL import Image

    from common.commands.predict import load_digit_image, predict_images
    from common.training.inference import predict_ensemble

    _, trained, folder = blended
    images = load_dataset(get_spec("digits"), digits_dir).test.images[:40]
    expected = blend_probabilities(trained, images)
    np.testing.assert_allclose(predict_ensemble(load_run(folder), images), expected, atol=1e-5)
    path = tmp_path / "digit.png"
    Image.fromarray(images[0, :, :, 0]).save(path)
    (result,) = predict_images(load_run(folder), [path])
    assert result["label"] == int(blend_probabilities(trained, load_digit_image(path)[None]).argmax())


@pytest.mark.slow  # the module's two tiny runs and their blend
def test_the_notebook_of_a_blend_weights_its_sources_as_the_blend_does(blended, digits_dir, tmp_path):
    from common.runs.notebook import write_kernel
    from tests.conftest import pixel_frame
    from tests.test_kernel import kaggle_layout, run_script

    root, trained, folder = blended
    kernel = write_kernel(root, get_spec("digits"), folder.name, tmp_path / "kernel")
    facts = json.loads((kernel / "dataset" / "ensemble.json").read_text())
    a, b = (f.name for f in trained)
    assert facts["models"] == [f"{a}-f0-s0.keras", f"{a}-f1-s0.keras", f"{b}-f0-s0.keras", f"{b}-f1-s0.keras"]
    assert facts["weights"] == [0.375, 0.375, 0.125, 0.125] and facts["tta"] == [0, 0, 1, 1]
    assert all((kernel / "dataset" / name).is_file() for name in facts["models"])

    test = pixel_frame(60, 3, ("id", np.arange(60)))
    inputs, work = kaggle_layout(tmp_path, kernel / "dataset", kernel / "predict.py", test)
    run_script(inputs, work)  # the notebook alone, as Kaggle runs it
    images = test.drop(columns="id").to_numpy(np.uint8).reshape(-1, 28, 28, 1)
    submission = pd.read_csv(work / "submission.csv")
    assert submission["label"].tolist() == blend_probabilities(trained, images).argmax(axis=1).tolist()
