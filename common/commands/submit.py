"""Submitting a finished run to Kaggle with the official kaggle package.

CSV competitions (digit-recognizer): the run's submission.csv is checked against sample_submission.csv, then
uploaded. Code competitions (Kannada-MNIST) take a notebook: `run.py` hands this module the folder that the
`kernel` command writes (Kaggle's own kernel-metadata.json and dataset-metadata.json formats), and the whole
path goes through the kaggle package's API client: dataset of the models created (or versioned) and waited
on, notebook pushed and its version waited on, its output file submitted to the competition.

python run.py submit mnist                 # the latest finished run
python run.py submit mnist 20261125-1532   # a run by id or unique prefix
python run.py submit mnist --dry-run       # every check, no upload (no kaggle import, no credentials)
python run.py submit kannada [RUN] [--dry-run] [--wait-minutes 30]
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from requests import HTTPError  # the kaggle package's client raises requests' HTTPError for refusals

from common import runs
from common.data.files import kaggle_credentials_present, locate, read_csv_bytes, read_sample
from common.ground.errors import UserError, first_line
from common.ground.spec import CompetitionSpec
from common.runs import Run, write_json
from common.runs.notebook import DATASET_DIR, DATASET_METADATA, KERNEL_METADATA, write_kernel
from common.runs.submission import check_submission

NO_CREDENTIALS = (
    "no Kaggle credentials: create a token at https://www.kaggle.com/settings/api and set KAGGLE_API_TOKEN "
    "(or save it to ~/.kaggle/access_token), or run `kaggle auth login`"
)


# ---------------------------------------------------------------------------
# What may be submitted
# ---------------------------------------------------------------------------


def refuse_code_competition(spec: CompetitionSpec) -> None:
    """Code competitions score a notebook run on a hidden test set: Kaggle takes no uploaded CSV."""
    if getattr(spec, "code_competition", False):
        raise UserError(
            f"{spec.slug} is a code competition: Kaggle takes no uploaded CSV, only a notebook that predicts "
            f"its hidden test set; `python run.py submit {spec.name}` pushes one (`python run.py kernel "
            f"{spec.name}` writes it for you to push by hand)"
        )


def checked_submission_file(run: Run, spec: CompetitionSpec, data_dir: str | Path | None) -> Path:
    """The run's submission.csv after the same checks Kaggle makes: header, row count, ids in order, labels."""
    path = run.submission_file
    if not path.is_file():
        raise UserError(f"{path}: not found (the run wrote no submission)")
    sample = read_sample(locate(spec, data_dir), spec)
    check_submission(spec, sample, read_csv_bytes(path.read_bytes(), str(path)), str(path))
    return path


def describe(run: Run, message: str | None) -> str:
    """The submission's description on Kaggle: the user's note, then the run id and its OOF score."""
    oof = run.metrics().get("oof_accuracy")
    facts = f"run {run.run_id}, OOF accuracy {oof:.5f}" if oof is not None else f"run {run.run_id}"
    return f"{message} ({facts})" if message else facts


# ---------------------------------------------------------------------------
# The official kaggle package
# ---------------------------------------------------------------------------


def authenticated_api():
    """A KaggleApi that has authenticated, or one UserError line saying what is missing.

    The kaggle package authenticates as soon as it is imported and, without credentials, prints a
    page of help and calls exit(1): we check first, then import with its output held back.
    """
    oauth_file = Path.home() / ".kaggle" / "credentials.json"  # written by `kaggle auth login`
    if not (kaggle_credentials_present() or oauth_file.is_file()):
        raise UserError(NO_CREDENTIALS)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
            api.authenticate()
        except SystemExit:  # the package's own "authentication required" exit
            raise UserError(f"{NO_CREDENTIALS} (the credentials found were rejected or could not be checked)") from None
        except Exception as error:  # noqa: BLE001 - network and HTTP errors of many types all mean "cannot log in"
            raise UserError(f"Kaggle authentication failed (no network?): {error}") from None
    return api


