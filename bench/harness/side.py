"""One side of the trainer-speed benchmark (bench/step_speed.py), as a long-lived process that trains on cue.

python -m bench.harness.side SIDE ROOT COMPETITION ROWS KEY=VALUE...

SIDE is what trains: `trainer` (the project's training wrapper fed by TrainBatches, as a unit trains, from the
code under ROOT: this checkout or an older commit checked out beside it), `alone` (the model alone as the trainer steps it, on
arrays in memory, no augmentation), or `peer` (a competitor's plain Keras notebook: the same model, `tf.data` from memory,
Keras' RandomRotation/RandomZoom/RandomTranslation in a parallel map, `model.fit`). It builds and compiles once,
trains one untimed epoch, prints `ready`, then for every line `go` on its standard input trains one epoch of
ROWS random images and prints one JSON line: the seconds inside the epoch (Keras' epoch callbacks), the CPU
seconds this process used, and /proc/stat's jiffies (total, steal) around it. Sides never train at once: the
driver cues one at a time.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def cpu_jiffies() -> tuple[int, int]:
    """(all jiffies, stolen jiffies) of the machine so far, from /proc/stat's first line."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return sum(fields[:8]), fields[7]


def epoch_timer():
    import keras

    class EpochSeconds(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.started

    return EpochSeconds()


def random_rows(rows: int):
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (rows, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, rows)


def trainer_epoch(cfg, hardware, images, labels):
    """The project's training wrapper and its batches, as train_unit builds them."""
    from common.training.batches import TrainBatches
    from common.training.train import compiled_model

    batches = TrainBatches(images, labels, cfg, 0)
    _, trainer = compiled_model(cfg, len(batches), hardware)
    return lambda callbacks: trainer.fit(batches, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)


def alone_epoch(cfg, hardware, images, labels):
    """The model as the trainer steps it (its fused BatchNorm), without augmentation or batches of its own."""
    import numpy as np

    from common.training.batchnorm import fused_view
    from common.training.models import create_model
    from common.training.train import compile_for_training

    one_hot = np.eye(10, dtype=np.float32)[labels]
    model = fused_view(create_model(cfg.model, cfg))
    model = compile_for_training(model, cfg, len(images) // cfg.batch_size, hardware)
    return lambda callbacks: model.fit(
        images, one_hot, batch_size=cfg.batch_size, shuffle=False, verbose=0, callbacks=callbacks
    )


def peer_epoch(cfg, hardware, images, labels):
    """What a competitor writes by hand: Keras' preprocessing layers in a tf.data map, the same model and
    optimiser."""
    import keras
    import tensorflow as tf
    from keras import layers

    from common.training.models import create_model
    from common.training.train import compile_for_training

    augment = keras.Sequential(
        [
            layers.RandomRotation(cfg.rotate / 360.0, fill_mode="constant"),
            layers.RandomZoom(cfg.scale, fill_mode="constant"),
            layers.RandomTranslation(cfg.shift, cfg.shift, fill_mode="constant"),
        ]
    )
    one_hot = tf.one_hot(labels, 10)
    data = (
        tf.data.Dataset.from_tensor_slices((images, one_hot))
        .shuffle(len(images))
        .batch(cfg.batch_size, drop_remainder=True)
        .map(lambda x, y: (augment(tf.cast(x, tf.float32), training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    model = compile_for_training(create_model(cfg.model, cfg), cfg, len(images) // cfg.batch_size, hardware)
    return lambda callbacks: model.fit(data, epochs=1, verbose=0, callbacks=callbacks)


SIDES = {"trainer": trainer_epoch, "alone": alone_epoch, "peer": peer_epoch}


def main(argv: list[str]) -> None:
    side, root, competition, rows, overrides = argv[0], argv[1], argv[2], int(argv[3]), argv[4:]
    sys.path.insert(0, root)  # the checkout whose code trains (an older commit for the old trainer)
    from common.ground.config_files import load_config
    from common.training.backend import setup_hardware

    cfg, _ = load_config(competition, None, overrides=overrides)
    hardware = setup_hardware(cfg)
    epoch = SIDES[side](cfg, hardware, *random_rows(rows))
    timer = epoch_timer()
    epoch([timer])  # traces and compiles
    print(json.dumps({"ready": True, "hardware": hardware.description}), flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        jiffies, cpu = cpu_jiffies(), os.times()
        epoch([timer])
        after, cpu_after = cpu_jiffies(), os.times()
        used = cpu_after.user + cpu_after.system - cpu.user - cpu.system
        record = {"seconds": timer.seconds, "cpu_seconds": used, "jiffies": after[0] - jiffies[0]}
        print(json.dumps(record | {"steal": after[1] - jiffies[1]}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
