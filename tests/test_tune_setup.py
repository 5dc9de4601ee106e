"""common/commands/tune/setup.py: what `python run.py tune` is given, checked before any folder is written."""

from __future__ import annotations

from pathlib import Path

import pytest

import run
from common.commands.tune import StudyRequest
from common.commands.tune.setup import Setup, base_config, judged_set
from common.commands.tune.space import read_space, space_file
from common.data.files import judged_half_names
from common.ground.spec import get_spec


@pytest.mark.parametrize(
    "args, message",
    [
        (["--storage", "nosuchdb://x"], "--storage nosuchdb://x: cannot open it"),
        (["--storage", "sqlite:////no/such/folder/study.db"], "unable to open database file"),
        (["--objective", "holdout", "holdout=0"], "--objective holdout needs a holdout"),
        (["--judged-weight", "0.3"], "--judged-weight: digits has no judged set"),
        (["--dig-weight", "0.3"], "--judged-weight: digits has no judged set"),  # the flag's older name
        (["--study", "a b"], "--study 'a b': use letters"),
        (["--space", "nosuch"], "unknown search space 'nosuch'"),
        (["--trials", "0"], "--trials must be at least 1"),
        (["model=lenet5"], "model lenet5 does not read width or dropout (it reads neither width nor dropout)"),
        (["extra_train=dig_mnist"], "extra_train 'dig_mnist' is not an extra set of digits"),
    ],
)
def test_bad_arguments_give_one_line_and_leave_nothing(args, message, digits_dir, tmp_path, capsys):
    assert run.main(["tune", "digits", *args, "--data-dir", str(digits_dir), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_judged_weight_is_refused_when_trials_train_on_the_judged_set(tmp_path, capsys):
    args = ["tune", "kannada", "--judged-weight", "0.5", "extra_train=dig_mnist", "--out", str(tmp_path / "out")]
    assert run.main(args) == 2
    assert "the trials would train on Dig-MNIST.csv (extra_train)" in capsys.readouterr().err


def test_the_judged_weight_is_refused_where_the_trials_are_picked_on_the_judged_set_already(tmp_path, capsys):
    assert run.main(["tune", "kannada", "--judged-weight", "0.5", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "the trials are picked on dig_mnist_pick already" in err


def test_the_judged_set_comes_from_the_competitions_spec():
    kannada = get_spec("kannada")
    request = StudyRequest("kannada", objective="oof", judged_weight=0.25)
    space = read_space(space_file("kannada", None))
    checked = Setup(request, kannada, base_config("kannada", request, space), space, "s", Path("."))
    assert judged_set(kannada) == kannada.judged_sets[0] and judged_set(get_spec("mnist")) is None
    pick, report = judged_half_names(kannada.judged_sets[0])
    assert checked.judged_halves == (pick, report)
    assert checked.score_column == f"score (0.75 oof + 0.25 {pick})"
    assert list(checked.columns) == ["oof", pick, report, "holdout"]


@pytest.mark.parametrize("competition", ["kannada", "mnist", "digits"])
def test_shipped_spaces_judge_fold_recipes_on_a_holdout(competition):
    """A trial is one run of its recipe's fold models, scored out of fold with a holdout no trial picks on; a
    competition whose defaults train full-data models (Kannada) leaves them out of every trial."""
    space = read_space(space_file(competition, None))
    base = base_config(competition, StudyRequest(competition), space)
    assert base.holdout == 0.1 and base.full_models == 0 and base.folds >= 2