def http_reason(error: HTTPError) -> str:
    """'HTTP 403: <Kaggle's message>' from a refusal, as far as the response says."""
    response = error.response
    try:
        message = response.json().get("message", "") if response is not None else ""
    except ValueError:
        message = ""
    code = getattr(response, "status_code", None)
    return f"HTTP {code}: {message or first_line(error)}" if code else first_line(error)


@contextlib.contextmanager
def kaggle_step(what: str) -> Iterator[None]:
    """One UserError line for anything that goes wrong while Kaggle is asked to `what` ('create dataset x/y')."""
    try:
        yield
    except UserError:
        raise
    except HTTPError as error:
        raise UserError(f"Kaggle refused to {what}: {http_reason(error)}") from None
    except Exception as error:  # noqa: BLE001 - the package raises ValueError, ConnectionError... all the user's to fix
        raise UserError(f"could not {what}: {first_line(error)}") from None


def show_call(name: str, arguments: dict[str, Any]) -> str:
    """A call of the kaggle API as written in Python: what --dry-run prints, and what is sent."""
    return f"api.{name}({', '.join(f'{key}={value!r}' for key, value in arguments.items())})"


def call(api, name: str, arguments: dict[str, Any], what: str) -> Any:
    with kaggle_step(what):
        return getattr(api, name)(**arguments)


# ---------------------------------------------------------------------------
# CSV competitions: uploading submission.csv
# ---------------------------------------------------------------------------


def upload(file: Path, slug: str, message: str) -> str:
    """Sends `file` to the competition; returns Kaggle's answer."""
    api = authenticated_api()
    try:
        response = api.competition_submit(str(file), message, slug, quiet=True)
    except Exception as error:  # noqa: BLE001 - HTTP errors (rules not accepted, 404...) are the user's to fix
        raise UserError(f"upload to {slug} failed: {error}") from None
    answer = getattr(response, "message", "") or "submitted"
    if "fail" in answer.lower():
        raise UserError(f"upload to {slug} failed: {answer}")
    return answer


def submit_run(
    root: Path,
    spec: CompetitionSpec,
    run_id: str | None = None,
    dry_run: bool = False,
    message: str | None = None,
    data_dir: str | Path | None = None,
) -> str:
    """Checks a finished run's submission.csv and uploads it (or, dry, says what it would send)."""
    refuse_code_competition(spec)
    run = runs.finished_run(root, spec.name, run_id)
    file = checked_submission_file(run, spec, data_dir)
    description = describe(run, message)
    plan = f"file:        {file}\ncompetition: {spec.slug}\nmessage:     {description}"
    if dry_run:
        return f"dry run: checks passed; would submit\n{plan}"
    if spec.make_files is not None:
        raise UserError(f"{spec.name} is an offline competition with no Kaggle page: nothing to upload (try --dry-run)")
    answer = upload(file, spec.slug, description)
    return f"submitted\n{plan}\nkaggle:      {answer}\nscores: kaggle competitions submissions -c {spec.slug}"


# ---------------------------------------------------------------------------
# Code competitions: the notebook folder, read in Kaggle's own formats
# ---------------------------------------------------------------------------

OUTPUT_FILE = "submission.csv"  # what the notebook writes into /kaggle/working, and what is submitted
POLL_SECONDS = 15.0

# write_kernel(root, spec, run_id, dest) -> the notebook folder; run.py hands in the `kernel` command's.


