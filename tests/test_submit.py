"""common/commands/submit.py: checks before an upload, code competitions refused, credentials, the kaggle call."""

from __future__ import annotations

import http.client
import inspect
import json
import re
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests

from common.commands.submit import NotebookOptions, Waiter, submit_notebook, submit_run
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


# ---------------------------------------------------------------------------
# Code competitions: the notebook path through the kaggle package, cut at its HTTP boundary
# ---------------------------------------------------------------------------

KANNADA = get_spec("kannada")
OWNER = "ada"  # the user the fake token introspects to
DATASET = f"kannada-models-{RUN_ID}"
KERNEL = f"kannada-{RUN_ID}"
API = "https://api.kaggle.com/v1/"  # kagglesdk's production endpoint: POST API + service/method, JSON both ways
UPLOAD_URL = "https://storage.test/upload/blob"  # what StartBlobUpload answers; files are PUT there


def kannada_run(root: Path, status: str = "finished") -> Path:
    """A fake finished Kannada run: two units with (fake) saved models, as the kernel command reads them."""
    folder = make_run(root, "kannada", b"", status)
    versions = {"keras": "3.15.1", "tensorflow": "2.21.0"}
    (folder / "run.json").write_text(json.dumps({"run_id": RUN_ID, "status": status, "versions": versions}))
    for fold in range(2):
        unit = folder / "units" / f"f{fold}-s0"
        unit.mkdir(parents=True)
        (unit / "model.keras").write_bytes(bytes(1000 + fold))
        (unit / "unit.json").write_text(json.dumps({"backend": "tensorflow"}))
    return folder


def kaggle_error(code: int, message: str) -> tuple[int, dict]:
    return code, {"code": code, "message": message}  # how Kaggle's API answers a refusal


def happy_answers() -> dict[str, list[tuple[int, dict]]]:
    """Kaggle's answers, request by request, in the shapes kagglesdk parses (the last one repeats)."""
    return {
        "IntrospectToken": [(200, {"active": True, "username": OWNER})],
        # ours, then dataset_create_new's own check: no such dataset yet; then it is processed
        "GetDatasetStatus": [kaggle_error(404, "Not found")] * 2 + [(200, {"status": "BLOBS_RECEIVED"})]
        + [(200, {"status": "READY"})],
        "StartBlobUpload": [(200, {"token": "blob-token", "createUrl": UPLOAD_URL})],
        "CreateDataset": [(200, {"ref": f"{OWNER}/{DATASET}", "url": f"https://www.kaggle.com/datasets/{OWNER}/{DATASET}"})],
        "SaveKernel": [(200, {"ref": f"/code/{OWNER}/{KERNEL}", "url": f"https://www.kaggle.com/code/{OWNER}/{KERNEL}",
                              "versionNumber": 3})],
        "GetKernelSessionStatus": [(200, {"status": "QUEUED"}), (200, {"status": "RUNNING"}), (200, {"status": "COMPLETE"})],
        "CreateCodeSubmission": [(200, {"message": "Submission successful", "ref": 41})],
    }  # fmt: skip


class FakeKaggle:
    """Kaggle's side of requests.Session.send, the one HTTP call kagglesdk and the upload code go through."""

    def __init__(self, answers: dict[str, list[tuple[int, dict]]]):
        self.answers = {name: list(queue) for name, queue in answers.items()}  # consumed: copies
        self.requests: list[tuple[str, str, Any]] = []  # (method, service/method or URL, JSON payload or bytes sent)
        self.authorization: set[str] = set()

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        if not request.url.startswith(API):  # a file, PUT to the signed URL that StartBlobUpload answered
            assert request.url == UPLOAD_URL, f"unexpected request to {request.url}"
            self.requests.append((request.method, request.url, len(request.body.read())))
            return fake_response(request, 200, {})
        name = request.url.removeprefix(API)
        self.requests.append((request.method, name, json.loads(request.body or b"{}")))
        self.authorization.add(request.headers.get("Authorization", ""))
        queue = self.answers.get(name.split("/")[-1])
        assert queue, f"unexpected request {name}"  # not retried: an AssertionError is no network error
        return fake_response(request, *(queue.pop(0) if len(queue) > 1 else queue[0]))

    def calls(self) -> list[str]:
        """Every request but token introspection (made again whenever `import kaggle` runs for the first time)."""
        return [name.split("/")[-1] if name.startswith(("datasets", "blobs", "kernels", "comp")) else f"{method} {name}"
                for method, name, _ in self.requests if not name.endswith("IntrospectToken")]  # fmt: skip

    def payloads(self, method: str) -> list[dict]:
        return [payload for _, name, payload in self.requests if name.endswith(f"/{method}")]


