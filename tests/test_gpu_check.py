"""bench/gpu_check.py in its CPU mode on tiny data: every step runs and the archive holds the results."""

from __future__ import annotations

import json
import tarfile

import pytest

import bench.gpu_check as gpu_check
from bench.gpu_check import main


@pytest.mark.slow  # a tiny run in a subprocess, then the throughput rounds
def test_the_check_runs_its_steps_and_packs_one_archive(tmp_path, digits_dir, capsys):
    out = tmp_path / "check"
    assert main(["--out", str(out), "--tiny", "--data-dir", str(digits_dir)]) == 0
    document = json.loads((out / "check.json").read_text())
    assert [step["step"] for step in document["steps"]] == ["smoke"]
    assert all(step["status"] == 0 and step["wall_seconds"] > 0 for step in document["steps"])
    assert 0 < document["steps"][0]["metrics"]["oof_accuracy"] <= 1
    assert document["throughput"]["model_alone"] > 0 and "CPU" in document["devices"]
    with tarfile.open(out / "gpu-check.tar.gz") as tar:
        names = tar.getnames()
    assert {"check.json", "check.md", "check.log"} <= set(names)
    assert any(name.startswith("runs/smoke/digits/") and name.endswith("/submission.csv") for name in names)
    assert "| smoke | 0 |" in capsys.readouterr().out


def test_a_spent_budget_skips_the_remaining_steps(tmp_path, digits_dir, monkeypatch):
    # The throughput rounds still run after the skipped steps; measured in the test above, left out here.
    monkeypatch.setattr(gpu_check, "throughput", lambda tiny, log: {"model_alone": 1.0})
    out = tmp_path / "check"
    assert main(["--out", str(out), "--tiny", "--data-dir", str(digits_dir), "--budget-minutes", "0"]) == 0
    document = json.loads((out / "check.json").read_text())
    assert document["steps"] == [] and document["skipped"] == ["smoke"]
    assert document["throughput"] == {"model_alone": 1.0} and (out / "gpu-check.tar.gz").is_file()


@pytest.mark.slow  # a tiny run in a subprocess
def test_the_candidates_suite_runs_whole_runs_and_brings_back_their_oof(tmp_path, digits_dir):
    out = tmp_path / "check"
    assert main(["--out", str(out), "--tiny", "--suite", "candidates", "--data-dir", str(digits_dir)]) == 0
    document = json.loads((out / "check.json").read_text())
    assert [step["step"] for step in document["steps"]] == ["candidate"] and document["throughput"] == {}
    with tarfile.open(out / "gpu-check.tar.gz") as tar:
        names = tar.getnames()
    assert any(name.startswith("runs/candidate/digits/") and name.endswith("/oof.npy") for name in names)


def test_the_best_suite_runs_the_best_preset_for_mnist_then_kannada():
    assert gpu_check.steps(tiny=False, suite="best") == [
        ("mnist_best", ["mnist", "--preset", "best"]),
        ("kannada_best", ["kannada", "--preset", "best"]),
    ]
    ((name, args),) = gpu_check.steps(tiny=True, suite="best")
    assert name == "best" and args[:3] == ["digits", "--preset", "best"]
