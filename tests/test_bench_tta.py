"""bench/tta.py: OOF accuracy of a finished run's own models with 0-8 test-time shifts."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from bench.tta import main
from common.execution.pipeline import RunOptions, run_competition
from common.ground.config_files import load_config
from common.ground.spec import get_spec

pytestmark = pytest.mark.usefixtures("figures_left_out")  # no report is tested here


@pytest.fixture(scope="module")
def tta_run(digits_dir, tmp_path_factory):
    """A tiny finished run trained with tta=2, and the bench's results for it."""
    cfg, label = load_config("digits", "smoke", overrides=["max_train_rows=300", "epochs=1", "tta=2", "model=mlp"])
    out, results = tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("results")
    folder = run_competition(get_spec("digits"), cfg, label, ["digits"], RunOptions(str(digits_dir), out))
    argv = ["digits", "--data-dir", str(digits_dir), "--out", str(out), "--results", str(results)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0
    return folder, json.loads(next(results.glob("tta-digits-*.json")).read_text())


@pytest.mark.slow  # the module's tiny run, scored with 0-8 views
def test_every_view_count_is_scored(tta_run):
    _, record = tta_run
    assert [row["tta"] for row in record["rows"]] == list(range(9))
    assert all(0 <= row["oof_accuracy"] <= 1 for row in record["rows"])


@pytest.mark.slow  # the module's tiny run, scored with 0-8 views
def test_the_runs_own_tta_reproduces_its_oof_accuracy(tta_run):
    folder, record = tta_run
    metrics = json.loads((folder / "metrics.json").read_text())
    assert record["rows"][2]["oof_accuracy"] == pytest.approx(metrics["oof_accuracy"], abs=1e-5)


def test_unknown_run_is_one_line_and_exit_2(digits_dir, tmp_path, capsys):
    from common import runs

    out, results = tmp_path / "runs", tmp_path / "results"
    runs.start_run(runs.create_run_dir(out, "digits", "default"), {"folds": 2}, ["digits"])  # another run is there
    argv = ["digits", "nosuchrun", "--data-dir", str(digits_dir), "--out", str(out)]
    assert main([*argv, "--results", str(results)]) == 2
    assert capsys.readouterr().err.startswith("error: no run of digits matches 'nosuchrun'")
    assert not results.exists()
