"""Blend weights: a weighted mean of several runs' probabilities, each class's rank over a set's rows, and weights
fitted to lower the log-loss (scipy's SLSQP), cross-fitted fold by fold so that a fit is never scored on the rows
it was fitted on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.stats import rankdata

EPSILON = 1e-15  # the log-loss floor: a true class given probability 0 costs log(1e-15), not infinity


def ranked(probabilities: np.ndarray) -> np.ndarray:
    """Each class's rank over the set's rows, scaled to (0, 1], each row then scaled to sum to 1: the shape and
    argmax of probabilities, so a rank blend's files are read like any run's."""
    ranks = rankdata(probabilities, axis=0) / len(probabilities)
    return (ranks / ranks.sum(axis=1, keepdims=True)).astype(np.float32)


def weighted_mean(arrays: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    return np.tensordot(weights, np.stack(arrays).astype(np.float64), axes=1).astype(np.float32)


def fit_weights(arrays: list[np.ndarray], labels: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to 1 that minimise the log-loss of the weighted mean of `arrays` (rows summing
    to 1) on `labels`. The loss is convex in the weights, so SLSQP finds its minimum from equal weights."""
    truth = np.stack([a[np.arange(len(labels)), labels] for a in arrays], axis=1).astype(np.float64)  # (n, runs)
    n_runs = truth.shape[1]

    def loss(weights: np.ndarray) -> float:
        return float(-np.log(np.maximum(truth @ weights, EPSILON)).mean())

    def gradient(weights: np.ndarray) -> np.ndarray:
        return -(truth / np.maximum(truth @ weights, EPSILON)[:, None]).mean(axis=0)

    sums_to_one = {"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(n_runs)}
    start = np.full(n_runs, 1.0 / n_runs)
    found = minimize(loss, start, jac=gradient, method="SLSQP", bounds=[(0.0, 1.0)] * n_runs, constraints=sums_to_one)
    weights = np.clip(found.x, 0.0, None)
    return weights / weights.sum()


@dataclass(frozen=True)
class Fit:
    """Weights fitted on one set (OOF, or the holdout): on all its rows, and fold by fold to score the fit."""

    on: str  # OOF or HOLDOUT_SET
    weights: np.ndarray  # fitted on every row: what the test set and the other sets are blended with
    cross_fitted: np.ndarray  # the set's rows, each fold's blended with the weights fitted on the other folds
    by_fold: dict[int, list[float]]

    def metrics(self) -> dict:
        return {
            "on": self.on,
            "objective": "log-loss",
            "optimiser": "scipy.optimize.minimize (SLSQP)",
            "cv_folds": len(self.by_fold),
            "weights_by_fold": {str(fold): weights for fold, weights in self.by_fold.items()},
        }


def cross_fit(on: str, arrays: list[np.ndarray], labels: np.ndarray, folds: np.ndarray) -> Fit:
    """Weights fitted on every row of the set `on`, and the set blended fold by fold with weights fitted on the
    other folds: the blend's score there is then the fit's cross-validated one."""
    blended, by_fold = np.zeros_like(arrays[0]), {}
    for fold in np.unique(folds).tolist():
        held = folds == fold
        weights = fit_weights([a[~held] for a in arrays], labels[~held])
        blended[held] = weighted_mean([a[held] for a in arrays], weights)
        by_fold[fold] = [round(float(w), 6) for w in weights]
    return Fit(on, fit_weights(arrays, labels), blended, by_fold)
