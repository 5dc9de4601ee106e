"""Finding runs: by id or unique prefix, and the one rule for the run a command takes when none is named.

The latest run of a competition is, of its finished runs made to be submitted, the one that finished last. Runs
made for trying things are not made to be submitted: a study's trials (`tune`), smoke runs (`--preset smoke`),
runs trained on a subset (`max_train_rows`) and blends of any of them. `submit`, `predict`, `report`, `kernel`,
`compare`, `blend` and `--init-from` take the latest run when given none (or `latest`); with no run made to be
submitted, they take the trying run that finished last and say so. <root>/<competition>/submission.csv is a copy
of the latest run's submission, written again whenever a run finishes, and never a trying run's (a run under
another --out root has its own root's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.ground.atomic import atomic_write_bytes
from common.ground.errors import UserError
from common.runs.layout import SUBMISSION_CSV, RunStatus
from common.runs.run import Run, is_run_folder, load_run

LATEST = "latest"  # what a user types for the run the rule takes
SMOKE_PRESET = "smoke"  # the preset that proves the path on a subset: a trying run


def list_runs(root: Path, competition: str) -> list[Run]:
    """Every run folder of the competition, oldest first (run ids start with their UTC time)."""
    base = root / competition
    folders = sorted(p for p in base.iterdir() if is_run_folder(p)) if base.is_dir() else []
    return [load_run(p) for p in folders]


def runs_under(root: Path) -> list[Run]:
    """Every run folder of every competition under `root`, oldest first."""
    competitions = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return sorted((run for name in competitions for run in list_runs(root, name)), key=lambda run: run.run_id)


def unfinished_runs(root: Path, competition: str) -> list[Run]:
    """The runs still running (or killed while they were), oldest first: what `--resume latest` picks from."""
    return [run for run in list_runs(root, competition) if run.status is RunStatus.RUNNING]


@dataclass(frozen=True)
class Choice:
    """The run a command takes, and why (the line it prints)."""

    run: Run
    why: str

    @property
    def line(self) -> str:
        return f"run {self.run.run_id}: {self.why}"


def trying_reason(run: Run) -> str:
    """What makes the run one made for trying things ('' for a run made to be submitted)."""
    if run.is_trial:
        return "a tune trial"
    if run.is_blend:
        try:
            reasons = [trying_reason(trained) for trained in run.trained_runs()]
        except UserError as error:
            return f"a blend whose sources cannot be read ({error})"
        return next((f"a blend of {reason}" for reason in reasons if reason), "")
    if run.label == SMOKE_PRESET:
        return "a smoke run (--preset smoke)"
    if run.cfg.max_train_rows:
        return f"trained on a subset (max_train_rows={run.cfg.max_train_rows})"
    return ""


def finish_order(run: Run) -> tuple[str, str]:
    """Runs ordered by when they finished (ISO times in UTC), then by id."""
    return run.record.finished, run.run_id


def submittable_runs(root: Path, competition: str) -> list[Run]:
    """The finished runs made to be submitted, in the order they finished."""
    finished = [run for run in list_runs(root, competition) if run.finished and not trying_reason(run)]
    return sorted(finished, key=finish_order)


def latest_choice(root: Path, competition: str) -> Choice:
    """The latest run by the rule above, and why."""
    made = submittable_runs(root, competition)
    if made:
        run = made[-1]
        return Choice(run, f"the latest: the last to finish ({run.record.finished}) of {len(made)} finished run(s)")
    finished = sorted((run for run in list_runs(root, competition) if run.finished), key=finish_order)
    if not finished:
        raise UserError(f"no finished run of {competition} under {root / competition}")
    run = finished[-1]
    return Choice(
        run,
        f"the last run to finish, though {trying_reason(run)}: no finished run of {competition} is made to be"
        " submitted (smoke runs, subset runs and tune trials are not)",
    )


def choose_run(root: Path, competition: str, run_id: str | None) -> Choice:
    """A run by id or unique prefix; None or 'latest' means the latest run (the rule above)."""
    if run_id in (None, LATEST):
        return latest_choice(root, competition)
    all_runs = list_runs(root, competition)
    exact = [run for run in all_runs if run.run_id == run_id]
    matches = exact or [run for run in all_runs if run.run_id.startswith(run_id)]
    if len(matches) != 1:  # "latest" means one run (above): these are only the ones started last
        shown, what = (matches, "among them") if matches else (all_runs, "the runs started last")
        known = ", ".join(run.run_id for run in shown[-5:]) or "none"
        problem = f"no run of {competition} matches" if not matches else f"{len(matches)} runs of {competition} match"
        raise UserError(f"{problem} {run_id!r} ({what}: {known})")
    return Choice(matches[0], "as named" if exact else f"the one run whose id starts with {run_id!r}")


def find_run(root: Path, competition: str, run_id: str | None) -> Run:
    return choose_run(root, competition, run_id).run


def finished_run(root: Path, competition: str, run_id: str | None) -> Run:
    """find_run, refusing a run that is not finished."""
    return find_run(root, competition, run_id).require_finished()


def competition_submission(folder: Path) -> Path:
    """<root>/<competition>/submission.csv of the run folder's competition."""
    return folder.parent / SUBMISSION_CSV


def publish_submission(folder: Path) -> bool:
    """Once a run has finished: the competition's submission.csv made a copy of the latest run's (the rule
    above). Whether it is now this run's."""
    made = submittable_runs(folder.parent.parent, folder.parent.name)
    if not made:
        return False
    atomic_write_bytes(competition_submission(folder), made[-1].submission_file.read_bytes())
    return made[-1].folder == folder


def submission_line(run: Run, published: bool) -> str:
    """Where a run's submission went, for its summary: its own file, and whether the competition's is a copy."""
    latest = competition_submission(run.folder)
    reason = trying_reason(run)
    also = f" (also {latest})" if published else f" (not {latest}: {reason})" if reason else ""
    return f"submission:  {run.submission_file}{also}"
