"""Code competitions (Kannada-MNIST): a finished run's notebook folder, as the `kernel` command writes it in
Kaggle's own kernel-metadata.json and dataset-metadata.json formats, and the calls that submit it: the dataset
of its models, the notebook, its output file submitted to the competition: what --dry-run shows
(notebook_send.py writes the folder with the `kernel` command's write_kernel, and makes the calls)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from common.commands.submit.kaggle_api import show_call
from common.ground.errors import UserError
from common.ground.spec import CompetitionSpec
from common.runs import write_json
from common.runs.notebook import DATASET_DIR, DATASET_METADATA, KERNEL_METADATA, NOTEBOOK_SUBMISSION, NotebookLevers

OUTPUT_FILE = NOTEBOOK_SUBMISSION  # what the notebook writes into /kaggle/working, and what is submitted
POLL_SECONDS = 15.0


def print_at_once(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class NotebookOptions:
    dry_run: bool = False
    message: str | None = None
    wait_minutes: float = 30.0  # for the dataset and the notebook together
    dest: Path | None = None  # the notebook folder (default: the kernel command's)
    levers: NotebookLevers = NotebookLevers()  # what the notebook does with the hidden test images (none)
    poll_seconds: float = POLL_SECONDS
    say: Callable[[str], None] = print_at_once  # progress lines
    yes: bool = False  # both paths: submit a run made for trying things, or one below the best, all the same


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
