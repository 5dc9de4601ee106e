"""Submitting a finished run to Kaggle with the official kaggle package.

CSV competitions (digit-recognizer): the run's submission.csv is checked against sample_submission.csv, then
uploaded (`upload`). Code competitions (Kannada-MNIST) take a notebook: the folder that the `kernel` command
writes, its dataset of models created (or versioned) and waited on, the notebook pushed and its version waited
on, its output file submitted to the competition (`notebook`, `notebook_send`). The offline digits demo is refused.

python run.py submit mnist                 # the latest run (common/runs/latest.py)
python run.py submit mnist 20261125-1532   # a run by id or unique prefix
python run.py submit mnist --dry-run       # every check, no upload (no kaggle import, no credentials)
python run.py submit mnist --yes           # a smoke or subset run, or one below the best, all the same
python run.py submit kannada [RUN] [--dry-run] [--wait-minutes 30]
"""

from __future__ import annotations

from pathlib import Path

from common.commands.submit.kaggle_api import refuse_offline
from common.commands.submit.notebook import NotebookOptions
from common.commands.submit.notebook_send import submit_notebook
from common.commands.submit.upload import submit_run
from common.ground.errors import UserError
from common.ground.spec import CompetitionSpec

__all__ = ["NotebookOptions", "submit", "submit_notebook", "submit_run"]


def submit(
    root: Path, spec: CompetitionSpec, run_id: str | None, data_dir: str | None, options: NotebookOptions
) -> str:
    """`python run.py submit`: a checked CSV upload, or for a code competition its notebook's whole path."""
    refuse_offline(spec)  # before any run is looked for
    if spec.code_competition:
        return submit_notebook(root, spec, run_id, options)
    if options.levers.flags:
        flag = options.levers.flags[0]
        raise UserError(f"{flag} is a notebook's lever, for code competitions; {spec.name} takes a CSV")
    return submit_run(root, spec, run_id, options.dry_run, options.message, data_dir, options.yes)