def fake_response(request: requests.PreparedRequest, status: int, body: dict) -> requests.Response:
    response = requests.Response()
    response.status_code, response.reason = status, http.client.responses[status]
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    response.url, response.request = request.url, request
    return response


@pytest.fixture
def kaggle_http(no_credentials, monkeypatch, tmp_path):
    """A fake token (KAGGLE_API_TOKEN, introspected through the API as kaggle 2.x does) and Kaggle behind the HTTP
    boundary: call it with the answers; nothing reaches the network."""

    def install(answers: dict[str, list[tuple[int, dict]]]) -> FakeKaggle:
        fake = FakeKaggle(answers)
        monkeypatch.setattr(requests.Session, "send", fake.send)
        monkeypatch.setenv("KAGGLE_API_TOKEN", "fake-token")
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # the package's upload-resume state
        (tmp_path / "tmp").mkdir()
        return fake

    return install


def notebook_options(tmp_path: Path, progress: list[str] | None = None, **changes) -> NotebookOptions:
    say = progress.append if progress is not None else lambda line: None
    return NotebookOptions(dest=tmp_path / "notebook", poll_seconds=0, say=say, **changes)


def test_notebook_dry_run_shows_every_call_without_credentials(tmp_path, no_credentials, no_kaggle):
    kannada_run(tmp_path)
    plan = submit_notebook(tmp_path, KANNADA, None, notebook_options(tmp_path, dry_run=True))
    folder = tmp_path / "notebook"
    owner = "your-kaggle-username"
    assert f"api.dataset_create_new(folder='{folder / 'dataset'}', public=False, quiet=True, dir_mode='skip')" in plan
    assert f"api.dataset_create_version(folder='{folder / 'dataset'}', version_notes='models of run {RUN_ID}'" in plan
    assert "ensemble.json (" in plan and "f0-s0.keras (1.0 KiB), f1-s0.keras (1.0 KiB)" in plan
    assert f"api.kernels_push(folder='{folder}')" in plan and '"enable_internet": false' in plan
    assert '"dataset_sources": [\n' in plan and f'"{owner}/{DATASET}"' in plan and '"Kannada-MNIST"' in plan
    assert f"api.kernels_status(kernel='{owner}/{KERNEL}/VERSION')" in plan
    assert (
        f"api.competition_submit_code(file_name='submission.csv', message='run {RUN_ID}, OOF accuracy 0.98765', "
        f"competition='Kannada-MNIST', kernel='{owner}/{KERNEL}', kernel_version=VERSION, quiet=True)"
    ) in plan
    assert json.loads((folder / "kernel-metadata.json").read_text())["id"] == f"{owner}/{KERNEL}"


