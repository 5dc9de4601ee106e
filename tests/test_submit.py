"""common/commands/submit.py: checks before an upload, code competitions refused, credentials, the kaggle call."""

from __future__ import annotations

import inspect
import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common.commands.submit import submit_run
from common.ground.errors import UserError
from common.ground.spec import get_spec

RUN_ID = "20260101-000000-smoke-abcd"
DIGITS = get_spec("digits")
MNIST = get_spec("mnist")


def make_run(root: Path, competition: str, submission: pd.DataFrame | bytes, status: str = "finished") -> Path:
    """A fake run folder: run.json, config.yaml, metrics.json and submission.csv (no training)."""
    folder = root / competition / RUN_ID
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"run_id": RUN_ID, "status": status}))
    (folder / "config.yaml").write_text("folds: 2\n")
    (folder / "metrics.json").write_text(json.dumps({"oof_accuracy": 0.987654}))
    raw = submission if isinstance(submission, bytes) else submission.to_csv(index=False).encode()
    (folder / "submission.csv").write_bytes(raw)
    return folder


def good_digits_submission() -> pd.DataFrame:
    # The offline digits competition's sample_submission: ids 0..299, columns id,label.
    return pd.DataFrame({"id": np.arange(300), "label": np.arange(300) % 10})


@pytest.fixture
def no_kaggle(monkeypatch):
    """Any `import kaggle` fails: proves a code path never imports (so never authenticates) the package."""
    for name in ["kaggle", "kaggle.api", "kaggle.api.kaggle_api_extended"]:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    """No Kaggle credential anywhere: env vars unset, empty config dir, and a home without ~/.kaggle."""
    for name in ["KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"]:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "kaggle-config").mkdir()
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture
def mnist_data(tmp_path) -> Path:
    """A digit-recognizer folder with the sample submission (ImageId 1..5) that submit checks against."""
    folder = tmp_path / "mnist-data"
    folder.mkdir()
    (folder / "train.csv").write_text("label,pixel0\n")  # only makes the folder recognisable; never parsed here
    pd.DataFrame({"ImageId": np.arange(1, 6), "Label": 0}).to_csv(folder / "sample_submission.csv", index=False)
    return folder


def mnist_run(root: Path) -> Path:
    return make_run(root, "mnist", pd.DataFrame({"ImageId": np.arange(1, 6), "Label": [3, 1, 4, 1, 5]}))


# ---------------------------------------------------------------------------
# Checks, through --dry-run
# ---------------------------------------------------------------------------


def test_dry_run_checks_and_says_what_it_would_send(tmp_path, digits_dir, no_kaggle):
    folder = make_run(tmp_path, "digits", good_digits_submission())
    plan = submit_run(tmp_path, DIGITS, None, dry_run=True, message="wider model", data_dir=digits_dir)
    assert str(folder / "submission.csv") in plan
    assert "sklearn-digits" in plan
    assert f"wider model (run {RUN_ID}, OOF accuracy 0.98765)" in plan


def test_run_chosen_by_prefix(tmp_path, digits_dir, no_kaggle):
    make_run(tmp_path, "digits", good_digits_submission())
    plan = submit_run(tmp_path, DIGITS, RUN_ID[:15], dry_run=True, data_dir=digits_dir)
    assert f"message:     run {RUN_ID}, OOF accuracy 0.98765" in plan


def wrong_header(frame):
    return frame.rename(columns={"id": "ImageId"})


def missing_row(frame):
    return frame.iloc[:-1]


def ids_swapped(frame):
    frame.loc[[3, 4], "id"] = [4, 3]
    return frame


def label_ten(frame):
    frame.loc[7, "label"] = 10
    return frame


def label_text(frame):
    frame["label"] = frame["label"].astype(object)
    frame.loc[2, "label"] = "seven"
    return frame


@pytest.mark.parametrize(
    ("breaks", "expected"),
    [
        (wrong_header, "header is ImageId,label, expected id,label"),
        (missing_row, "299 rows, expected 300"),
        (ids_swapped, "line 5: id 4, expected 3"),
        (label_ten, "line 9: label 10 is not a digit 0-9"),
        (label_text, "line 4: label 'seven' is not a digit 0-9"),
    ],
)
def test_broken_submission_refused_in_one_line(tmp_path, digits_dir, no_kaggle, breaks, expected):
    folder = make_run(tmp_path, "digits", breaks(good_digits_submission()))
    with pytest.raises(UserError, match=expected) as error:
        submit_run(tmp_path, DIGITS, None, dry_run=True, data_dir=digits_dir)
    assert str(folder / "submission.csv") in str(error.value)
    assert "\n" not in str(error.value)


def test_empty_submission_refused(tmp_path, digits_dir, no_kaggle):
    make_run(tmp_path, "digits", b"")
    with pytest.raises(UserError, match="the file is empty"):
        submit_run(tmp_path, DIGITS, None, dry_run=True, data_dir=digits_dir)


def test_unfinished_or_unknown_run_refused(tmp_path, digits_dir, no_kaggle):
    make_run(tmp_path, "digits", good_digits_submission(), status="running")
    with pytest.raises(UserError, match="no finished run of digits"):
        submit_run(tmp_path, DIGITS, None, dry_run=True, data_dir=digits_dir)
    with pytest.raises(UserError, match=r"is not finished \(status running\)"):
        submit_run(tmp_path, DIGITS, RUN_ID, dry_run=True, data_dir=digits_dir)
    with pytest.raises(UserError, match="no run of digits matches 'nope'"):
        submit_run(tmp_path, DIGITS, "nope", dry_run=True, data_dir=digits_dir)


def test_offline_competition_is_never_uploaded(tmp_path, digits_dir, no_kaggle):
    make_run(tmp_path, "digits", good_digits_submission())
    with pytest.raises(UserError, match="offline competition"):
        submit_run(tmp_path, DIGITS, None, data_dir=digits_dir)


# ---------------------------------------------------------------------------
# Code competitions and credentials
# ---------------------------------------------------------------------------


def test_code_competition_refused_with_pointer_to_kernel(tmp_path, no_kaggle):
    for dry_run in (False, True):
        with pytest.raises(UserError, match="Kannada-MNIST is a code competition") as error:
            submit_run(tmp_path, get_spec("kannada"), None, dry_run=dry_run)
        assert "only a notebook" in str(error.value)
        assert "python run.py kernel kannada" in str(error.value)


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
        (str(folder / "submission.csv"), f"first try (run {RUN_ID}, OOF accuracy 0.98765)", "digit-recognizer")
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
