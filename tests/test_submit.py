"""common/commands/submit/: `python run.py submit` sends each competition down its path; the offline demo is
refused before anything else."""

# ruff: noqa: F811 - the shared fixtures are imported from tests/kaggle_fakes.py, then named as test arguments

from __future__ import annotations

import pytest

import run
from common.commands.submit import NotebookOptions, submit, submit_run
from common.commands.submit.notebook_send import submit_notebook
from common.ground.errors import UserError
from common.ground.spec import COMPETITIONS, get_spec
from common.runs.notebook import NotebookLevers
from tests.kaggle_fakes import no_kaggle  # noqa: F401 - fixture

DIGITS = get_spec("digits")


def test_the_offline_demo_is_refused_in_one_line_before_anything_else(tmp_path, no_kaggle, capsys):
    # No run folder and no data: the refusal comes before either is looked for, dry run or not.
    for dry_run in (True, False):
        with pytest.raises(UserError, match="digits is an offline demo, not a Kaggle competition") as error:
            submit(tmp_path, DIGITS, None, None, NotebookOptions(dry_run=dry_run))
        assert "\n" not in str(error.value) and DIGITS.slug not in str(error.value)
    with pytest.raises(UserError, match="offline demo"):
        submit_run(tmp_path, DIGITS, None, dry_run=True)
    with pytest.raises(UserError, match="offline demo"):
        submit_notebook(tmp_path, DIGITS, None, NotebookOptions(dry_run=True))
    assert run.main(["submit", "digits", "--dry-run", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_only_the_offline_demo_is_off_kaggle():
    assert [name for name in COMPETITIONS if not get_spec(name).on_kaggle] == ["digits"]


def test_transductive_is_refused_for_a_csv_competition(tmp_path, no_kaggle):
    with pytest.raises(UserError, match="--transductive is a notebook's lever, for code competitions"):
        levers = NotebookLevers.from_flags(transductive=True, adabn=False)
        submit(tmp_path, get_spec("mnist"), None, None, NotebookOptions(dry_run=True, levers=levers))
