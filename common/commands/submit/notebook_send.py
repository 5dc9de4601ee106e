"""Code competitions: a finished run's whole path. Its notebook folder written, then the dataset and the notebook
sent and waited on under one deadline, then the notebook's output submitted."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from requests import HTTPError

from common.commands.submit.choice import run_to_submit
from common.commands.submit.kaggle_api import authenticated_api, call, describe, kaggle_step, refuse_offline
from common.commands.submit.notebook import (
    OUTPUT_FILE,
    POLL_SECONDS,
    Notebook,
    NotebookOptions,
    create_dataset_args,
    kaggle_username,
    owned_by,
    plan,
    read_notebook,
    submit_code_args,
    version_dataset_args,
)
from common.ground.errors import UserError
from common.ground.spec import CompetitionSpec
from common.runs.notebook import write_kernel


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
    refuse_offline(spec)
    if options.wait_minutes < 0:
        raise UserError(f"--wait-minutes {options.wait_minutes:g}: expected 0 or more minutes")
    run, said = run_to_submit(root, spec, run_id, options.yes)
    options.say("\n".join(said))
    api = None if options.dry_run else authenticated_api()  # credentials are checked before anything is written
    notebook = read_notebook(write_kernel(root, spec, run.run_id, options.dest, options.levers))
    if api is not None:
        notebook = owned_by(notebook, kaggle_username(api))
    description = describe(run, options.message)
    if not options.dry_run:
        return send_notebook(api, notebook, spec, run.run_id, description, options)
    owner = notebook.kernel_id.split("/")[0]
    return (
        f"dry run: nothing sent; would submit run {run.run_id} to the code competition {spec.slug}"
        f"{options.levers.said()}\n"
        f"notebook folder: {notebook.folder} (owner {owner!r}: replaced by your token's Kaggle account)\n"
        f"{plan(notebook, spec, run.run_id, description, options)}\n"
        f"try the notebook here: python {notebook.folder / notebook.metadata['code_file']} INPUT_ROOT"
        f" (a folder holding {spec.slug}/{spec.test_file})"
    )
