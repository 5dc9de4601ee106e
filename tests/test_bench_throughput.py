"""python -m bench.throughput: whole-step and per-layer timings written as a table (small model, few steps)."""

from __future__ import annotations

import json

import keras
import pytest

from bench.harness.flops import forward_flops, layer_flops
from bench.throughput import main
from common.ground.config import Config
from common.training.models import create_model


def test_layer_flops_add_up_to_the_models():
    model = create_model("deotte", Config(width=16))
    assert sum(layer_flops(layer) for layer in model.layers) == forward_flops(model) > 0
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    first = convs[0]  # 3x3, 1 -> 16 channels, 26x26 output
    assert layer_flops(first) == 2 * 26 * 26 * 3 * 3 * 1 * 16


@pytest.mark.slow  # times every layer: about 20 s
def test_profile_writes_rates_and_every_layer(tmp_path, capsys):
    assert main(["digits", "--steps", "2", "--out", str(tmp_path), "model=small", "batch_size=16"]) == 0
    (document_path,) = tmp_path.glob("throughput-digits-*.json")
    document = json.loads(document_path.read_text())
    rates = document["images_per_second"]
    assert set(rates) == {"model_only", "model_and_augmentation"}
    assert all(rate > 0 for rate in rates.values())
    model = create_model("small", Config(model="small"))
    assert len(document["layers"]) == len(model.layers) - 1  # every layer but the input
    assert document["machine"]["matmul_gflops"] > 0
    report = capsys.readouterr().out
    assert "## Layer by layer" in report and "model and augmentation" in report


def test_profile_refuses_bad_arguments(capsys):
    assert main(["digits", "--steps", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: throughput: --steps must be at least 1, got 0"
    assert main(["digits", "nosuchkey=1"]) == 2
    assert "unknown config key 'nosuchkey'" in capsys.readouterr().err
