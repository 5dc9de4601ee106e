"""Backend, device and precision: what a unit trains on, decided once per process.

The backend is chosen the Keras way (`KERAS_BACKEND`, or `~/.keras/keras.json`): TensorFlow by default (the
fastest on the CPUs measured here), JAX on GPUs (the GPU machines this project is measured on hold no
TensorFlow). Keras' PyTorch backend is refused: no test here runs it. Only the branch of the backend in use imports its framework, so the whole tool
runs with TensorFlow not installed. Every choice a device cannot honour is one UserError line, raised by
`resolve_hardware` before a run folder exists.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from common.ground.config import Config
from common.ground.errors import UserError
from common.ground.quiet import load_keras_quietly, quiet_stderr

BACKENDS = ("tensorflow", "jax")  # what the tests run; Keras also has torch and openvino


def backend_name() -> str:
    """The Keras backend this process will use, checked without importing Keras (which raises a traceback)."""
    name = os.environ.get("KERAS_BACKEND")
    if name is None:
        settings = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
        try:
            name = json.loads(settings.read_text()).get("backend", "tensorflow")
        except (OSError, ValueError):
            name = "tensorflow"
    if name not in BACKENDS:
        raise UserError(f"KERAS_BACKEND={name!r}: this tool trains on the {' or '.join(BACKENDS)} backend")
    return name


@dataclass(frozen=True)
class Hardware:
    """Where and how units train; recorded in run.json and each unit.json."""

    backend: str
    device: str  # cpu | gpu
    device_name: str
    precision: str  # float32 | mixed_bfloat16 | mixed_float16 (Keras dtype policies)
    jit_compile: bool
    threads: int = 0  # intra-op threads (CPU work); 0 = the backend's default

    @property
    def fused_batch_norm(self) -> bool:
        """BatchNorm's training step through TensorFlow's fused kernel (JAX fuses its ops through XLA itself)."""
        return self.backend == "tensorflow"

    @property
    def affine_kernel(self) -> str:
        """The augmentation's warp: the backend's own kernel, or gathers where XLA compiles TensorFlow's step
        (it cannot compile ImageProjectiveTransformV3)."""
        return "gathers" if self.backend == "tensorflow" and self.jit_compile else "native"

    @property
    def description(self) -> str:
        threads = f", {self.threads} threads" if self.threads else ""
        step = f"fused BatchNorm {'on' if self.fused_batch_norm else 'off'}, affine {self.affine_kernel}"
        return f"{self.backend} on {self.device_name}, {self.precision}, jit {'on' if self.jit_compile else 'off'}, {step}{threads}"

    def to_dict(self) -> dict[str, str | bool]:
        return {"backend": self.backend, "device": self.device, "device_name": self.device_name,
                "precision": self.precision, "jit_compile": self.jit_compile, "threads": self.threads,
                "fused_batch_norm": self.fused_batch_norm, "affine_kernel": self.affine_kernel}  # fmt: skip


# ---------------------------------------------------------------------------
# What the machine has
# ---------------------------------------------------------------------------


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_info() -> tuple[str, set[str]]:
    """(model name, flags) from /proc/cpuinfo; the platform's processor name and no flags elsewhere."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    flags = {flag for line in lines if line.startswith("flags") for flag in line.split(":", 1)[1].split()}
    return (names[0] if names else platform.processor() or platform.machine()), flags


def cpu_model() -> str:
    return cpu_info()[0]


def cpu_flags() -> str:
    """The vector extensions that decide CPU speed here (AVX2 only, or AVX-512 with BF16): recorded with results."""
    return " ".join(sorted(flag for flag in cpu_info()[1] if flag.startswith(("avx", "amx"))))


def cpu_name() -> str:
    return f"CPU ({cpu_model()}, {os.cpu_count()} cores)"


def cpu_has_bfloat16() -> bool:
    """AVX512-BF16 or AMX: the CPUs on which oneDNN/XLA run bfloat16 matmuls natively."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_info()[1])


class KerasPredictRetracing(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning about Keras' predict function, a false alarm
    here: every unit (and every saved model `predict` loads) is a new model whose predict function traces once,
    on fixed-shape batches (train.predict_sets), while TensorFlow counts traces by source code across models, so
    five small units in a row set it off. Every other record passes, a training step's retracing included."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message and "make_predict_function" in message)


def quiet_false_alarms() -> None:
    """KerasPredictRetracing on TensorFlow's Python logger, once per process."""
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, KerasPredictRetracing) for f in logger.filters):
        logger.addFilter(KerasPredictRetracing())


def start_backend_quietly() -> None:
    """Loads Keras and lets its backend look for GPUs with file descriptor 2 silenced: TensorFlow's start-up lines
    and, on a machine without a GPU, its failed CUDA probe (`failed call to cuInit ... UNKNOWN ERROR (303)`) are
    not the user's business. What the backend prints afterwards, a real warning, still reaches them."""
    load_keras_quietly()
    gpus(backend_name(), deterministic=False)  # the probe runs once per process; quiet on TensorFlow
    quiet_false_alarms()


def capability(major: int, minor: int) -> float:
    return float(f"{major}.{minor}")


