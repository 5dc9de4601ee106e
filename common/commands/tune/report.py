"""What a study shows: the table of trials, how much the best one flatters by selection, Optuna's plots, and
trials.md and study.html."""

from __future__ import annotations

import html
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from common import runs
from common.commands.tune.setup import Setup
from common.ground.atomic import atomic_path

STATE_ORDER = {"complete": 0, "pruned": 1, "running": 2, "waiting": 3, "fail": 4}
STUDY_PAGE = "study.html"
# Plots as wide as the page at most (the slice plot has one panel per searched key).
STYLE = (
    "body{font-family:sans-serif;max-width:80em}table{border-collapse:collapse}"
    "td,th{border:1px solid #bbb;padding:2px 6px}img{max-width:100%;height:auto}"
)


def trials_table(study: optuna.Study, setup: Setup) -> pd.DataFrame:
    """One row per trial, best first: complete trials by score, then pruned, running and failed ones."""
    run_ids = {run.label: run.run_id for run in runs.list_runs(setup.root, setup.spec.name)}
    rows = []
    for trial in study.get_trials(deepcopy=False):
        complete = trial.state == TrialState.COMPLETE
        row = {"trial": trial.number, "state": trial.state.name.lower()}
        row[setup.score_column] = trial.value if complete else math.nan
        row |= {column: trial.user_attrs.get(name, math.nan) for name, column in setup.columns.items()}
        row |= {param.key: trial.params.get(param.key) for param in setup.space.params}
        row["run_id"] = trial.user_attrs.get("run_id") or run_ids.get(setup.label(trial.number), "")
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["_order"] = table["state"].map(STATE_ORDER)
    table = table.sort_values(["_order", setup.score_column, "trial"], ascending=[True, False, True], kind="stable")
    return table.drop(columns="_order").reset_index(drop=True)


@dataclass(frozen=True)
class SelectionGap:
    """How much the best trial's picked score flatters it, against the score nobody picked on."""

    trial: int
    picked: float
    reported: float
    mean_gap: float
    n: int

    def sentence(self, objective: str, reporting: str) -> str:
        return (
            f"The best of {self.n} complete trials flatters by selection: trial {self.trial} was picked on "
            f"{objective} {self.picked:.5f}; its {reporting}, which no trial was picked on, is {self.reported:.5f} "
            f"(gap {self.picked - self.reported:+.5f}, against a mean gap of {self.mean_gap:+.5f} over all "
            f"{self.n} complete trials). Expect the {reporting}, not the {objective}."
        )


def selection_gap(study: optuna.Study, setup: Setup) -> SelectionGap | None:
    objective, reporting = setup.picked, setup.reporting
    if not reporting:
        return None
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if reporting in t.user_attrs]
    if not done:
        return None
    best = max(done, key=lambda trial: trial.value)
    gaps = [trial.user_attrs[objective] - trial.user_attrs[reporting] for trial in done]
    picked, reported = best.user_attrs[objective], best.user_attrs[reporting]
    return SelectionGap(best.number, picked, reported, float(np.mean(gaps)), len(done))


def shown_table(table: pd.DataFrame, setup: Setup) -> pd.DataFrame:
    """Scores to 5 decimals, parameters to 4 significant digits, '-' where there is nothing."""
    scores = {setup.score_column, *setup.columns.values()}

    def cell(column: str, value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
            return "-"
        if isinstance(value, float):
            return f"{value:.5f}" if column in scores else f"{value:.4g}"
        return str(value)

    return pd.DataFrame({column: [cell(column, v) for v in table[column]] for column in table.columns})


def summary(study: optuna.Study, setup: Setup) -> str:
    """How many trials in which states, what the study picks on and what reports it (the command not included)."""
    states = pd.Series([t.state.name.lower() for t in study.get_trials(deepcopy=False)]).value_counts()
    counts = ", ".join(f"{n} {state}" for state, n in states.items()) or "none yet"
    honest = (
        f"{setup.reporting} reports (no trial is picked on it)"
        if setup.reporting
        else "nothing reports apart from the objective (set holdout=0.1 to see how much the best trial flatters)"
    )
    return f"{len(study.trials)} trials ({counts}); the study picks on {setup.score_column}, {honest}."


def markdown(study: optuna.Study, setup: Setup, table: pd.DataFrame, gap: SelectionGap | None) -> str:
    lines = [f"# Study {setup.name} ({setup.spec.name})", "", f"`{setup.command()}`: {summary(study, setup)}", ""]
    if not table.empty:
        lines += [shown_table(table, setup).to_markdown(index=False, disable_numparse=True), ""]
    if gap:
        lines += [gap.sentence(setup.picked, setup.reporting), ""]
    return "\n".join(lines)


def save_plots(study: optuna.Study, setup: Setup) -> list[Path]:
    """Optuna's matplotlib plots as PNG: history; slices once a trial completed; importances from 2 on."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from optuna.visualization import matplotlib as plots

    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    wanted = {"history": plots.plot_optimization_history} if study.trials else {}
    wanted |= {"slices": plots.plot_slice} if complete else {}
    wanted |= {"importances": plots.plot_param_importances} if complete >= 2 and len(setup.space.params) >= 2 else {}
    saved = []
    for name, draw in wanted.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)  # a history with no complete trial has no legend
            figure = np.ravel(draw(study, target_name=setup.score_column))[0].figure
        path = setup.folder / f"{name}.png"
        with atomic_path(path, ".png") as temporary:
            figure.savefig(temporary, dpi=100, bbox_inches="tight")
        plt.close(figure)
        saved.append(path)
    return saved


def write_page(study: optuna.Study, setup: Setup, table: pd.DataFrame, gap: SelectionGap | None, images) -> Path:
    """study.html beside the study: the command, the summary, the table (pandas' to_html) and the plots, each
    plot scaled down to the page's width."""
    parts = [
        f"<h1>Study {html.escape(setup.name)} ({setup.spec.name})</h1>",
        f"<p><code>{html.escape(setup.command())}</code>: {html.escape(summary(study, setup))}</p>",
    ]
    parts += [shown_table(table, setup).to_html(index=False, border=0)] if not table.empty else []
    parts += [f"<p>{html.escape(gap.sentence(setup.picked, setup.reporting))}</p>"] if gap else []
    parts += [f'<h2>{path.stem}</h2><img src="{path.name}" alt="{path.stem}">' for path in images]
    page = (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>Study {html.escape(setup.name)}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
    path = setup.folder / STUDY_PAGE
    runs.atomic_write_bytes(path, page.encode())
    return path
