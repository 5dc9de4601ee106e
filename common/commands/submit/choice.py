"""Which run `submit` sends, said before anything is sent: the run the rule takes (common/runs/latest.py), its
submitted models' own score, its preset and rows; a run made for trying things, or one that scores below the
competition's best on the same signal, is refused in one line unless --yes."""

from __future__ import annotations

from pathlib import Path

from common import runs
from common.ground.errors import UserError
from common.ground.spec import CompetitionSpec
from common.runs import Run


def best_rival(run: Run, root: Path) -> Run | None:
    """The finished run of the competition that scores best on the signal judging `run`'s submitted models, when
    it beats `run` (a study's trial counts; smoke and subset runs, scored on other rows, do not)."""
    signal, score = run.metrics().submitted.signal, run.metrics().score
    if score is None:
        return None
    rivals = [
        other
        for other in runs.list_runs(root, run.competition)
        if other.finished and (other.is_trial or not runs.trying_reason(other)) and other.run_id != run.run_id
    ]
    scored = [(m.score, other) for other in rivals if (m := other.metrics()).submitted.signal == signal and m.score]
    best = max(scored, key=lambda pair: pair[0], default=None)
    return best[1] if best and best[0] > score else None


def refusal(run: Run, root: Path, spec: CompetitionSpec) -> str:
    """Why `run` should not go to Kaggle without --yes ('' when nothing speaks against it)."""
    reason = runs.trying_reason(run)
    if reason:
        return (
            f"run {run.run_id} is {reason}; submit it anyway with --yes, or train a full run: python run.py {spec.name}"
        )
    rival = best_rival(run, root)
    if rival is None:
        return ""
    ours, theirs = run.metrics().submitted, rival.metrics().submitted
    return (
        f"run {run.run_id} scores {ours.accuracy:.5f} on {ours.judged_by}, below run {rival.run_id}'s"
        f" {theirs.accuracy:.5f}: submit it anyway with --yes, or name that run (python run.py submit"
        f" {spec.name} {rival.run_id})"
    )


def rows_text(run: Run, metrics: runs.Metrics) -> str:
    subset = 0 if run.is_blend else run.cfg.max_train_rows
    return f"{metrics.n_train_rows} training rows" + (f" (a subset: max_train_rows={subset})" if subset else "")


def run_to_submit(root: Path, spec: CompetitionSpec, run_id: str | None, yes: bool) -> tuple[Run, list[str]]:
    """The finished run to submit and the lines saying which it is, why, and what it submits; UserError when
    it is refused (above) and `yes` is not given."""
    choice = runs.choose_run(root, spec.name, run_id)
    run = choice.run.require_finished()
    metrics = run.metrics()
    lines = [choice.line, f"submits:     {run.submitted_text(metrics)}"]
    lines.append(f"preset:      {run.label}; {rows_text(run, metrics)}")
    problem = refusal(run, root, spec)
    if problem and not yes:
        raise UserError(problem)
    return run, lines + ([f"(--yes: {problem})"] if problem else [])
