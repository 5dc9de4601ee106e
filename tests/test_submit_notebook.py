"""common/commands/submit/notebook.py and notebook_send.py: a code competition's notebook, through the kaggle package
cut at its HTTP boundary."""

# ruff: noqa: F811 - the shared fixtures are imported from tests/kaggle_fakes.py, then named as test arguments

from __future__ import annotations

import http.client
import inspect
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import requests

from common.commands.submit import NotebookOptions
from common.commands.submit.notebook_send import Waiter, submit_notebook
from common.ground.errors import UserError
from common.ground.spec import get_spec
from tests.kaggle_fakes import RUN_ID, make_run, no_credentials, no_kaggle  # noqa: F401 - fixtures
from tests.run_fakes import fake_record

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
    (folder / "run.json").write_text(json.dumps(fake_record(folder, status, versions=versions)))
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
        f"api.competition_submit_code(file_name='submission.csv', message='run {RUN_ID}, 0.98765 on OOF', "
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
        "fileName": "submission.csv", "submissionDescription": f"first notebook (run {RUN_ID}, 0.98765 on OOF)",
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