def gpus(backend: str, deterministic: bool, cpu_only: bool = False) -> list[tuple[str, float]]:
    """(name, compute capability) of each GPU the backend sees."""
    if cpu_only:
        if backend == "jax":
            import jax

            jax.config.update("jax_platforms", "cpu")  # before JAX starts a client: the GPU is never touched
        return []
    if backend == "jax":
        flag = "--xla_gpu_deterministic_ops=true"
        if deterministic and flag not in os.environ.get("XLA_FLAGS", ""):  # read when JAX starts its GPU client
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()
        import jax

        found = [d for d in jax.devices() if d.platform == "gpu"] if jax.default_backend() == "gpu" else []
        return [(d.device_kind, float(getattr(d, "compute_capability", 0) or 0)) for d in found]
    with quiet_stderr():  # TensorFlow's C++ start-up chatter would bury a one-line error
        import tensorflow as tf

        found = tf.config.list_physical_devices("GPU")
    details = [tf.config.experimental.get_device_details(g) for g in found]
    return [(d.get("device_name", "GPU"), capability(*d.get("compute_capability", (0, 0)))) for d in details]


# ---------------------------------------------------------------------------
# Deciding, then applying
# ---------------------------------------------------------------------------


def resolve_hardware(cfg: Config) -> Hardware:
    """What cfg asks for on this machine; UserError for a GPU asked for but absent or a precision it lacks."""
    backend = backend_name()
    check_tensorboard(cfg, backend)
    found = gpus(backend, cfg.deterministic, cpu_only=cfg.device == "cpu")
    if cfg.device == "gpu" and not found:
        raise UserError(f"device=gpu: the {backend} backend sees no GPU on this machine (use device=auto or cpu)")
    on_gpu = bool(found)
    name = f"{len(found)}x {found[0][0]}" if on_gpu else cpu_name()
    precision = choose_precision(cfg.mixed_precision, on_gpu, found)
    # XLA is JAX's only compiler; TensorFlow's XLA was 2.7x slower on the CPUs measured.
    jit = cfg.xla == "on" or (cfg.xla == "auto" and (backend == "jax" or (backend == "tensorflow" and on_gpu)))
    threads = cfg.threads if backend != "jax" else 0  # XLA's CPU thread pool is its own: not set here
    return Hardware(backend, "gpu" if on_gpu else "cpu", name, precision, jit, threads)


def check_tensorboard(cfg: Config, backend: str) -> None:
    """Keras' TensorBoard callback writes with tf.summary, which needs TensorFlow and the tensorboard package."""
    if cfg.tensorboard and backend != "tensorflow":
        raise UserError(f"tensorboard=true: Keras' TensorBoard callback needs TensorFlow, not the {backend} backend")
    if cfg.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise UserError("tensorboard=true: the tensorboard package is not installed (pip install tensorboard)")


def choose_precision(asked: str, on_gpu: bool, found: list[tuple[str, float]]) -> str:
    """mixed_precision: auto (float32) | on | off | bfloat16 | float16.

    auto is float32 on GPUs too: on one H200 the default mnist run took 115 s with mixed_bfloat16 against 107 s in
    float32 (these small CNNs are bound by the per-step dispatch, not the arithmetic) and scored 0.99474 against
    0.99486 OOF (bench/results/gpu-2026-11-27). Mixed precision stays one key away for wider models."""
    if asked in ("off", "auto"):
        return "float32"
    has_bf16 = min(cc for _, cc in found) >= 8.0 if on_gpu else cpu_has_bfloat16()
    if asked == "bfloat16" and not has_bf16:
        where = "this GPU (compute capability < 8.0)" if on_gpu else "this CPU (no AVX512-BF16 or AMX)"
        raise UserError(f"mixed_precision=bfloat16: {where} has no bfloat16; use float16 or off")
    if asked == "float16" and not on_gpu:
        raise UserError("mixed_precision=float16: CPUs have no fast float16 arithmetic; use bfloat16 or off")
    if asked == "on" and not (has_bf16 or on_gpu):
        raise UserError("mixed_precision=on: this CPU has no bfloat16 (AVX512-BF16 or AMX); use off")
    wanted = asked if asked in ("bfloat16", "float16") else ("bfloat16" if has_bf16 else "float16")
    return f"mixed_{wanted}"


def setup_hardware(cfg: Config) -> Hardware:
    """Resolves the hardware and applies it to this process: precision policy, device, determinism."""
    import keras

    hardware = resolve_hardware(cfg)
    quiet_false_alarms()
    keras.mixed_precision.set_global_policy(hardware.precision)
    if hardware.backend == "tensorflow":
        import tensorflow as tf

        set_tensorflow_threads(tf, cfg.threads)
        if cfg.device == "cpu":
            tf.config.set_visible_devices([], "GPU")
        if cfg.deterministic:
            tf.config.experimental.enable_op_determinism()
    return hardware


def set_tensorflow_threads(tf, threads: int) -> None:
    """The unit's intra- and inter-op thread counts: TensorFlow takes them only before it first runs an op, so
    a later call asking for what is already in force (0 = the cores) passes, and anything else is an error."""
    if not threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        current = tf.config.threading.get_intra_op_parallelism_threads() or available_cores()
        if current != threads:
            raise UserError(f"threads={threads}: this process already runs TensorFlow with {current}") from None
