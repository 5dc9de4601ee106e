"""common/execution/summary.py: what a finished run's table and notes say about the leaderboard."""

from __future__ import annotations

from common import runs
from common.execution.summary import leaderboard_note, score_rows
from common.ground.spec import get_spec


def holdout_metrics() -> runs.Metrics:
    """A run with fold models and a holdout: OOF, the ensemble's gain on the holdout and the estimate."""
    return runs.Metrics(
        submitted=runs.Submitted("folds", ["f0-s0", "f1-s0"], "train_holdout", 0.93),
        n_train_rows=100,
        oof_accuracy=0.9,
        extra_accuracy={"train_holdout": 0.93},
        ensemble_gain=0.02,
        leaderboard_estimate=0.92,
    )


def test_digit_recognizer_gets_a_leaderboard_estimate_the_offline_demo_does_not():
    metrics = holdout_metrics()
    mnist, digits = get_spec("mnist"), get_spec("digits")
    assert leaderboard_note(mnist, metrics).startswith("LB estimate: OOF +0.02000")
    assert ("LB estimate", 0.92, None) in score_rows(mnist, metrics, 1.0)
    assert leaderboard_note(digits, metrics) is None
    assert [name for name, _, _ in score_rows(digits, metrics, 1.0)] == ["OOF ensemble", "train_holdout"]


def test_a_run_without_fold_models_says_what_scored_it():
    def without_oof(*names: str) -> runs.Metrics:
        return runs.Metrics(runs.Submitted("full", ["all-s0"], "", None), 100, extra_accuracy=dict.fromkeys(names, 0.9))

    note = "this run has no fold models (folds 0): no OOF; it is scored on "
    digits = get_spec("digits")
    assert leaderboard_note(digits, without_oof("sklearn_test")) == note + "sklearn_test"
    assert leaderboard_note(digits, without_oof("a", "b", "c")) == note + "a, b and c"
    assert leaderboard_note(digits, without_oof()) == note + "nothing"
