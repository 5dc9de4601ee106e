"""Several units trained in one compiled program: one dispatch steps every model of the stack (`stack: N`).

A small CNN leaves a GPU mostly idle: each training step is a few milliseconds of work behind a fixed cost of
dispatch. A stack puts N plain models side by side in one Keras model of N inputs and N outputs, each model
behind its own seeded RandomAffine, and sums their N losses. No weight is shared and each loss depends on one
model's weights only, so every model gets the gradient it would get alone, and AdamW (its weight decay and EMA
too) updates each weight from its own gradient: a model trains in a stack as `train_unit` would train it alone,
from the same seed, initial weights, batches and augmentation (one `UnitJob` each, as a unit alone) (tests/test_stacked.py checks the weights).

One difference: the models of a stack take the same number of steps per epoch, the smallest member's (fold
models differ by a row or so; a member whose epoch is a batch longer leaves one more batch out, a different one
each epoch). Early stopping and TensorBoard logs are per unit and are refused with a stack (common/ground/config.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import keras
import numpy as np

from common.ground.config import Config
from common.ground.spec import IMAGE_SHAPE
from common.runs.units import UnitOutput
from common.training.backend import Hardware
from common.training.batches import TrainBatches
from common.training.signals import StopAtBatchEnd
from common.training.train import (
    EpochTimer,
    TrainedModel,
    UnitJob,
    build_before_fit,
    compile_for_training,
    fit_callbacks,
    fresh_model,
    predicted_unit,
    train_unit,
    training_wrapper,
)


def train_units(
    jobs: Sequence[UnitJob], hardware: Hardware, progress: keras.callbacks.Callback | None = None
) -> list[tuple[keras.Model, UnitOutput]]:
    """Each job's plain model and outputs: one unit alone (`train_unit`), several (of one config) in one stack."""
    if len(jobs) == 1:
        return [train_unit(jobs[0], hardware, progress)]
    return train_stacked(jobs, hardware, progress)


def input_name(index: int) -> str:
    return f"image_{index}"


def output_name(index: int) -> str:
    return f"unit_{index}"


class StackedBatches(keras.utils.PyDataset):
    """Each member's own batch (its rows, its order, its distortions), as ({image_k: x_k}, {unit_k: y_k})."""

    def __init__(self, members: Sequence[TrainBatches]) -> None:
        first = members[0]
        super().__init__(workers=first.workers, use_multiprocessing=first.use_multiprocessing, max_queue_size=16)
        self.members = list(members)

    def __len__(self) -> int:
        return min(len(member) for member in self.members)  # every model of the stack steps together

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        return self.named([member[index] for member in self.members])

    def sample(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        return self.named([member.sample() for member in self.members])

    @staticmethod
    def named(batches: list[tuple[np.ndarray, np.ndarray]]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        images = {input_name(k): x for k, (x, _) in enumerate(batches)}
        return images, {output_name(k): y for k, (_, y) in enumerate(batches)}

    def on_epoch_end(self) -> None:
        for member in self.members:
            member.on_epoch_end()


def stacked_trainer(
    models: Sequence[keras.Model], cfg: Config, seeds: Sequence[int], hardware: Hardware
) -> keras.Model:
    """N inputs -> each model's own training wrapper (seeded RandomAffine, then the model) -> N outputs."""
    inputs, outputs = [], []
    for k, (model, seed) in enumerate(zip(models, seeds, strict=True)):
        image = keras.Input(IMAGE_SHAPE, dtype="uint8", name=input_name(k))
        inputs.append(image)
        outputs.append(training_wrapper(model, cfg, seed, hardware, name=output_name(k))(image))
    return keras.Model(inputs, outputs, name=f"stack_of_{len(models)}")


def member_metrics(history: dict[str, list], index: int) -> dict[str, list]:
    """One member's columns of the stack's history, under the names a unit trained alone has (loss, accuracy)."""
    prefix = f"{output_name(index)}_"
    return {name.removeprefix(prefix): values for name, values in history.items() if name.startswith(prefix)}


def train_stacked(
    jobs: Sequence[UnitJob], hardware: Hardware, progress: keras.callbacks.Callback | None = None
) -> list[tuple[keras.Model, UnitOutput]]:
    """Fits the jobs' models (one config, one set of images to predict) in one program; returns each plain model
    and its unit's outputs, as train_unit does for one. Each unit's seconds are its share of the stack's (the
    stack's time over its size), so a run's units still add up to its training time."""
    start = time.perf_counter()
    cfg = jobs[0].cfg
    batches = StackedBatches([TrainBatches(*job.train, cfg, job.seed) for job in jobs])
    models = [fresh_model(cfg, job.init, job.seed) for job in jobs]
    trainer = stacked_trainer(models, cfg, [job.seed for job in jobs], hardware)
    outputs = [output_name(k) for k in range(len(jobs))]
    compile_for_training(trainer, cfg, len(batches), hardware, outputs)
    build_before_fit(trainer, batches)
    timer = EpochTimer()
    callbacks = [*fit_callbacks(cfg, progress, timer), StopAtBatchEnd()]  # the config refuses the per-unit ones
    fitted = trainer.fit(batches, epochs=cfg.epochs, shuffle=False, callbacks=callbacks, verbose=0)
    share = [seconds / len(jobs) for seconds in timer.epochs]
    trained_at = time.perf_counter()
    results = []
    for k, (model, job) in enumerate(zip(models, jobs, strict=True)):
        images = len(batches) * batches.members[k].batch_size
        trained = TrainedModel(model, member_metrics(fitted.history, k), share, images)
        unit_start = time.perf_counter() - (trained_at - start) / len(jobs)  # its share of the training
        results.append((model, predicted_unit(trained, cfg, job.valid, job.predict, unit_start)))
    return results
