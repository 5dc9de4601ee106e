"""The table a finished run prints: its scores, what they mean for the leaderboard, and where its files are."""

from __future__ import annotations

from pathlib import Path

from common import runs
from common.data.files import judged_half_names
from common.ground.spec import CompetitionSpec
from common.runs.submission import submission_line

NO_FOLD_MODELS = "this run has no fold models (folds 0): no OOF; it is scored on its holdout and extra sets only"


def leaderboard_note(spec: CompetitionSpec, metrics: dict) -> str:
    """How OOF relates to the score Kaggle will give the submitted ensemble."""
    if "oof_accuracy" not in metrics:
        return NO_FOLD_MODELS
    if spec.judged_sets:
        judge = judged_half_names(spec.judged_sets[0])[1]
        return f"leaderboard: other hands wrote Kaggle's test set, so OOF flatters; {judge} is the second signal"
    if "leaderboard_estimate" in metrics:
        gain = metrics["ensemble_gain"]
        return f"LB estimate: OOF {gain:+.5f}, the submitted ensemble's gain over one fold model on the holdout"
    return "leaderboard: OOF scores single fold models; the submitted ensemble scores higher (holdout=0.1 measures it)"


def score_rows(spec: CompetitionSpec, metrics: dict, seconds: float) -> list[tuple[str, float, float | None]]:
    """(name, accuracy, seconds) of every line of the table: folds, seeds and OOF (runs with fold models), the
    leaderboard estimate, and each extra set, by the fold models, the full-data models and all of them when the
    run has both."""
    rows = [(f"fold {f}", m["accuracy"], m["seconds"]) for f, m in metrics.get("folds", {}).items()]
    seeds = metrics.get("seeds", {})
    rows += [(f"seed {s}", a, None) for s, a in seeds.items()] if len(seeds) > 1 else []
    rows += [("OOF ensemble", metrics["oof_accuracy"], seconds)] if "oof_accuracy" in metrics else []
    estimate = "leaderboard_estimate" in metrics and not spec.judged_sets  # OOF flatters where others wrote test
    rows += [("LB estimate", metrics["leaderboard_estimate"], None)] if estimate else []
    rows += [(name, a, None) for name, a in metrics.get("oof_extra_accuracy", {}).items()]
    by_group = metrics.get("extra_accuracy_by_group", {})
    for name, a in metrics["extra_accuracy"].items():
        groups = by_group.get(name, {})
        rows += [(f"{name} ({group})", score, None) for group, score in groups.items()] or [(name, a, None)]
    return rows


def ensemble_line(metrics: dict) -> str:
    """Which models the submission averages (Config.ensemble)."""
    units = metrics.get("ensemble_units", [])
    return f"submitted:   the mean of {len(units)} model(s), ensemble={metrics.get('ensemble', runs.ALL_GROUPS)}"


def print_summary(folder: Path, spec: CompetitionSpec, metrics: dict, seconds: float) -> None:
    rows = score_rows(spec, metrics, seconds)
    width = max(14, *(len(name) + 2 for name, _, _ in rows))
    print(f"\n{'':<{width}}{'accuracy':>10}{'seconds':>10}")
    for name, acc, secs in rows:
        print(f"{name:<{width}}{acc:>10.5f}{'' if secs is None else f'{secs:>10.0f}'}")
    print(f"\n{leaderboard_note(spec, metrics)}")
    run = runs.load_run(folder)
    print(ensemble_line(metrics))
    print(f"trained on:  {'; '.join(run.record.hardware) or 'not recorded'}")
    print(f"run folder:  {folder}\n{submission_line(run)}")
