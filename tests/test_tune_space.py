"""common/commands/tune/space.py: search spaces as YAML, every mistake in one a one-line error before any work."""

from __future__ import annotations

import pytest

import run
from common.commands.tune import StudyRequest
from common.commands.tune.setup import base_config, check_space
from common.commands.tune.space import read_space, space_file

BAD_SPACES = [
    ("lrr: {low: 0.1, high: 0.2}", "unknown config key 'lrr'"),
    ("lr: {low: 0.01, high: 0.001}", "lr: low 0.01 must be below high 0.001"),
    ("weight_decay: {low: 0.0, high: 0.01, log: true}", "weight_decay: a log range needs low > 0"),
    ("width: {choices: []}", "width: choices must be a non-empty list"),
    ("width: {low: 8.5, high: 32}", "width must be int, got 8.5"),
    ("model: {choices: [small, 3]}", "model must be str, got 3"),
    ("dropout: {low: 0.1, high: 1.5}", "dropout=1.5: config: dropout"),
    ("distort: {low: 0, high: 1}", "distort is a str: give choices, not a range"),
    ("holdout: {low: 0.1, high: 0.2}", "holdout cannot be searched"),
    ("lr: 0.01", "lr: expected {low: A, high: B}"),
    ("fixed: {epochz: 2}\nlr: {low: 0.001, high: 0.01}", "unknown config key 'epochz'"),
    ("lr: {low: 0.001, high: 0.01", "invalid YAML"),
]


@pytest.mark.parametrize("text, message", BAD_SPACES)
def test_bad_search_spaces_give_one_line_and_leave_nothing(text, message, tmp_path, capsys):
    space = tmp_path / "bad.yaml"
    space.write_text(text)
    assert run.main(["tune", "digits", "--space", str(space), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_every_competition_has_a_valid_default_space():
    for competition in ("digits", "mnist", "kannada"):
        request = StudyRequest(competition)
        space = read_space(space_file(competition, None))
        base = base_config(competition, request, space)
        check_space(space, base, request)
        assert space.name == competition and len(space.params) >= 5
        assert base.holdout > 0  # each default space holds out rows that report the best trial honestly
    assert "tune COMP" in run.SUB_COMMANDS and run.COMMANDS["tune"] is run.tune
