"""common/commands/tune/report.py and preset.py: what a study shows, on a study of made-up trials (nothing trains)."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution

from common.commands.tune import StudyRequest, write_outputs
from common.commands.tune import preset as preset_module
from common.commands.tune.report import STUDY_PAGE, trials_table
from common.commands.tune.setup import Setup, base_config
from common.commands.tune.space import Param, Space
from common.ground.spec import get_spec

SCORES = [(0.95, 0.93), (0.97, 0.94), (0.96, 0.95)]  # (oof, holdout) of three complete trials


@pytest.fixture
def made_up(tmp_path, monkeypatch):
    """A study of three complete trials over lr and dropout, and its setup (holdout reports, oof picks)."""
    monkeypatch.setattr(preset_module, "PRESETS_DIR", tmp_path / "presets")
    space = Space(
        "made-up", tmp_path / "made-up.yaml", (Param("lr", 1e-3, 1e-1, log=True), Param("dropout", 0.0, 0.5)), {}
    )
    request = StudyRequest("digits", ["holdout=0.2"], objective="oof", argv=["tune", "digits", "--space", "made-up"])
    setup = Setup(request, get_spec("digits"), base_config("digits", request, space), space, "made-up", tmp_path)
    study = optuna.create_study(direction="maximize")
    distributions = {"lr": FloatDistribution(1e-3, 1e-1, log=True), "dropout": FloatDistribution(0.0, 0.5)}
    for number, (oof, holdout) in enumerate(SCORES):
        attrs = {"oof": oof, "holdout": holdout, "run_id": f"run-{number}"}
        params = {"lr": 0.01 * (number + 1), "dropout": 0.1 * number}
        study.add_trial(
            optuna.trial.create_trial(params=params, distributions=distributions, value=oof, user_attrs=attrs)
        )
    setup.folder.mkdir(parents=True)
    return study, setup


def test_the_table_puts_the_best_trial_first_with_the_score_that_reports_it(made_up):
    study, setup = made_up
    table = trials_table(study, setup)
    assert list(table.columns) == ["trial", "state", "score (oof)", "holdout (reports)", "lr", "dropout", "run_id"]
    assert table["trial"].tolist() == [1, 2, 0] and table["holdout (reports)"].tolist() == [0.94, 0.95, 0.93]


def test_the_page_shows_the_command_as_code_and_keeps_plots_within_the_page(made_up, capsys):
    study, setup = made_up
    page = write_outputs(study, setup).read_text()
    assert page.startswith("<!doctype html>") and (setup.folder / STUDY_PAGE).is_file()
    assert "`" not in page and "<code>python run.py tune digits --space made-up</code>" in page
    assert "img{max-width:100%" in page and 'src="slices.png"' in page
    assert "`python run.py tune digits --space made-up`" in (setup.folder / "trials.md").read_text()  # markdown
    assert "flatters by selection" in page


def test_the_preset_goes_to_the_study_folder_and_to_configs_presets_only_when_asked(made_up, capsys):
    study, setup = made_up
    write_outputs(study, setup)
    written = setup.folder / "tune-made-up.yaml"
    assert written.is_file() and not preset_module.PRESETS_DIR.exists()
    assert f"--config {written}" in written.read_text() and f"--config {written}" in capsys.readouterr().out
    saving = Setup(
        StudyRequest("digits", ["holdout=0.2"], objective="oof", save_preset=True),
        setup.spec,
        setup.base,
        setup.space,
        setup.name,
        setup.root,
    )
    write_outputs(study, saving)
    saved = preset_module.PRESETS_DIR / "tune-made-up.yaml"
    assert saved.read_bytes() == written.read_bytes() and "--preset tune-made-up" in saved.read_text()
    assert "lr: 0.02" in saved.read_text()  # trial 1, the best by oof
