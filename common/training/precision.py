"""`mixed_precision: auto` on a CPU: bfloat16 where a short probe on this machine finds it faster, float32 else.

A CPU flag cannot decide it: bfloat16 trained the same model 1.4x faster on an AMD EPYC with AVX512-BF16 and
0.82x as fast on an Intel Xeon with AMX (docs/results.md, "bfloat16 on a CPU"). So on a CPU that has bfloat16 a
new run times a few training steps of the mnist default unit in each precision, rounds taking turns, and keeps
bfloat16 only when it is clearly faster. The answer is cached per machine (`~/.cache/digit-pipeline/`), and the
run's config stores the choice (`bfloat16` or `off`), so its units train alike when resumed or merged. On a GPU,
with --scheduler, or on a CPU without bfloat16, `auto` is float32 without a probe.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from importlib.metadata import version
from pathlib import Path

import numpy as np

from common.ground.atomic import atomic_path
from common.ground.config import Config
from common.ground.spec import IMAGE_SHAPE, N_CLASSES
from common.training.backend import Hardware, available_cores, cpu_flags, cpu_has_bfloat16, cpu_model

PROBE = Config(model="deotte", width=16, batch_size=128)  # the mnist default unit
PROBE_STEPS = 12  # timed steps per round, after two untimed ones (the trace)
PROBE_ROUNDS = 2  # float32, bfloat16, float32, bfloat16: each side bracketed by the other
FASTER_BY = 1.2  # bfloat16 only when this much faster: short probes read up to 1.12x where whole units lost


@dataclass(frozen=True)
class PrecisionProbe:
    """What the probe measured on this machine (images per second, the best round of each) and its choice."""

    choice: str  # a mixed_precision value: bfloat16 | off
    float32: float
    bfloat16: float

    @property
    def description(self) -> str:
        chosen = "bfloat16" if self.choice == "bfloat16" else "float32"
        return (
            f"mixed_precision auto: {chosen} on this CPU (a probe of the mnist default unit: {self.float32:,.0f} img/s"
            f" in float32, {self.bfloat16:,.0f} in bfloat16; cached in {probe_cache()})"
        )


def resolved_precision(cfg: Config, hardware: Hardware) -> tuple[Config, PrecisionProbe | None]:
    """cfg with `mixed_precision: auto` decided for a run training here on `hardware`, and the probe that decided
    it; cfg unchanged and None where nothing was to decide."""
    if cfg.mixed_precision != "auto" or hardware.device != "cpu" or not cpu_has_bfloat16():
        return cfg, None
    probe = cached_probe(hardware)
    return replace(cfg, mixed_precision=probe.choice), probe


def probe_cache() -> Path:
    """One file per user of the machine, beside other programs' caches (every clone of the project shares it)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "digit-pipeline" / "precision.json"


def machine_key(backend: str) -> str:
    """What the probe's answer depends on: the CPU, its cores, the backend and Keras."""
    return f"{cpu_model()} | {cpu_flags()} | {available_cores()} cores | {backend} | keras {version('keras')}"


def cached_probes() -> dict[str, dict]:
    try:
        return json.loads(probe_cache().read_text())
    except (OSError, ValueError):
        return {}


def cached_probe(hardware: Hardware) -> PrecisionProbe:
    """This machine's probe, from the cache or measured now (and cached)."""
    cached = cached_probes().get(machine_key(hardware.backend))
    if cached:
        return PrecisionProbe(**cached)
    probe = measure_precisions(hardware)
    remember_probe(hardware.backend, probe)
    return probe


def remember_probe(backend: str, probe: PrecisionProbe) -> None:
    """Caches `probe` as this machine's answer on `backend`."""
    path = probe_cache()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, ".json") as temporary:
        temporary.write_text(json.dumps(cached_probes() | {machine_key(backend): asdict(probe)}, indent=1))


def measure_precisions(hardware: Hardware) -> PrecisionProbe:
    """Rounds taking turns; the best round of each precision (a round slowed by another process says nothing)."""
    rates: dict[str, list[float]] = {"float32": [], "mixed_bfloat16": []}
    for _ in range(PROBE_ROUNDS):
        for policy, measured in rates.items():
            measured.append(training_rate(replace(hardware, precision=policy)))
    float32, bfloat16 = max(rates["float32"]), max(rates["mixed_bfloat16"])
    return PrecisionProbe("bfloat16" if bfloat16 >= FASTER_BY * float32 else "off", float32, bfloat16)


def training_rate(hardware: Hardware, steps: int = PROBE_STEPS) -> float:
    """Images per second of the mnist default unit's training step (augmentation, fused BatchNorm, AdamW) in
    `hardware.precision`, on random images in memory."""
    import keras  # here: the cache's readers (the test suite's set-up) need no Keras

    from common.training.train import compiled_model

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(hardware.precision)
    try:
        _, trainer = compiled_model(PROBE, steps_per_epoch=100, hardware=hardware)
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (PROBE.batch_size, *IMAGE_SHAPE), dtype=np.uint8)
        labels = np.eye(N_CLASSES, dtype=np.float32)[rng.integers(0, N_CLASSES, PROBE.batch_size)]
        for _ in range(2):
            trainer.train_on_batch(images, labels)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_on_batch(images, labels)
        return steps * PROBE.batch_size / (time.perf_counter() - start)
    finally:
        keras.mixed_precision.set_global_policy(previous)
