"""CSV competitions (digit-recognizer): a finished run's submission.csv, checked against sample_submission.csv
the way Kaggle checks it, then uploaded with the official kaggle package."""

from __future__ import annotations

from pathlib import Path

from common.commands.submit.choice import run_to_submit
from common.commands.submit.kaggle_api import authenticated_api, describe, refuse_offline
from common.data.files import read_csv_bytes, read_sample
from common.data.sources import locate
from common.ground.errors import UserError
from common.ground.spec import CompetitionSpec
from common.runs import Run
from common.runs.submission import check_submission


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
    yes: bool = False,
) -> str:
    """Checks a finished run's submission.csv and uploads it (or, dry, says what it would send). A run made for
    trying things, or one that scores below the competition's best, only with `yes` (common/commands/submit/
    choice.py)."""
    refuse_offline(spec)
    refuse_code_competition(spec)
    run, said = run_to_submit(root, spec, run_id, yes)
    file = checked_submission_file(run, spec, data_dir)
    description = describe(run, message)
    plan = "\n".join([*said, f"file:        {file}", f"competition: {spec.slug}", f"message:     {description}"])
    if dry_run:
        return f"dry run: checks passed; would submit\n{plan}"
    answer = upload(file, spec.slug, description)
    return f"submitted\n{plan}\nkaggle:      {answer}\nscores: kaggle competitions submissions -c {spec.slug}"
