"""Ensembling unit probabilities and scoring them (scikit-learn's metrics); which score judges the models a run
submits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from common.data.files import judged_half_names
from common.data.trainset import HOLDOUT_SET
from common.ground.config import Config
from common.ground.spec import N_CLASSES, CompetitionSpec
from common.runs.layout import OOF, UnitKey
from common.runs.record import Submitted
from common.runs.units import submitted_keys


def accuracy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    return float(accuracy_score(labels, probabilities.argmax(axis=1)))


def per_class_table(labels: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
    """Precision, recall, F1 and support per class, plus their macro average."""
    predicted = probabilities.argmax(axis=1)
    classes = list(range(N_CLASSES))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=classes, zero_division=0)
    table = pd.DataFrame({"class": classes, "precision": precision, "recall": recall, "f1": f1, "support": support})
    macro = {"class": "macro", **table[["precision", "recall", "f1"]].mean().to_dict(), "support": int(support.sum())}
    return pd.concat([table.astype({"class": object}), pd.DataFrame([macro])], ignore_index=True)


def oof_from_units(folds: np.ndarray, held_out: dict[UnitKey, np.ndarray]) -> np.ndarray:
    """(n, 10) OOF probabilities: each row's mean over the seeds of the fold that held it out."""
    oof = np.zeros((len(folds), N_CLASSES), np.float32)
    for fold in np.unique(folds):
        seeds = [p for key, p in held_out.items() if key.fold == fold]
        oof[folds == fold] = np.mean(seeds, axis=0)
    return oof


def seed_oof(folds: np.ndarray, held_out: dict[UnitKey, np.ndarray], seed_index: int) -> np.ndarray:
    """OOF probabilities from one seed alone (every fold's model with that seed)."""
    return oof_from_units(folds, {key: p for key, p in held_out.items() if key.seed == seed_index})


def unit_scores(
    labels: np.ndarray, folds: np.ndarray, held_out: dict[UnitKey, np.ndarray], unit_seconds: dict[UnitKey, float]
) -> dict[str, dict[str, Any]]:
    """Per unit, by its folder name: fold, seed index, accuracy on its held-out fold (None for a model trained
    on every row, which holds none out) and seconds."""
    return {
        key.name: {
            "fold": key.fold,
            "seed_index": key.seed,
            "accuracy": accuracy(labels[folds == key.fold], held_out[key]) if key in held_out else None,
            "seconds": round(seconds, 1),
        }
        for key, seconds in sorted(unit_seconds.items())
    }


def run_metrics(
    labels: np.ndarray,
    folds: np.ndarray,
    held_out: dict[UnitKey, np.ndarray],
    oof: np.ndarray | None,
    unit_seconds: dict[UnitKey, float],
    extras: dict[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, Any]:
    """Accuracy per unit, fold, seed and for the ensemble; extra sets; wall time per fold; per class.
    `held_out`: the fold models' probabilities of their held-out rows; `unit_seconds`: every unit's time. A run
    without fold models (`oof` None) has no OOF, fold, seed or per-class scores: its extra sets score it."""
    metrics = {
        "n_train_rows": len(labels),
        "extra_accuracy": {name: accuracy(y, p) for name, (y, p) in extras.items()},
        "units": unit_scores(labels, folds, held_out, unit_seconds),
    }
    if oof is None:
        return metrics
    n_seeds = 1 + max(key.seed for key in held_out)
    per_fold = {
        str(f): {
            "accuracy": accuracy(labels[folds == f], oof[folds == f]),
            "seconds": round(sum(t for key, t in unit_seconds.items() if key.fold == f), 1),
        }
        for f in np.unique(folds).tolist()
    }
    return {
        "oof_accuracy": accuracy(labels, oof),
        **metrics,
        "folds": per_fold,
        "seeds": {str(s): accuracy(labels, seed_oof(folds, held_out, s)) for s in range(n_seeds)},
        "per_class": per_class_table(labels, oof).to_dict(orient="records"),
    }


def accuracy_by_group(scored: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]) -> dict[str, dict[str, float]]:
    """Set name -> group -> accuracy, from each group's scored sets (group -> set name -> (labels, probabilities)):
    how the fold models, the full-data models and all of them score the same set."""
    names = next(iter(scored.values()), {})
    return {name: {group: accuracy(*sets[name]) for group, sets in scored.items()} for name in names}


def leaderboard_estimate(
    oof_accuracy: float, labels: np.ndarray, units: dict[UnitKey, np.ndarray], ensemble: np.ndarray
) -> dict[str, float]:
    """OOF scores each fold's model (its seeds averaged), but Kaggle scores the ensemble of all folds. On a set
    that every unit predicted and none trained on (the holdout), the ensemble's gain over the average fold model
    is measured; OOF plus that gain estimates the leaderboard, for a test set written like train.csv (not
    Kannada's: other hands wrote it)."""
    folds = sorted({key.fold for key in units if key.holds_out})
    per_fold = [np.mean([p for key, p in units.items() if key.fold == fold], axis=0) for fold in folds]
    gain = accuracy(labels, ensemble) - float(np.mean([accuracy(labels, p) for p in per_fold]))
    return {"ensemble_gain": gain, "leaderboard_estimate": oof_accuracy + gain}


# ---------------------------------------------------------------------------
# The submitted models' own score: which signal can judge them
# ---------------------------------------------------------------------------


def judging_sets(spec: CompetitionSpec) -> list[str]:
    """The sets that can judge a run's submitted models, best first: each judged set's reporting half (Kannada's
    Dig-MNIST, written by other hands, as Kaggle's test set was; its picking half chooses recipes, so it no longer
    judges them), then the holdout (rows of train.csv no model of the run trained on)."""
    return [judged_half_names(name)[1] for name in spec.judged_sets] + [HOLDOUT_SET]


def judging_signal(spec: CompetitionSpec, scored: Iterable[str], fold_models_only: bool) -> str:
    """Which of the sets a run `scored` (set names, OOF among them) judges its submitted models: the first of
    judging_sets; else OOF, when every submitted model is a fold model (OOF scores fold models only); else ""."""
    scored = set(scored)
    found = [name for name in judging_sets(spec) if name in scored]
    if found:
        return found[0]
    return OOF if fold_models_only and OOF in scored else ""


def expected_signal(spec: CompetitionSpec, cfg: Config) -> str:
    """The signal that will judge the models a config submits (before any training)."""
    scored = [half for name in spec.judged_sets if name != cfg.extra_train for half in judged_half_names(name)]
    scored += [HOLDOUT_SET] if cfg.holdout else []
    scored += [OOF] if cfg.folds else []
    return judging_signal(spec, scored, fold_models_only(cfg))


def fold_models_only(cfg: Config) -> bool:
    """Whether every model the config submits is a fold model (so OOF scores the submission's models)."""
    return all(key.holds_out for key in submitted_keys(cfg))


def submitted_score(
    spec: CompetitionSpec,
    group: str,
    units: list[str],
    oof_accuracy: float | None,
    extra_accuracy: dict[str, float],
    fold_models: bool,
) -> Submitted:
    """The submitted models (`group`, their `units`) and their score on the signal that judges them: the run's
    OOF and its extra sets' scores by the submitted models; `fold_models`: whether they are all fold models."""
    scores = extra_accuracy | ({OOF: oof_accuracy} if oof_accuracy is not None else {})
    signal = judging_signal(spec, scores, fold_models)
    return Submitted(group, units, signal, scores.get(signal))
