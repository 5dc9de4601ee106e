"""common/commands/tune/trials.py: a trial's scores from its run's metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.commands.tune import StudyRequest
from common.commands.tune.setup import Setup, base_config
from common.commands.tune.space import read_space, space_file
from common.commands.tune.trials import trial_scores
from common.data.files import judged_half_names
from common.data.trainset import HOLDOUT_SET
from common.ground.spec import get_spec
from common.runs import Metrics, Submitted


def kannada_setup(weight: float, objective: str = "oof") -> Setup:
    request = StudyRequest("kannada", objective=objective, judged_weight=weight)
    space = read_space(space_file("kannada", None))
    return Setup(request, get_spec("kannada"), base_config("kannada", request, space), space, "s", Path("."))


def test_trials_are_picked_on_one_half_of_the_judged_set_and_reported_on_the_other():
    judged = get_spec("kannada").judged_sets[0]
    pick, report = judged_half_names(judged)
    extra = {judged: 0.5, pick: 0.8, report: 0.6, HOLDOUT_SET: 0.97}
    metrics = Metrics(Submitted("folds", ["f0-s0"], report, 0.6), 10, oof_accuracy=0.99, extra_accuracy=extra)
    scores = trial_scores(kannada_setup(0.25), metrics)
    assert scores["score"] == pytest.approx(0.75 * 0.99 + 0.25 * 0.8)
    assert scores[report] == 0.6 and scores["holdout"] == 0.97  # kept beside the score, never in it
    plain = trial_scores(kannada_setup(0.0), metrics)
    assert plain["score"] == 0.99 and pick not in plain  # without the weight the halves are not the study's


def test_the_default_objective_picks_on_the_submitted_models_own_signal_and_keeps_its_reporting_half_honest():
    """Kannada's trials submit their fold models, judged on Dig-MNIST: a study picks on its picking half (of the
    same models) and Dig-MNIST's reporting half reports, as every benchmark does."""
    judged = get_spec("kannada").judged_sets[0]
    pick, report = judged_half_names(judged)
    setup = kannada_setup(0.0, "submitted")
    assert (setup.signal, setup.picked, setup.reporting) == (report, pick, report)
    assert setup.score_column == f"score (submitted models: {pick})" and setup.columns == {
        report: f"{report} (reports)"
    }
    extra = {judged: 0.5, pick: 0.8, report: 0.6, HOLDOUT_SET: 0.97}
    metrics = Metrics(Submitted("folds", ["f0-s0"], report, 0.6), 10, oof_accuracy=0.99, extra_accuracy=extra)
    assert trial_scores(setup, metrics)["score"] == 0.8
