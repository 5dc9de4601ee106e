"""common/training/precision.py: `mixed_precision: auto` on a CPU, decided by a probe timed on this machine.

The probe's timing is stubbed at its boundary (`training_rate`, and the CPU's flags); one test times it for real.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import yaml

from common.execution.pipeline import RunOptions, run_competition
from common.ground.config import Config
from common.ground.config_files import load_config
from common.ground.spec import get_spec
from common.training import precision
from common.training.backend import Hardware, cpu_has_bfloat16
from common.training.precision import cached_probes, machine_key, resolved_precision

CPU = Hardware("tensorflow", "cpu", "CPU (test, 2 cores)", "float32", False, 2)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def timed(monkeypatch, float32: float, bfloat16: float, bf16_cpu: bool = True) -> list[str]:
    """Stubs the probe's boundary: the CPU's flags and each round's rate; returns the policies timed."""
    timed_policies: list[str] = []

    def rate(hardware: Hardware) -> float:
        timed_policies.append(hardware.precision)
        return bfloat16 if hardware.precision == "mixed_bfloat16" else float32

    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: bf16_cpu)
    monkeypatch.setattr(precision, "training_rate", rate)
    return timed_policies


def test_a_cpu_without_bfloat16_keeps_float32_and_times_nothing(empty_cache, monkeypatch):
    rounds = timed(monkeypatch, 1000, 1400, bf16_cpu=False)
    assert resolved_precision(Config(), CPU)[0].mixed_precision == "auto"
    assert rounds == [] and cached_probes() == {}


def test_bfloat16_clearly_faster_is_chosen_and_cached(empty_cache, monkeypatch):
    rounds = timed(monkeypatch, 1000, 1400)
    assert resolved_precision(Config(), CPU)[0].mixed_precision == "bfloat16"
    assert rounds == ["float32", "mixed_bfloat16"] * precision.PROBE_ROUNDS  # rounds taking turns
    assert cached_probes() == {machine_key("tensorflow"): {"choice": "bfloat16", "float32": 1000, "bfloat16": 1400}}
    rounds.clear()
    assert resolved_precision(Config(), CPU)[0].mixed_precision == "bfloat16"
    assert rounds == []  # once per machine


@pytest.mark.parametrize("bfloat16", [820, 1150])  # slower, or faster only by what short probes misread
def test_bfloat16_not_clearly_faster_is_float32(empty_cache, monkeypatch, bfloat16):
    timed(monkeypatch, 1000, bfloat16)
    assert resolved_precision(Config(), CPU)[0].mixed_precision == "off"


def test_a_gpu_or_a_precision_asked_for_is_left_alone(empty_cache, monkeypatch):
    rounds = timed(monkeypatch, 1000, 1400)
    gpu = Hardware("jax", "gpu", "1x H100", "float32", True)
    assert resolved_precision(Config(), gpu)[0].mixed_precision == "auto"
    for asked in ("off", "on", "bfloat16"):
        assert resolved_precision(Config(mixed_precision=asked), CPU)[0].mixed_precision == asked
    assert rounds == []


def test_the_probe_times_real_training_steps_in_each_precision():
    assert precision.training_rate(CPU, steps=1) > 0
    if cpu_has_bfloat16():
        assert precision.training_rate(replace(CPU, precision="mixed_bfloat16"), steps=1) > 0


@pytest.mark.slow  # trains a tiny run
@pytest.mark.skipif(not cpu_has_bfloat16(), reason="this CPU has no bfloat16")
def test_a_run_stores_the_probes_choice_and_trains_in_it(digits_dir, tmp_path, empty_cache, monkeypatch):
    timed(monkeypatch, 1000, 1400)
    cfg, label = load_config("digits", "smoke", overrides=["max_train_rows=200", "epochs=1"])
    folder = run_competition(get_spec("digits"), cfg, label, ["digits"], RunOptions(str(digits_dir), tmp_path / "runs"))
    assert yaml.safe_load((folder / "config.yaml").read_text())["mixed_precision"] == "bfloat16"
    assert "mixed_bfloat16" in json.loads((folder / "run.json").read_text())["hardware"][0]
    assert json.loads((folder / "units" / "f0-s0" / "unit.json").read_text())["precision"] == "mixed_bfloat16"
    assert (
        "mixed_precision auto: bfloat16 on this CPU (a probe of the mnist default unit: 1,000 img/s in float32,"
        in (folder / "train.log").read_text()
    )
