"""Trainer speed against the plain Keras loop, an older trainer and the model alone, taking turns in one run.

python -m bench.step_speed mnist [--old PATH] [--variant 'KEY=VALUE ...'] [--rows 12000] [--rounds 6] [KEY=VALUE ...]

Each side is its own long-lived process (bench/harness/side.py), built and compiled once; the driver cues one
epoch of ROWS random images at a time, in the order A B C, then C B A, ..., so that every side's round is
bracketed by the others'. Sides: `trainer` (this checkout's training wrapper fed by TrainBatches, as a unit
trains), `old trainer` (the same from an older commit checked out at --old, e.g. `git worktree add ../old REV`),
`peer` (a competitor's plain Keras notebook on the same model: tf.data from memory, Keras' preprocessing layers
in a parallel map, `model.fit`) and `model alone` (the model fitted on arrays in memory, no augmentation).
Rates are inside the epoch (Keras' epoch callbacks); each is also given corrected for the CPU time the host's
other guests stole during it (/proc/stat's steal column). The share of the machine's float32 matmul rate counts
3x the model's forward FLOPs per image (forward and backward), the matmul rate measured before and after.
Results: bench/results/step-speed-<competition>-<UTC stamp>.json and .md, with lscpu.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness.results import RESULTS_DIR, markdown_table, provenance, write_result_files
from common.ground.errors import UserError, exit_status
from common.ground.paths import PROJECT_ROOT
from common.ground.spec import COMPETITIONS


class Side:
    """A side process: started, cued one epoch at a time, stopped."""

    def __init__(self, name: str, kind: str, root: Path, args: argparse.Namespace, extra: list[str]) -> None:
        self.name = name
        command = [sys.executable, "-m", "bench.harness.side", kind, str(root), args.competition, str(args.rows)]
        self.process = subprocess.Popen(
            [*command, *args.overrides, *extra],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ready = self.read()
        self.rounds: list[dict[str, Any]] = []

    def read(self) -> dict[str, Any]:
        for line in self.process.stdout:  # libraries may print lines of their own first
            if line.startswith("{"):
                return json.loads(line)
        raise UserError(f"step_speed: side {self.name!r} stopped (status {self.process.wait()})")

    def round(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        self.rounds.append(self.read())

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def model_facts(args: argparse.Namespace) -> dict[str, Any]:
    """The model's forward FLOPs per image, images per epoch and the machine's matmul rate (GFLOP/s)."""
    from bench.harness.flops import forward_flops, matmul_gflops
    from common.ground.config_files import load_config
    from common.training.backend import cpu_has_bfloat16
    from common.training.models import create_model

    cfg, _ = load_config(args.competition, None, overrides=args.overrides)
    return {
        "forward_flops": forward_flops(create_model(cfg.model, cfg)),
        "images_per_epoch": args.rows // cfg.batch_size * cfg.batch_size,
        "matmul_gflops": matmul_gflops(),
        "bfloat16": cpu_has_bfloat16(),
        "config": {"model": cfg.model, "width": cfg.width, "batch_size": cfg.batch_size},
    }


def take_turns(sides: list[Side], rounds: int) -> None:
    for r in range(rounds):
        for side in sides if r % 2 == 0 else reversed(sides):
            side.round()
            print(f"round {r + 1}: {side.name} {side.rounds[-1]['seconds']:.2f} s", file=sys.stderr, flush=True)


def side_summary(side: Side, images: int, flops: float, matmul: float) -> dict[str, Any]:
    raw = [images / r["seconds"] for r in side.rounds]
    stolen = [r["steal"] / max(r["jiffies"], 1) for r in side.rounds]
    corrected = [rate / (1 - s) for rate, s in zip(raw, stolen, strict=True)]
    median = float(np.median(corrected))
    return {
        "name": side.name,
        "hardware": side.ready["hardware"],
        "rates": [round(v) for v in raw],
        "steal": [round(s, 4) for s in stolen],
        "corrected": [round(v) for v in corrected],
        "median": round(median),
        "slowest_over_fastest": round(min(corrected) / max(corrected), 3),
        "matmul_share": round(median * 3 * flops / (matmul * 1e9), 3),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    facts = model_facts(args)
    plan = [("trainer", "trainer", PROJECT_ROOT, [])]
    plan += [(f"trainer {variant}", "trainer", PROJECT_ROOT, variant.split()) for variant in args.variant]
    plan += [("old trainer", "trainer", args.old.resolve(), [])] if args.old else []
    plan += [("peer", "peer", PROJECT_ROOT, []), ("model alone", "alone", PROJECT_ROOT, [])]
    sides = []
    try:
        for name, kind, root, extra in plan:  # started one by one: building and compiling is not timed
            sides.append(Side(name, kind, root, args, extra))
        take_turns(sides, args.rounds)
    finally:
        for side in sides:
            side.stop()
    matmul = (facts["matmul_gflops"] + model_facts(args)["matmul_gflops"]) / 2
    summaries = [side_summary(s, facts["images_per_epoch"], facts["forward_flops"], matmul) for s in sides]
    return facts | {"matmul_gflops_mean": round(matmul, 1), "sides": summaries}


def ratios(document: dict[str, Any]) -> list[list[str]]:
    median = {s["name"]: s["median"] for s in document["sides"]}
    rows = [[f"{name} / trainer", f"{value / median['trainer']:.2f}"] for name, value in median.items()
            if name.startswith("trainer ")]  # fmt: skip
    rows += [["trainer / peer", f"{median['trainer'] / median['peer']:.2f}"]]
    if "old trainer" in median:
        rows.append(["trainer / old trainer", f"{median['trainer'] / median['old trainer']:.2f}"])
    return rows + [["trainer / model alone", f"{median['trainer'] / median['model alone']:.2f}"]]


def markdown(document: dict[str, Any]) -> str:
    cfg, machine = document["config"], document["machine"]
    rows = [
        [s["name"], f"{s['median']:,}", ", ".join(f"{v:,}" for v in s["corrected"]), s["slowest_over_fastest"],
         f"{max(s['steal']):.1%}", f"{s['matmul_share']:.0%}"]
        for s in document["sides"]
    ]  # fmt: skip
    bf16 = "has bfloat16" if document["bfloat16"] else "no bfloat16 (no AVX512-BF16 or AMX): float32 only"
    return "\n".join(
        [
            f"# Trainer speed: {document['competition']}, {cfg['model']} width {cfg['width']}, batch {cfg['batch_size']}",
            "",
            f"`{document['command']}` (commit {document['git_commit'] or 'unknown'}), {document['created']}",
            "",
            f"- machine: {machine['cpu']}, {machine['cores']} cores; {bf16}; flags: {machine['cpu_flags']}",
            f"- float32 matmul {document['matmul_gflops_mean']} GFLOP/s; the model {document['forward_flops'] / 1e6:.1f}"
            f" MFLOP forward per image; {document['images_per_epoch']:,} images a round",
            f"- trainer: {document['sides'][0]['hardware']}",
            "",
            markdown_table(
                [
                    "side",
                    "median img/s",
                    "rounds (steal-corrected img/s)",
                    "slowest / fastest",
                    "most stolen",
                    "share of matmul",
                ],
                rows,
            ),  # fmt: skip
            "",
            markdown_table(["ratio of medians", "value"], ratios(document)),
            "",
        ]
    )


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.step_speed", description=__doc__.splitlines()[0])
    parser.add_argument("competition", choices=list(COMPETITIONS))
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides (model, width, batch...)")
    parser.add_argument("--old", type=Path, help="an older checkout whose trainer takes turns with this one")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="'KEY=VALUE ...'",
        help="one more trainer side with these overrides (a lever to measure); may repeat",
    )
    parser.add_argument("--rows", type=int, default=12_000, help="random images per round (default 12,000)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per side (default 6)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder (default: bench/results)")
    return parser


def step_speed(argv: list[str]) -> Path:
    args = parser().parse_args(argv)
    if args.old and not (args.old / "common" / "training" / "train.py").exists():
        raise UserError(f"step_speed: --old {args.old} is not a checkout of this project")
    document = measure(args) | {"competition": args.competition}
    document |= provenance(" ".join(["python -m bench.step_speed", *argv]))
    document["lscpu"] = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    return write_result_files(args.out, f"step-speed-{args.competition}", document, markdown(document))


if __name__ == "__main__":
    sys.exit(exit_status(lambda: step_speed(sys.argv[1:])))