def print_at_once(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class NotebookOptions:
    dry_run: bool = False
    message: str | None = None
    wait_minutes: float = 30.0  # for the dataset and the notebook together
    dest: Path | None = None  # the notebook folder (default: the kernel command's)
    transductive: bool = False  # the notebook's transductive round (common/runs/notebook.py), with its defaults
    poll_seconds: float = POLL_SECONDS
    say: Callable[[str], None] = print_at_once  # progress lines


@dataclass(frozen=True)
class Notebook:
    folder: Path  # kernel-metadata.json and the script
    metadata: dict[str, Any]
    dataset: Path  # the sub-folder holding dataset-metadata.json and the models
    dataset_metadata: dict[str, Any]

    @property
    def kernel_id(self) -> str:
        return self.metadata["id"]

    @property
    def dataset_id(self) -> str:
        return self.dataset_metadata["id"]

    def files(self) -> list[Path]:
        """What the kaggle package uploads: every plain file of the dataset folder but its metadata."""
        return sorted(p for p in self.dataset.iterdir() if p.is_file() and p.name != DATASET_METADATA)


def read_notebook(folder: Path) -> Notebook:
    dataset = folder / DATASET_DIR
    if not (folder / KERNEL_METADATA).is_file() or not (dataset / DATASET_METADATA).is_file():
        raise UserError(
            f"{folder}: not a notebook folder (expected {KERNEL_METADATA} and {DATASET_DIR}/{DATASET_METADATA})"
        )
    metadata = json.loads((folder / KERNEL_METADATA).read_text())
    return Notebook(folder, metadata, dataset, json.loads((dataset / DATASET_METADATA).read_text()))


def kaggle_username(api) -> str:
    username = api.get_config_value("username")  # set by authenticate(), from the token or kaggle.json
    if not username:
        raise UserError("Kaggle authentication gave no username: the dataset and the notebook need an owner")
    return username


def owned_by(notebook: Notebook, owner: str) -> Notebook:
    """The notebook and its dataset under the authenticated user's name, rewritten in both metadata files."""
    with_owner = lambda ref: f"{owner}/{ref.split('/', 1)[1]}"  # noqa: E731
    dataset = notebook.dataset_metadata | {"id": with_owner(notebook.dataset_id)}
    sources = [with_owner(s) if s == notebook.dataset_id else s for s in notebook.metadata["dataset_sources"]]
    metadata = notebook.metadata | {"id": with_owner(notebook.kernel_id), "dataset_sources": sources}
    write_json(notebook.dataset / DATASET_METADATA, dataset)
    write_json(notebook.folder / KERNEL_METADATA, metadata)
    return replace(notebook, metadata=metadata, dataset_metadata=dataset)


# ---------------------------------------------------------------------------
# Code competitions: the calls, shown by --dry-run and made otherwise
# ---------------------------------------------------------------------------


class Later(str):
    """A value known only once an earlier call has answered (the pushed version), shown bare by --dry-run."""

    def __repr__(self) -> str:
        return str(self)


def create_dataset_args(notebook: Notebook) -> dict[str, Any]:
    return {"folder": str(notebook.dataset), "public": False, "quiet": True, "dir_mode": "skip"}


def version_dataset_args(notebook: Notebook, run_id: str) -> dict[str, Any]:
    notes = f"models of run {run_id}"
    return {"folder": str(notebook.dataset), "version_notes": notes, "quiet": True, "dir_mode": "skip"}


def submit_code_args(notebook: Notebook, spec: CompetitionSpec, description: str, version: Any) -> dict[str, Any]:
    kernel = notebook.kernel_id
    return {"file_name": OUTPUT_FILE, "message": description, "competition": spec.slug, "kernel": kernel,
            "kernel_version": version, "quiet": True}  # fmt: skip


def size(path: Path) -> str:
    n = path.stat().st_size
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def plan(notebook: Notebook, spec: CompetitionSpec, run_id: str, description: str, options: NotebookOptions) -> str:
    """Every call the submission makes, with its arguments, in order, and what it waits for."""
    files, ref = notebook.files(), notebook.dataset_id
    license_name = notebook.dataset_metadata["licenses"][0]["name"]
    metadata = json.dumps(notebook.metadata, indent=2).replace("\n", "\n     ")
    every = f"every {options.poll_seconds:g} s"
    version = Later("VERSION")
    return "\n".join([
        f"1. dataset {ref}: private, {license_name}, {len(files)} files from {notebook.dataset}:",
        f"     {', '.join(f'{p.name} ({size(p)})' for p in files)}",
        f"   {show_call('dataset_status', {'dataset': ref})}: does it exist?",
        f"   no:  {show_call('dataset_create_new', create_dataset_args(notebook))}",
        f"   yes: {show_call('dataset_create_version', version_dataset_args(notebook, run_id))}",
        f"   then {show_call('dataset_status', {'dataset': ref})} {every} until 'ready'",
        f"2. notebook: {show_call('kernels_push', {'folder': str(notebook.folder)})} with {KERNEL_METADATA}:",
        f"     {metadata}",
        f"   then {show_call('kernels_status', {'kernel': f'{notebook.kernel_id}/{version}'})} {every} until "
        f"'complete' ({version}: the version number the push answers)",
        f"3. submission: {show_call('competition_submit_code', submit_code_args(notebook, spec, description, version))}",
        f"waits: at most {options.wait_minutes:g} minutes for the dataset and the notebook together (--wait-minutes)",
    ])  # fmt: skip


# ---------------------------------------------------------------------------
# Code competitions: sending, waiting, submitting
# ---------------------------------------------------------------------------


@dataclass
class Waiter:
    """Polls until done, one deadline for every wait of a submission; a progress line per poll."""

    minutes: float
    poll_seconds: float = POLL_SECONDS
    say: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.started = self.clock()

    def until(self, what: str, poll: Callable[[], tuple[bool, str]], meanwhile: str) -> None:
        """Calls `poll` (-> (done, state)) until done; once time is up, UserError naming `what` and `meanwhile`."""
        while True:
            done, state = poll()
            waited = self.clock() - self.started
            self.say(f"  {what}: {state} ({waited / 60:.1f} of at most {self.minutes:g} min)")
            if done:
                return
            left = self.minutes * 60 - waited
            if left <= 0:
                raise UserError(f"{what}: still {state} after {self.minutes:g} minutes (--wait-minutes); {meanwhile}")
            self.sleep(min(self.poll_seconds, left))


def dataset_exists(api, ref: str) -> bool:
    with kaggle_step(f"look up dataset {ref}"):
        try:
            api.dataset_status(ref)
        except HTTPError as error:
            if getattr(error.response, "status_code", None) != 404:
                raise
            return False
    return True


def refused(response: Any, what: str) -> None:
    """Kaggle's create and push calls answer refusals in an `error` field, not as HTTP errors."""
    if response is None or getattr(response, "error", None):
        raise UserError(f"Kaggle refused to {what}: {getattr(response, 'error', None) or 'no answer'}")


def send_dataset(api, notebook: Notebook, run_id: str) -> str:
    """Creates the dataset of the models, or a new version of it when it exists; says which."""
    ref = notebook.dataset_id
    if dataset_exists(api, ref):
        name, arguments, what = "dataset_create_version", version_dataset_args(notebook, run_id), "version"
    else:
        name, arguments, what = "dataset_create_new", create_dataset_args(notebook), "create"
    refused(call(api, name, arguments, f"{what} dataset {ref}"), f"{what} dataset {ref}")
    return f"{len(notebook.files())} files sent ({'a new version' if what == 'version' else 'created'})"


def dataset_state(api, ref: str) -> tuple[bool, str]:
    state = str(call(api, "dataset_status", {"dataset": ref}, f"tell the status of dataset {ref}"))
    if state in ("failed", "deleted"):
        raise UserError(
            f"dataset {ref} is {state} on Kaggle (https://www.kaggle.com/datasets/{ref}); nothing submitted"
        )
    return state == "ready", state


def push_notebook(api, notebook: Notebook) -> tuple[int | None, str]:
    """(the version that runs now, its page) after kernels_push; UserError for what Kaggle refused."""
    what = f"push notebook {notebook.kernel_id}"
    response = call(api, "kernels_push", {"folder": str(notebook.folder)}, what)
    refused(response, what)
    invalid = [*(response.invalid_dataset_sources or []), *(response.invalid_competition_sources or [])]
    if invalid:
        raise UserError(f"Kaggle refused the notebook's sources {', '.join(invalid)}: it would run without them")
    return response.version_number, response.url or f"https://www.kaggle.com/code/{notebook.kernel_id}"


def kernel_state(api, kernel: str, url: str) -> tuple[bool, str]:
    response = call(api, "kernels_status", {"kernel": kernel}, f"tell the status of notebook {kernel}")
    state = getattr(response.status, "name", str(response.status)).lower()
    if state == "error":
        reason = " ".join((response.failure_message or "no message").split())
        raise UserError(f"notebook {kernel} failed on Kaggle: {reason} (log: {url}); nothing submitted")
    if state.startswith("cancel"):
        raise UserError(f"notebook {kernel} was cancelled on Kaggle ({url}); nothing submitted")
    return state == "complete", state


def send_notebook(
    api, notebook: Notebook, spec: CompetitionSpec, run_id: str, description: str, options: NotebookOptions
) -> str:
    """Dataset, wait, notebook, wait, submission; one deadline for both waits."""
    waiter = Waiter(options.wait_minutes, options.poll_seconds, options.say)
    ref = notebook.dataset_id
    options.say(f"dataset {ref}: {send_dataset(api, notebook, run_id)}")
    waiter.until(f"dataset {ref}", lambda: dataset_state(api, ref), "run the same command again later")
    version, url = push_notebook(api, notebook)
    kernel = f"{notebook.kernel_id}/{version}" if version else notebook.kernel_id
    options.say(f"notebook {kernel}: pushed ({url})")
    later = f"once it is complete: kaggle competitions submit {spec.slug} -k {notebook.kernel_id} -v {version} -f {OUTPUT_FILE}"
    waiter.until(f"notebook {kernel}", lambda: kernel_state(api, kernel, url), later)
    arguments = submit_code_args(notebook, spec, description, version)
    response = call(api, "competition_submit_code", arguments, f"submit notebook {kernel} to {spec.slug}")
    answer = getattr(response, "message", "") or "submitted"
    if "fail" in answer.lower() or "error" in answer.lower():
        raise UserError(f"Kaggle refused to submit notebook {kernel} to {spec.slug}: {answer}")
    return (
        f"submitted notebook {kernel} to {spec.slug}\nmessage: {description}\nkaggle:  {answer}\n"
        f"scores:  kaggle competitions submissions -c {spec.slug}"
    )


def submit_notebook(root: Path, spec: CompetitionSpec, run_id: str | None, options: NotebookOptions) -> str:
    """A code competition's whole path for a finished run: its notebook folder (as `kernel` writes it), the
    dataset of its models, the notebook, the submission. Dry: what would be sent."""
    if options.wait_minutes < 0:
        raise UserError(f"--wait-minutes {options.wait_minutes:g}: expected 0 or more minutes")
    run = runs.finished_run(root, spec.name, run_id)
    api = None if options.dry_run else authenticated_api()  # credentials are checked before anything is written
    transductive = {} if options.transductive else None
    notebook = read_notebook(write_kernel(root, spec, run.run_id, options.dest, transductive))
    if api is not None:
        notebook = owned_by(notebook, kaggle_username(api))
    description = describe(run, options.message)
    if not options.dry_run:
        return send_notebook(api, notebook, spec, run.run_id, description, options)
    owner = notebook.kernel_id.split("/")[0]
    return (
        f"dry run: nothing sent; would submit run {run.run_id} to the code competition {spec.slug}"
        f"{' (the notebook with its transductive round)' if options.transductive else ''}\n"
        f"notebook folder: {notebook.folder} (owner {owner!r}: replaced by your token's Kaggle account)\n"
        f"{plan(notebook, spec, run.run_id, description, options)}\n"
        f"try the notebook here: python {notebook.folder / notebook.metadata['code_file']} INPUT_ROOT"
        f" (a folder holding {spec.slug}/{spec.test_file})"
    )


def submit(
    root: Path, spec: CompetitionSpec, run_id: str | None, data_dir: str | None, options: NotebookOptions
) -> str:
    """`python run.py submit`: a checked CSV upload, or for a code competition its notebook's whole path."""
    if spec.code_competition:
        return submit_notebook(root, spec, run_id, options)
    if options.transductive:
        raise UserError(f"--transductive is a notebook's round, for code competitions; {spec.name} takes a CSV")
    return submit_run(root, spec, run_id, options.dry_run, options.message, data_dir)
