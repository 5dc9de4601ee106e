"""A model's FLOPs per image and the machine's float32 matmul rate: the two sides of "share of matmul"."""

from __future__ import annotations

import math
import time

import keras

TRAIN_FLOPS_PER_FORWARD = 3  # forward + backward (gradients of inputs and of weights) ~ 3x the forward pass


def forward_flops(model: keras.Model) -> int:
    """Multiply-adds x 2 of one image's forward pass through the Conv2D and Dense layers (others are cheap)."""
    return sum(forward_flops(layer) if isinstance(layer, keras.Model) else layer_flops(layer) for layer in model.layers)


def layer_flops(layer: keras.layers.Layer) -> int:
    """Multiply-adds x 2 of one image's forward pass through one built Conv2D or Dense layer; 0 for others."""
    if isinstance(layer, keras.layers.Conv2D):
        kernel_h, kernel_w, inputs_per_group, filters = layer.kernel.shape
        shape = layer.output.shape
        height, width = shape[2:4] if layer.data_format == "channels_first" else shape[1:3]
        return int(2 * height * width * kernel_h * kernel_w * inputs_per_group * filters)
    if isinstance(layer, keras.layers.Dense):
        inputs, units = layer.kernel.shape
        positions = math.prod(layer.output.shape[1:-1])  # 1 on a flat input; more on a sequence or image
        return int(2 * positions * inputs * units)
    return 0


def matmul_gflops(size: int = 2048, seconds_per_round: float = 0.5, rounds: int = 3) -> float:
    """The backend's float32 matmul rate in GFLOP/s (keras.ops.matmul): best of a few rounds after a warm-up."""
    from keras import ops

    a = keras.random.uniform((size, size), seed=1)
    b = keras.random.uniform((size, size), seed=2)
    start = time.perf_counter()
    ops.convert_to_numpy(ops.matmul(a, b))  # warm-up: kernel selection, thread pools, GPU context
    reps = max(1, int(seconds_per_round / max(time.perf_counter() - start, 1e-6)))
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            product = ops.matmul(a, b)
        ops.convert_to_numpy(product)  # waits for the device: ops on one GPU stream run in order
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * reps / best / 1e9
