"""Uploading a finished run's submission.csv to Kaggle, after checking it against sample_submission.csv.

python run.py submit mnist                 # the latest finished run
python run.py submit mnist 20261125-1532   # a run by id or unique prefix
python run.py submit mnist --dry-run       # every check, no upload (no kaggle import, no credentials)
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from common import runs
from common.data.files import kaggle_credentials_present, locate, read_csv_bytes, read_sample
from common.ground.errors import UserError
from common.ground.spec import CompetitionSpec
from common.runs import Run
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
            f"its hidden test set; build one with `python run.py kernel {spec.name}`"
        )


def checked_submission_file(run: Run, spec: CompetitionSpec, data_dir: str | Path | None) -> Path:
    """The run's submission.csv after the same checks Kaggle makes: header, row count, ids in order, labels."""
    path = run.folder / "submission.csv"
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
# Uploading with the official kaggle package
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
