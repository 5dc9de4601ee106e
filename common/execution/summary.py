"""The table a finished run prints: its scores, what they mean for the leaderboard, and where its files are."""

from __future__ import annotations

from pathlib import Path

from common import runs
from common.data.files import judged_half_names
from common.ground.spec import CompetitionSpec
from common.runs.latest import submission_line

JUDGES = "  <- judges the submission"  # marks the row of the submitted models' own score


def leaderboard_note(spec: CompetitionSpec, metrics: runs.Metrics) -> str | None:
    """How OOF relates to the score Kaggle will give the submitted ensemble; None for an offline competition (it
    has no leaderboard)."""
    if metrics.oof_accuracy is None:
        return f"this run has no fold models (folds 0): no OOF; it is scored on {metrics.scored_on}"
    if not spec.on_kaggle:
        return None
    if spec.judged_sets:
        judge = judged_half_names(spec.judged_sets[0])[1]
        return f"leaderboard: other hands wrote Kaggle's test set, so OOF flatters; {judge} is the second signal"
    if metrics.leaderboard_estimate is not None:
        gain = metrics.ensemble_gain
        return f"LB estimate: OOF {gain:+.5f}, the submitted ensemble's gain over one fold model on the holdout"
    return "leaderboard: OOF scores single fold models; the submitted ensemble scores higher (holdout=0.1 measures it)"


def score_rows(spec: CompetitionSpec, metrics: runs.Metrics, seconds: float) -> list[tuple[str, float, float | None]]:
    """(name, accuracy, seconds) of every line of the table: folds, seeds and OOF (runs with fold models), the
    leaderboard estimate, and each extra set, by the fold models, the full-data models and all of them when the
    run has both."""
    rows = [(f"fold {f}", m["accuracy"], m["seconds"]) for f, m in metrics.folds.items()]
    rows += [(f"seed {s}", a, None) for s, a in metrics.seeds.items()] if len(metrics.seeds) > 1 else []
    rows += [("OOF ensemble", metrics.oof_accuracy, seconds)] if metrics.oof_accuracy is not None else []
    # No estimate where OOF flatters (others wrote Kannada's test set) or there is no leaderboard (offline)
    estimate = metrics.leaderboard_estimate is not None and spec.on_kaggle and not spec.judged_sets
    rows += [("LB estimate", metrics.leaderboard_estimate, None)] if estimate else []
    rows += [(name, a, None) for name, a in metrics.oof_extra_accuracy.items()]
    for name, a in metrics.extra_accuracy.items():
        groups = metrics.extra_accuracy_by_group.get(name, {})
        rows += [(f"{name} ({group})", score, None) for group, score in groups.items()] or [(name, a, None)]
    return rows


def judging_row(name: str, metrics: runs.Metrics) -> bool:
    """Whether a table row is the submitted models' own score (by the submitted group, when split by group)."""
    signal = metrics.submitted.signal
    if signal == runs.OOF:
        return name == "OOF ensemble"
    return name in (signal, f"{signal} ({metrics.submitted.group})")


def print_summary(
    folder: Path, spec: CompetitionSpec, metrics: runs.Metrics, seconds: float, published: bool = False
) -> None:
    """The scores, the row that judges the submission marked; what was submitted; where it all is. `published`:
    whether the competition's submission.csv is now this run's."""
    rows = score_rows(spec, metrics, seconds)
    width = max(14, *(len(name) + 2 for name, _, _ in rows))
    print(f"\n{'':<{width}}{'accuracy':>10}{'seconds':>10}")
    for name, acc, secs in rows:
        mark = JUDGES if judging_row(name, metrics) else ""
        print(f"{name:<{width}}{acc:>10.5f}{f'{secs:>10.0f}' if secs is not None else ' ' * 10 * bool(mark)}{mark}")
    note = leaderboard_note(spec, metrics)
    print(f"\n{note}" if note else "")
    run = runs.load_run(folder)
    print(f"submitted:   {run.submitted_text(metrics)}")
    print(f"trained on:  {'; '.join(run.record.hardware) or 'not recorded'}")
    print(f"run folder:  {folder}\n{submission_line(run, published)}")