def test_notebook_submitted_through_the_kaggle_client(tmp_path, kaggle_http, capsys):
    kaggle = kaggle_http(happy_answers())
    kannada_run(tmp_path)
    progress = []
    options = notebook_options(tmp_path, progress, message="first notebook")
    report = submit_notebook(tmp_path, KANNADA, None, options)

    uploads = ["StartBlobUpload", f"PUT {UPLOAD_URL}"] * 3
    statuses = ["GetKernelSessionStatus"] * 3
    assert kaggle.calls() == ["GetDatasetStatus"] * 2 + uploads + ["CreateDataset"] + ["GetDatasetStatus"] * 2 + [
        "SaveKernel", *statuses, "CreateCodeSubmission"]  # fmt: skip
    assert kaggle.authorization == {"Bearer fake-token"}

    dataset = tmp_path / "notebook" / "dataset"
    sent = {p["name"]: p["contentLength"] for p in kaggle.payloads("StartBlobUpload")}
    assert sent == {name: (dataset / name).stat().st_size for name in ["ensemble.json", "f0-s0.keras", "f1-s0.keras"]}
    assert sorted(size for method, _, size in kaggle.requests if method == "PUT") == sorted(sent.values())
    (created,) = kaggle.payloads("CreateDataset")
    assert (created["ownerSlug"], created["slug"], created["isPrivate"]) == (OWNER, DATASET, True)
    assert created["licenseName"] == "CC0-1.0" and created["files"] == [{"token": "blob-token"}] * 3

    (pushed,) = kaggle.payloads("SaveKernel")
    assert (pushed["slug"], pushed["newTitle"], pushed["language"], pushed["kernelType"]) == (
        f"{OWNER}/{KERNEL}", KERNEL, "python", "script")  # fmt: skip
    assert pushed["enableInternet"] is False and pushed["enableGpu"] is False and pushed["isPrivate"] is True
    assert pushed["datasetDataSources"] == [f"{OWNER}/{DATASET}"]
    assert pushed["competitionDataSources"] == ["Kannada-MNIST"]
    assert f"RUN_ID = {RUN_ID!r}" in pushed["text"]
    assert kaggle.payloads("GetKernelSessionStatus")[-1] == {
        "userName": OWNER,
        "kernelSlug": KERNEL,
        "versionLabel": "v3",
    }
    assert kaggle.payloads("CreateCodeSubmission") == [{
        "competitionName": "Kannada-MNIST", "kernelOwner": OWNER, "kernelSlug": KERNEL, "kernelVersion": 3,
        "fileName": "submission.csv", "submissionDescription": f"first notebook (run {RUN_ID}, OOF accuracy 0.98765)",
    }]  # fmt: skip

    assert any(f"dataset {OWNER}/{DATASET}: blobs_received" in line for line in progress)
    assert [line.split(": ")[1].split(" (")[0] for line in progress if f"notebook {OWNER}/{KERNEL}/3: " in line] == [
        "pushed", "queued", "running", "complete"]  # fmt: skip
    assert "Submission successful" in report and f"notebook {OWNER}/{KERNEL}/3" in report
    metadata = json.loads((tmp_path / "notebook" / "kernel-metadata.json").read_text())
    assert metadata["id"] == f"{OWNER}/{KERNEL}" and metadata["dataset_sources"] == [f"{OWNER}/{DATASET}"]
    assert "Authentication required" not in capsys.readouterr().out


def test_an_existing_dataset_gets_a_new_version(tmp_path, kaggle_http):
    answers = happy_answers() | {
        "GetDatasetStatus": [(200, {"status": "READY"})],
        "CreateDatasetVersion": [(200, {"ref": f"{OWNER}/{DATASET}", "status": "ok"})],
    }
    kaggle = kaggle_http(answers)
    kannada_run(tmp_path)
    submit_notebook(tmp_path, KANNADA, None, notebook_options(tmp_path))
    assert "CreateDataset" not in kaggle.calls()
    (version,) = kaggle.payloads("CreateDatasetVersion")
    assert (version["ownerSlug"], version["datasetSlug"]) == (OWNER, DATASET)
    assert version["body"]["versionNotes"] == f"models of run {RUN_ID}" and len(version["body"]["files"]) == 3
    assert kaggle.calls()[-1] == "CreateCodeSubmission"


READY_AT_ONCE = [kaggle_error(404, "Not found")] * 2 + [(200, {"status": "READY"})]


@pytest.mark.parametrize(
    ("changes", "expected", "last"),
    [
        (
            {"CreateDataset": [kaggle_error(403, "You have reached the limit of private datasets")]},
            f"Kaggle refused to create dataset {OWNER}/{DATASET}: HTTP 403: You have reached the limit",
            "CreateDataset",
        ),
        (
            {"GetDatasetStatus": READY_AT_ONCE[:2] + [(200, {"status": "FAILED"})]},
            f"dataset {OWNER}/{DATASET} is failed on Kaggle",
            "GetDatasetStatus",
        ),
        (
            {"SaveKernel": [(200, {"error": "Competition rules must be accepted first"})]},
            f"Kaggle refused to push notebook {OWNER}/{KERNEL}: Competition rules must be accepted first",
            "SaveKernel",
        ),
        (
            {"GetKernelSessionStatus": [(200, {"status": "RUNNING"}), (200, {"status": "ERROR", "failureMessage":
                                                                            "Process exited\nwith code 1"})]},
            f"notebook {OWNER}/{KERNEL}/3 failed on Kaggle: Process exited with code 1 (log: https://www.kaggle.com/code/",
            "GetKernelSessionStatus",
        ),
        (
            {"CreateCodeSubmission": [kaggle_error(400, "Notebook output submission.csv not found")]},
            f"Kaggle refused to submit notebook {OWNER}/{KERNEL}/3 to Kannada-MNIST: HTTP 400: Notebook output",
            "CreateCodeSubmission",
        ),
    ],
    ids=["dataset-refused", "dataset-failed", "push-refused", "notebook-failed", "submission-refused"],
)  # fmt: skip
def test_refusals_and_failures_are_one_line(tmp_path, kaggle_http, changes, expected, last):
    kaggle = kaggle_http(happy_answers() | {"GetDatasetStatus": READY_AT_ONCE} | changes)
    kannada_run(tmp_path)
    with pytest.raises(UserError, match=re.escape(expected)) as error:
        submit_notebook(tmp_path, KANNADA, None, notebook_options(tmp_path))
    assert "\n" not in str(error.value)
    assert kaggle.calls()[-1] == last  # nothing more is asked of Kaggle after the refusal


