"""bench/transductive.py: the notebook's transductive round scored on a judged set's halves (tiny digits run)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import bench.transductive as transductive
from common.ground.spec import get_spec

TINY = ["folds=2", "epochs=1", "model=mlp", "max_train_rows=200"]


@pytest.fixture
def judged_digits(monkeypatch):
    """digits with its sklearn_test.csv declared judged, as Kannada's Dig-MNIST is: it stands in for a hidden test set."""
    spec = replace(get_spec("digits"), judged_sets=("sklearn_test",))
    monkeypatch.setattr(transductive, "get_spec", lambda name: spec)
    return spec


def answers_without_the_notebook(kernel, inputs, work):
    """What notebook_answers returns, without running the notebook: label 0 for every test row written."""
    (test,) = inputs.glob("*/test.csv")
    return np.zeros(len(pd.read_csv(test)), np.int64), 0.1


real_notebook_answers = transductive.notebook_answers


def variant_notebooks_only(kernel, inputs, work):
    """The variant's notebook run for real (its round included), the plain one stood in: the plain notebook's
    run is tests/test_kernel.py's."""
    if kernel.name == "kernel-0":  # measure() writes the plain ensemble's kernel first
        return answers_without_the_notebook(kernel, inputs, work)
    return real_notebook_answers(kernel, inputs, work)


@pytest.mark.slow  # trains a tiny run, then runs the variant's notebook in a subprocess
def test_each_half_is_scored_plain_and_with_each_variant(
    judged_digits, digits_dir, tmp_path, capsys, monkeypatch, figures_left_out
):
    from common.execution.pipeline import RunOptions, run_competition
    from common.ground.config_files import load_config

    root, out = tmp_path / "runs", tmp_path / "results"
    cfg, label = load_config("digits", "smoke", None, TINY)
    run_competition(judged_digits, cfg, label, ["digits", *TINY], RunOptions(str(digits_dir), root))
    argv = ["digits", "--variant", "quick:epochs=1,train_rows=50,threshold=0.5", "--runs", str(root)]

    # Settings picked before: the reporting half alone, nothing picked; the variant's notebook runs as on
    # Kaggle, its round included.
    reported = out / "report-only"
    monkeypatch.setattr(transductive, "notebook_answers", variant_notebooks_only)
    assert transductive.main([*argv, "--report-only", "--data-dir", str(digits_dir), "--out", str(reported)]) == 0
    document = json.loads(next(reported.glob("transductive-digits-*.json")).read_text())
    assert [(row["half"], row["variant"]) for row in document["rows"]] == [
        ("sklearn_test_report", "plain ensemble"),
        ("sklearn_test_report", "quick"),
    ]
    assert all(0 <= row["accuracy"] <= 1 and 0 <= row["p_value"] <= 1 for row in document["rows"])
    assert document["variants"] == {"quick": {"epochs": 1, "train_rows": 50, "threshold": 0.5}}
    printed = capsys.readouterr().out
    assert document["picked"] is None and "Reporting half only" in printed and "transductive round 1:" in printed

    # Both halves, the variant picked on one: that the notebook runs and is scored is shown above, so its
    # answers are stood in for here (two notebooks fewer to run).
    # With --adabn, one more notebook: AdaBN's, without a round.
    levers = []

    def recorded(kernel, inputs, work):
        facts = json.loads((kernel / "dataset" / "ensemble.json").read_text())
        levers.append((bool(facts["transductive"]), facts["adabn"]))
        return answers_without_the_notebook(kernel, inputs, work)

    monkeypatch.setattr(transductive, "notebook_answers", recorded)
    assert transductive.main([*argv, "--adabn", "--data-dir", str(digits_dir), "--out", str(out)]) == 0
    (path,) = out.glob("transductive-digits-*.json")
    document = json.loads(path.read_text())
    assert [(row["half"], row["variant"]) for row in document["rows"]] == [
        (half, variant)
        for half in ("sklearn_test_pick", "sklearn_test_report")
        for variant in ("plain ensemble", "quick", "AdaBN")
    ]
    assert levers == [(False, False), (True, False), (False, True)] * 2 and document["adabn"] is True
    assert document["picked"] in ("plain ensemble", "quick", "AdaBN")


@pytest.mark.parametrize(
    "variant, message",
    [
        ("quick:epoch=1", "unknown config key 'epoch'"),
        ("quick:epochs=many", "epochs must be int"),
        ("quick:epochs", "expected key=value"),
        ("quick:threshold=2", "threshold must be in [0, 1]"),
        (":epochs=1", "needs a name"),
    ],
)
def test_a_bad_variant_is_one_line(variant, message, capsys):
    assert transductive.main(["kannada", "--variant", variant]) == 2
    assert message in capsys.readouterr().err


def test_a_competition_without_a_judged_set_is_refused(capsys):
    assert transductive.main(["mnist"]) == 2
    assert "has no judged set" in capsys.readouterr().err
