"""common/commands/submit/upload.py and kaggle_api.py: a CSV competition's submission.csv checked before an upload,
code competitions refused, credentials, the kaggle call."""

# ruff: noqa: F811 - the shared fixtures are imported from tests/kaggle_fakes.py, then named as test arguments

from __future__ import annotations

import inspect
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common.commands.submit import submit_run
from common.ground.errors import UserError
from common.ground.spec import get_spec
from tests.kaggle_fakes import RUN_ID, make_run, no_credentials, no_kaggle  # noqa: F401 - fixtures

MNIST = get_spec("mnist")


@pytest.fixture
def mnist_data(tmp_path) -> Path:
    """A digit-recognizer folder with the sample submission (ImageId 1..5) that submit checks against."""
    folder = tmp_path / "mnist-data"
    folder.mkdir()
    (folder / "train.csv").write_text("label,pixel0\n")  # only makes the folder recognisable; never parsed here
    pd.DataFrame({"ImageId": np.arange(1, 6), "Label": 0}).to_csv(folder / "sample_submission.csv", index=False)
    return folder


def good_mnist_submission() -> pd.DataFrame:
    return pd.DataFrame({"ImageId": np.arange(1, 6), "Label": [3, 1, 4, 1, 5]})


def mnist_run(root: Path) -> Path:
    return make_run(root, "mnist", good_mnist_submission())


# ---------------------------------------------------------------------------
# Checks, through --dry-run
# ---------------------------------------------------------------------------


def test_dry_run_checks_and_says_what_it_would_send(tmp_path, mnist_data, no_kaggle):
    folder = mnist_run(tmp_path)
    plan = submit_run(tmp_path, MNIST, None, dry_run=True, message="wider model", data_dir=mnist_data)
    assert str(folder / "submission.csv") in plan
    assert "competition: digit-recognizer" in plan
    assert f"wider model (run {RUN_ID}, 0.98765 on OOF)" in plan


def test_run_chosen_by_prefix(tmp_path, mnist_data, no_kaggle):
    mnist_run(tmp_path)
    plan = submit_run(tmp_path, MNIST, RUN_ID[:15], dry_run=True, data_dir=mnist_data)
    assert f"message:     run {RUN_ID}, 0.98765 on OOF" in plan


def wrong_header(frame):
    return frame.rename(columns={"ImageId": "id"})


def missing_row(frame):
    return frame.iloc[:-1]


def ids_swapped(frame):
    frame.loc[[3, 4], "ImageId"] = [5, 4]
    return frame


def label_ten(frame):
    frame.loc[3, "Label"] = 10
    return frame


def label_text(frame):
    frame["Label"] = frame["Label"].astype(object)
    frame.loc[2, "Label"] = "seven"
    return frame


@pytest.mark.parametrize(
    ("breaks", "expected"),
    [
        (wrong_header, "header is id,Label, expected ImageId,Label"),
        (missing_row, "4 rows, expected 5"),
        (ids_swapped, "line 5: id 5, expected 4"),
        (label_ten, "line 5: label 10 is not a digit 0-9"),
        (label_text, "line 4: label 'seven' is not a digit 0-9"),
    ],
)
def test_broken_submission_refused_in_one_line(tmp_path, mnist_data, no_kaggle, breaks, expected):
    folder = make_run(tmp_path, "mnist", breaks(good_mnist_submission()))
    with pytest.raises(UserError, match=expected) as error:
        submit_run(tmp_path, MNIST, None, dry_run=True, data_dir=mnist_data)
    assert str(folder / "submission.csv") in str(error.value)
    assert "\n" not in str(error.value)


def test_empty_submission_refused(tmp_path, mnist_data, no_kaggle):
    make_run(tmp_path, "mnist", b"")
    with pytest.raises(UserError, match="the file is empty"):
        submit_run(tmp_path, MNIST, None, dry_run=True, data_dir=mnist_data)