def test_a_notebook_still_running_at_the_deadline_is_one_line(tmp_path, kaggle_http):
    still = {"GetDatasetStatus": READY_AT_ONCE, "GetKernelSessionStatus": [(200, {"status": "RUNNING"})]}
    kaggle = kaggle_http(happy_answers() | still)
    kannada_run(tmp_path)
    options = notebook_options(tmp_path, wait_minutes=0)
    with pytest.raises(UserError, match=f"notebook {OWNER}/{KERNEL}/3: still running after 0 minutes") as error:
        submit_notebook(tmp_path, KANNADA, None, options)
    assert f"kaggle competitions submit Kannada-MNIST -k {OWNER}/{KERNEL} -v 3 -f submission.csv" in str(error.value)
    assert "CreateCodeSubmission" not in kaggle.calls()


def test_waits_poll_until_their_deadline():
    clock = iter(range(0, 10_000, 60)).__next__  # each reading one minute later
    lines, sleeps = [], []
    waiter = Waiter(2.5, 15, lines.append, lambda: float(clock()), sleeps.append)
    with pytest.raises(UserError, match="job: still queued after 2.5 minutes"):
        waiter.until("job", lambda: (False, "queued"), "later")
    assert sleeps == [15, 15] and lines[0] == "  job: queued (1.0 of at most 2.5 min)"


def test_notebook_credentials_rejected_or_missing(tmp_path, kaggle_http, monkeypatch, capsys):
    kaggle = kaggle_http(happy_answers() | {"IntrospectToken": [(200, {"active": False})]})
    kannada_run(tmp_path)
    with pytest.raises(UserError, match="credentials found were rejected"):
        submit_notebook(tmp_path, KANNADA, None, notebook_options(tmp_path))
    assert kaggle.calls() == [] and not (tmp_path / "notebook").exists()
    monkeypatch.delenv("KAGGLE_API_TOKEN")
    with pytest.raises(UserError, match="no Kaggle credentials: create a token"):
        submit_notebook(tmp_path, KANNADA, None, notebook_options(tmp_path))
    assert not (tmp_path / "notebook").exists()
    assert "Authentication required" not in capsys.readouterr().out


def test_notebook_of_an_unfinished_run_refused(tmp_path, no_kaggle):
    kannada_run(tmp_path, status="running")
    with pytest.raises(UserError, match=r"is not finished \(status running\)"):
        submit_notebook(tmp_path, KANNADA, RUN_ID, notebook_options(tmp_path, dry_run=True))
    with pytest.raises(UserError, match="no finished run of kannada"):
        submit_notebook(tmp_path, KANNADA, None, notebook_options(tmp_path, dry_run=True))


def test_real_code_submission_signature(no_credentials, capsys):
    # The calls above go through the real package; these are the names and arguments submit.py passes.
    from kaggle.api.kaggle_api_extended import KaggleApi

    wanted = {
        "competition_submit_code": ["file_name", "message", "competition", "kernel", "kernel_version", "quiet"],
        "dataset_create_new": ["folder", "public", "quiet", "dir_mode"],
        "dataset_create_version": ["folder", "version_notes", "quiet", "dir_mode"],
        "kernels_push": ["folder"],
        "kernels_status": ["kernel"],
        "dataset_status": ["dataset"],
    }
    for name, arguments in wanted.items():
        assert set(arguments) <= set(inspect.signature(getattr(KaggleApi, name)).parameters), name
