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


def kannada_setup(weight: float) -> Setup:
    request = StudyRequest("kannada", judged_weight=weight)
    space = read_space(space_file("kannada", None))
    return Setup(request, get_spec("kannada"), base_config("kannada", request, space), space, "s", Path("."))


def test_trials_are_picked_on_one_half_of_the_judged_set_and_reported_on_the_other():
    judged = get_spec("kannada").judged_sets[0]
    pick, report = judged_half_names(judged)
    metrics = {"oof_accuracy": 0.99, "extra_accuracy": {judged: 0.5, pick: 0.8, report: 0.6, HOLDOUT_SET: 0.97}}
    scores = trial_scores(kannada_setup(0.25), metrics)
    assert scores["score"] == pytest.approx(0.75 * 0.99 + 0.25 * 0.8)
    assert scores[report] == 0.6 and scores["holdout"] == 0.97  # kept beside the score, never in it
    plain = trial_scores(kannada_setup(0.0), metrics)
    assert plain["score"] == 0.99 and pick not in plain  # without the weight the halves are not the study's
