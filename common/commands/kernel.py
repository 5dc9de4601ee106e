"""`kernel`: a finished run's Kaggle notebook folder (common/runs/notebook.py writes it, for `submit` too), and
what to type next to send it."""

from __future__ import annotations

import json
from pathlib import Path

from common.ground.spec import CompetitionSpec, get_spec
from common.runs.notebook import (
    DATASET_DIR,
    FACTS_FILE,
    KERNEL_METADATA,
    NOTEBOOK_SUBMISSION,
    SCRIPT_NAME,
    USERNAME_PLACEHOLDER,
    NotebookLevers,
    write_kernel,
)


def kernel(root: Path, spec: CompetitionSpec, run_id: str, dest: Path | None, levers: NotebookLevers) -> str:
    """Writes run `run_id`'s notebook folder (into `dest`, or kernels/); returns what to type next."""
    return next_steps(write_kernel(root, spec, run_id, dest, levers))


def next_steps(folder: Path) -> str:
    """What to type next: the kaggle CLI's three steps (or `submit`), and trying the script here first."""
    metadata = json.loads((folder / KERNEL_METADATA).read_text())
    facts = json.loads((folder / DATASET_DIR / FACTS_FILE).read_text())
    slug, kernel_id = facts["slug"], metadata["id"]
    edit = (
        f"  0. replace {USERNAME_PLACEHOLDER!r} with your Kaggle username in kernel-metadata.json and "
        f"{DATASET_DIR}/dataset-metadata.json (or set KAGGLE_USERNAME and run this again)\n"
        if kernel_id.startswith(f"{USERNAME_PLACEHOLDER}/")
        else ""
    )
    everything = (
        f"  all of it, through the kaggle package: python run.py submit {facts['competition']} {facts['run_id']}"
        " [--dry-run]\n  or by hand:\n"
        if get_spec(facts["competition"]).code_competition
        else ""
    )
    return (
        f"kernel folder: {folder}\n{everything}{edit}"
        f"  1. kaggle datasets create -p {folder / DATASET_DIR}\n"
        f"  2. kaggle kernels push -p {folder}\n"
        f"  3. once it has run: kaggle competitions submit {slug} -k {kernel_id} -v VERSION -f {NOTEBOOK_SUBMISSION} "
        f'-m "{metadata["title"]}"  (VERSION as printed by step 2; or the notebook\'s Submit button)\n'
        f"  try it here first: python {folder / SCRIPT_NAME} INPUT_ROOT  (a folder holding {slug}/{facts['test_file']};"
        f" it writes {folder / NOTEBOOK_SUBMISSION})"
    )