def test_unfinished_or_unknown_run_refused(tmp_path, mnist_data, no_kaggle):
    make_run(tmp_path, "mnist", good_mnist_submission(), status="running")
    with pytest.raises(UserError, match="no finished run of mnist"):
        submit_run(tmp_path, MNIST, None, dry_run=True, data_dir=mnist_data)
    with pytest.raises(UserError, match=r"is not finished \(status running\)"):
        submit_run(tmp_path, MNIST, RUN_ID, dry_run=True, data_dir=mnist_data)
    with pytest.raises(UserError, match="no run of mnist matches 'nope'"):
        submit_run(tmp_path, MNIST, "nope", dry_run=True, data_dir=mnist_data)


def test_code_competition_takes_no_csv(tmp_path, no_kaggle):
    # run.py sends code competitions to submit_notebook; the CSV path refuses them should anything else call it.
    for dry_run in (False, True):
        with pytest.raises(UserError, match="Kannada-MNIST is a code competition") as error:
            submit_run(tmp_path, get_spec("kannada"), None, dry_run=dry_run)
        assert "only a notebook" in str(error.value)
        assert "python run.py submit kannada" in str(error.value)


def test_no_credentials_is_one_clear_line(tmp_path, mnist_data, no_credentials, capsys):
    mnist_run(tmp_path)
    with pytest.raises(UserError, match="no Kaggle credentials: create a token") as error:
        submit_run(tmp_path, MNIST, None, data_dir=mnist_data)
    assert "\n" not in str(error.value)
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err == ""


def fake_kaggle(monkeypatch, api_class: type) -> None:
    """Stands in for the kaggle package (no network): `from kaggle.api.kaggle_api_extended import KaggleApi`."""
    extended = types.ModuleType("kaggle.api.kaggle_api_extended")
    extended.KaggleApi = api_class
    monkeypatch.setitem(sys.modules, "kaggle", types.ModuleType("kaggle"))
    monkeypatch.setitem(sys.modules, "kaggle.api", types.ModuleType("kaggle.api"))
    monkeypatch.setitem(sys.modules, "kaggle.api.kaggle_api_extended", extended)
    monkeypatch.setenv("KAGGLE_API_TOKEN", "fake-token")


class RecordingApi:
    calls: list = []

    def authenticate(self):
        pass

    def competition_submit(self, file_name, message, competition, quiet=False, sandbox=False):
        RecordingApi.calls.append((file_name, message, competition))
        return types.SimpleNamespace(message="Successfully submitted to Digit Recognizer")


def test_upload_calls_competition_submit(tmp_path, mnist_data, no_credentials, monkeypatch):
    fake_kaggle(monkeypatch, RecordingApi)
    folder = mnist_run(tmp_path)
    report = submit_run(tmp_path, MNIST, None, message="first try", data_dir=mnist_data)
    assert RecordingApi.calls == [
        (str(folder / "submission.csv"), f"first try (run {RUN_ID}, 0.98765 on OOF)", "digit-recognizer")
    ]
    assert "Successfully submitted" in report


class RejectingApi(RecordingApi):
    def authenticate(self):
        print("Authentication required to call the Kaggle API. (a page of help)")
        sys.exit(1)  # what kaggle 2.2.5 does when no credential works


class FailingUploadApi(RecordingApi):
    def competition_submit(self, file_name, message, competition, quiet=False, sandbox=False):
        raise ConnectionError("Max retries exceeded with url: /api/v1/competitions")


@pytest.mark.parametrize(
    ("api_class", "expected"),
    [(RejectingApi, "credentials found were rejected"), (FailingUploadApi, "upload to digit-recognizer failed")],
)
def test_kaggle_failures_become_one_line(
    tmp_path, mnist_data, no_credentials, monkeypatch, capsys, api_class, expected
):
    fake_kaggle(monkeypatch, api_class)
    mnist_run(tmp_path)
    with pytest.raises(UserError, match=expected):
        submit_run(tmp_path, MNIST, None, data_dir=mnist_data)
    assert "Authentication required" not in capsys.readouterr().out


def test_real_competition_submit_signature(no_credentials, capsys):
    # The fakes above mirror this signature; importing the real package without credentials only prints help.
    from kaggle.api.kaggle_api_extended import KaggleApi

    parameters = list(inspect.signature(KaggleApi.competition_submit).parameters)
    assert parameters[:4] == ["self", "file_name", "message", "competition"]
    assert "quiet" in parameters
