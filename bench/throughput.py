"""Profile: where a recipe's training time goes, against the machine's own float32 matmul rate.

python -m bench.throughput mnist [--preset fast] [--steps 40] [KEY=VALUE ...]

Times, at the recipe's batch size and on random 28x28 images (timing does not depend on the pixels):
  1. the machine's float32 matrix-multiply rate (as the budget benchmark measures it, bench/harness/flops.py);
  2. full training steps fed from memory (the model alone) and through the trainer (TrainBatches and the
     in-graph affine), so the difference is what feeding and augmentation cost (bench/speed.py);
  3. every layer alone (TensorFlow only), forward and backward, with its FLOPs and the rate it reaches.
Results: bench/results/throughput-<competition>-<UTC stamp>.md and .json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from bench.harness.flops import TRAIN_FLOPS_PER_FORWARD, forward_flops, layer_flops, matmul_gflops  # noqa: E402
from bench.harness.rates import model_rates  # noqa: E402
from bench.harness.results import RESULTS_DIR, machine_description, markdown_table, write_result_files  # noqa: E402
from common import runs  # noqa: E402
from common.ground.config import Config  # noqa: E402
from common.ground.config_files import load_config
from common.ground.errors import UserError, exit_status  # noqa: E402
from common.ground.spec import COMPETITIONS, get_spec  # noqa: E402
from common.training.backend import setup_hardware  # noqa: E402
from common.training.train import compiled_model  # noqa: E402

ROUNDS = 3  # each timing is the best of a few rounds: other work on the machine only ever slows a round


def best_seconds(work: Callable[[], Any], rounds: int = ROUNDS) -> float:
    """The fastest of `rounds` timed calls of `work` (after one untimed call that traces and warms up)."""
    work()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def random_batch(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, n)


# ---------------------------------------------------------------------------
# Whole training steps, and the augmented stream alone
# ---------------------------------------------------------------------------


def training_rates(cfg: Config, steps: int) -> dict[str, float]:
    """Images per second: the model alone fed from memory, and inside the trainer (in-graph augmentation)."""
    rates = model_rates(cfg, steps)
    return {"model_only": rates["model_alone"], "model_and_augmentation": rates["model_in_trainer"]}


# ---------------------------------------------------------------------------
# Layer by layer
# ---------------------------------------------------------------------------


def layer_step(layer: keras.layers.Layer) -> Callable[[Any], Any]:
    """One forward and backward pass through `layer` alone (gradients of its input and of its weights)."""
    import tensorflow as tf

    @tf.function
    def step(x: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.cast(layer(x, training=True), tf.float32))
        return tape.gradient(loss, [x, *layer.trainable_weights])

    return step


def layer_profile(model: keras.Model, batch_size: int) -> list[dict[str, Any]]:
    """Per layer with work to do: output shape, training MFLOP per image, ms per batch, GFLOP/s."""
    import tensorflow as tf

    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        x = tf.random.uniform((batch_size, *layer.input.shape[1:]), dtype=tf.float32)
        step = layer_step(layer)
        seconds = best_seconds(lambda step=step, x=x: [t.numpy() for t in step(x)])
        flops = TRAIN_FLOPS_PER_FORWARD * layer_flops(layer)
        rows.append(
            {
                "layer": f"{layer.name} ({type(layer).__name__})",
                "output": "x".join(str(d) for d in layer.output.shape[1:]),
                "train_mflop_per_image": flops / 1e6,
                "ms_per_batch": seconds * 1e3,
                "gflops": flops * batch_size / seconds / 1e9,
            }
        )
    return rows


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------


def profile_document(competition: str, cfg: Config, steps: int, command: str) -> dict[str, Any]:
    rate = matmul_gflops()
    model, _ = compiled_model(cfg, steps, setup_hardware(cfg))
    layers = layer_profile(model, cfg.batch_size) if keras.backend.backend() == "tensorflow" else []
    return {
        "competition": competition,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "config": cfg.to_dict(),
        "machine": machine_description(rate, 2048),
        "train_mflop_per_image": TRAIN_FLOPS_PER_FORWARD * forward_flops(model) / 1e6,
        "images_per_second": training_rates(cfg, steps),
        "layers": layers,
        "git_commit": runs.git_commit(),
    }


def rate_lines(document: dict[str, Any]) -> list[str]:
    matmul = document["machine"]["matmul_gflops"]
    mflop = document["train_mflop_per_image"]
    rows = []
    for name, rate in document["images_per_second"].items():
        gflops = rate * mflop / 1e3 if name != "augmentation_only" else None
        share = f"{gflops / matmul:.1%}" if gflops else "-"
        rows.append([name.replace("_", " "), f"{rate:,.0f}", f"{gflops:.1f}" if gflops else "-", share])
    return markdown_table(["what runs", "img/s", "GFLOP/s", "share of matmul"], rows).splitlines()


def layer_lines(document: dict[str, Any]) -> list[str]:
    layers, matmul = document["layers"], document["machine"]["matmul_gflops"]
    total = sum(row["ms_per_batch"] for row in layers)
    rows = [
        [
            row["layer"], row["output"], f"{row['train_mflop_per_image']:.2f}", f"{row['ms_per_batch']:.2f}",
            f"{row['ms_per_batch'] / total:.1%}", f"{row['gflops']:.1f}" if row["gflops"] else "-",
            f"{row['gflops'] / matmul:.1%}" if row["gflops"] else "-",
        ]
        for row in layers
    ]  # fmt: skip
    rows.append(["all layers, one by one", "", f"{document['train_mflop_per_image']:.2f}", f"{total:.2f}", "", "", ""])
    columns = ["layer", "output", "train MFLOP/img", "ms/batch", "share of time", "GFLOP/s", "share of matmul"]
    return markdown_table(columns, rows).splitlines()


def markdown_report(document: dict[str, Any]) -> str:
    machine, cfg = document["machine"], document["config"]
    return "\n".join(
        [
            f"# Training profile: {document['competition']}, model {cfg['model']} width {cfg['width']}",
            "",
            f"`{document['command']}` at {document['created']} (commit {document['git_commit'] or 'unknown'})",
            "",
            f"Machine: {machine['cpu']}, {machine['cores']} cores, load average at start {machine['load_average']};"
            f" float32 matmul ({machine['matmul_size']}x{machine['matmul_size']}): {machine['matmul_gflops']} GFLOP/s."
            f" Batch size {cfg['batch_size']}; best of {ROUNDS} rounds per timing.",
            "",
            "## Whole training steps",
            "",
            *rate_lines(document),
            "",
            "## Layer by layer (forward and backward, each layer alone, batch in memory)",
            "",
            *layer_lines(document),
            "",
        ]
    )


def throughput_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("competition", help=f"one of: {', '.join(COMPETITIONS)}")
    parser.add_argument("--preset", help="a file in configs/presets/ (default: the competition's own config)")
    parser.add_argument("--steps", type=int, default=40, help="training steps per timing round (default: 40)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder (default: bench/results)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    return parser


def profile(argv: list[str]) -> Path:
    """Checks the arguments, times the recipe; writes and returns the markdown's path."""
    args = throughput_parser().parse_intermixed_args(argv)
    get_spec(args.competition)
    cfg, _ = load_config(args.competition, args.preset, overrides=args.overrides)
    if args.steps < 1:
        raise UserError(f"throughput: --steps must be at least 1, got {args.steps}")
    document = profile_document(args.competition, cfg, args.steps, " ".join(["python -m bench.throughput", *argv]))
    return write_result_files(args.out, f"throughput-{args.competition}", document, markdown_report(document))


def main(argv: list[str]) -> int:
    return exit_status(lambda: profile(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
