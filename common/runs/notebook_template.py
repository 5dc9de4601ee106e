"""Predicts a Kaggle digit competition's test.csv with a saved ensemble of Keras models.

Written by `python run.py kernel COMPETITION RUN` and pushed with `kaggle kernels push` (or all the way to a
submission by `python run.py submit COMPETITION RUN`). It runs on Kaggle with internet off, using only Kaggle's
own numpy, pandas and Keras, imports nothing from the project, and prints the Keras and backend versions it
runs under beside those the models were saved with.

    python predict.py [INPUT_ROOT [OUTPUT_DIR]]     # INPUT_ROOT (or $KERNEL_INPUT_ROOT) defaults to /kaggle/input

It finds its dataset (ensemble.json beside the models) under INPUT_ROOT, or in dataset/ beside this file
when absent; it finds the competition's test file under INPUT_ROOT/<slug>/ or anywhere under INPUT_ROOT.
It writes submission.csv into OUTPUT_DIR: by default /kaggle/working on Kaggle (where Kaggle takes it from),
elsewhere the folder this script is in (the kernel folder), never the directory it is started from.

With a transductive round in ensemble.json (`kernel --transductive`), it then fine-tunes every model on the test
images the ensemble is sure of, labelled with its answers, mixed with rows of the competition's train.csv, and
predicts again: the hidden test set's writers are not train.csv's. With AdaBN (`kernel --adabn`), every model's
BatchNorm statistics are first re-estimated on the test images themselves (no labels) before it predicts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

# TensorFlow's and XLA's C++ logs after start-up (`failed call to cuInit` where there is no GPU): fatal ones only.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

RUN_ID = ""  # set by write_kernel: picks this run's dataset when several are attached
FACTS_FILE = "ensemble.json"
N_PIXELS = 784


# ---------------------------------------------------------------------------
# Finding the inputs
# ---------------------------------------------------------------------------


def input_root() -> Path:
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    return Path(os.environ.get("KERNEL_INPUT_ROOT", "/kaggle/input"))


def output_dir() -> Path:
    if len(sys.argv) > 2:
        return Path(sys.argv[2])
    kaggle = Path("/kaggle/working")
    return kaggle if kaggle.is_dir() else script_dir()


def script_dir() -> Path:
    # Kaggle may run the script without __file__ (pasted into a notebook cell): use the working directory.
    file = globals().get("__file__")
    return Path(file).resolve().parent if file else Path.cwd()


def files_named(root: Path, name: str) -> list[Path]:
    # os.walk with followlinks: Kaggle may mount inputs as symbolic links, which rglob does not enter.
    found = [Path(folder) / name for folder, _, files in os.walk(root, followlinks=True) if name in files]
    return sorted(found)


def find_dataset(root: Path) -> Path:
    """The folder holding ensemble.json: this run's under `root` first, then dataset/ beside the script."""
    found = [p.parent for p in files_named(root, FACTS_FILE)]
    found = [d for d in found if not RUN_ID or read_facts(d).get("run_id") == RUN_ID]
    if not found and (script_dir() / "dataset" / FACTS_FILE).is_file():
        found = [script_dir() / "dataset"]
    if not found:
        raise SystemExit(f"no {FACTS_FILE} of run {RUN_ID or '(any)'} under {root} or {script_dir() / 'dataset'}")
    return found[0]


def read_facts(folder: Path) -> dict:
    return json.loads((folder / FACTS_FILE).read_text())


def find_competition_file(root: Path, facts: dict, name: str) -> Path:
    """<root>/<slug>/<name> as Kaggle mounts a competition's files, else the first one anywhere under root."""
    expected = root / facts["slug"] / name
    if expected.is_file():
        return expected
    found = files_named(root, name)
    if not found:
        raise SystemExit(f"no {name} under {root}: attach the competition's data to the notebook")
    return found[0]


# ---------------------------------------------------------------------------
# Reading, predicting, writing
# ---------------------------------------------------------------------------


def read_test(path: Path, facts: dict) -> tuple[np.ndarray, np.ndarray]:
    """(ids, uint8 images (n, 28, 28, 1)); ids from the id column, or first_id + row when there is none."""
    frame = pd.read_csv(path)
    id_column = facts["test_id_column"]
    pixels = [f"pixel{i}" for i in range(N_PIXELS)]
    missing = [c for c in [id_column, *pixels] if c and c not in frame.columns]
    if missing:
        raise SystemExit(f"{path}: no column {missing[0]!r} (expected {id_column or 'no id'}, pixel0..pixel783)")
    ids = frame[id_column].to_numpy() if id_column else facts["first_id"] + np.arange(len(frame))
    images = frame[pixels].to_numpy().clip(0, 255).astype(np.uint8).reshape(-1, 28, 28, 1)
    return ids, images


# The run's test-time views: the image, then one-pixel shifts in this order (common/ground/config.py's TTA_SHIFTS).
TTA_SHIFTS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))


def shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    moved = np.zeros_like(images)
    rows_to, rows_from = slice(max(dy, 0), 28 + min(dy, 0)), slice(max(-dy, 0), 28 + min(-dy, 0))
    cols_to, cols_from = slice(max(dx, 0), 28 + min(dx, 0)), slice(max(-dx, 0), 28 + min(-dx, 0))
    moved[:, rows_to, cols_to] = images[:, rows_from, cols_from]
    return moved


@contextmanager
def quiet_stderr():
    """File descriptor 2 to /dev/null while TensorFlow loads: its C++ start-up lines (oneDNN, CUDA libraries) come
    before its logging reads TF_CPP_MIN_LOG_LEVEL. An import error still raises, and shows, once it is back."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def keras_module():
    with quiet_stderr():
        try:
            import keras
        except ImportError:  # older images ship Keras only inside TensorFlow
            from tensorflow import keras
        if importlib.util.find_spec("tensorflow") is not None:  # Keras loads it on any backend: here, quietly
            import tensorflow  # noqa: F401
    return keras


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def versions(keras, facts: dict) -> str:
    """The Keras and backend versions this runs under, and those the models were saved with (the run's record)."""
    backend = keras.backend.backend()
    trained = facts.get("trained_with") or {}
    saved_on = ", ".join(f"{name} {v}" for name, v in trained.get("backends", {}).items()) or "an unrecorded backend"
    return (
        f"running on Keras {keras.__version__}, backend {backend} {package_version(backend)}; "
        f"models saved with Keras {trained.get('keras', 'unknown')}, trained on {saved_on}"
    )


def load(keras, path: Path, facts: dict):
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - most likely a Keras older than the one that saved it: say both
        saved = (facts.get("trained_with") or {}).get("keras", "unknown")
        raise SystemExit(
            f"{path}: Keras {keras.__version__} cannot load it (saved with Keras {saved}): {error}"
        ) from error


def model_shares(facts: dict) -> list[tuple[str, float, int]]:
    """(file name, weight, test-time views) of every model. A trained run's models share the ensemble equally;
    a blend's models share their own run's weight in the blend."""
    names = facts["models"]
    weights = facts.get("weights") or [1 / len(names)] * len(names)
    tta = facts.get("tta", 0)
    views = tta if isinstance(tta, list) else [tta] * len(names)
    return list(zip(names, weights, views, strict=True))


def weighted(answers: list[np.ndarray], facts: dict) -> np.ndarray:
    """The ensemble of the models' answers, each with its weight."""
    weights = [weight for _, weight, _ in model_shares(facts)]
    return sum(weight * answer for weight, answer in zip(weights, answers, strict=True))


def predict(folder: Path, facts: dict, images: np.ndarray) -> np.ndarray:
    """The weighted mean of every model's softmax (each over its run's test-time views): the run's ensemble."""
    keras = keras_module()
    print(versions(keras, facts))
    answers = []
    for name, _, tta in model_shares(facts):
        answers.append(model_probabilities(prepared_model(keras, folder / name, facts, images), images, tta))
        print(f"predicted with {name}")
    return weighted(answers, facts)


def prepared_model(keras, path: Path, facts: dict, images: np.ndarray):
    """The saved model, its BatchNorm statistics re-estimated on the test images when the notebook uses AdaBN."""
    model = load(keras, path, facts)
    if facts.get("adabn"):
        print(f"AdaBN: {len(batchnorm_adapted(keras, model, images))} BatchNorm layers re-estimated on the test images")
    return model


def batchnorm_adapted(keras, model, images: np.ndarray, batch_size: int = 1024) -> list:
    """AdaBN (Li et al., 2016): each BatchNormalization layer's moving mean and variance set to those of its
    inputs over `images`, layer after layer, so each one sees the layers before it already adapted. No labels
    are used, and nothing else changes. Returns the adapted layers (none for a model without BatchNorm)."""
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for norm in norms:
        probe = keras.Model(model.inputs, norm.input)
        total, squares, count = 0.0, 0.0, 0
        for start in range(0, len(images), batch_size):
            x = np.asarray(probe.predict(images[start : start + batch_size], verbose=0), np.float64)
            x = np.moveaxis(x, norm.axis, -1)
            x = x.reshape(-1, x.shape[-1])
            total, squares, count = total + x.sum(axis=0), squares + (x**2).sum(axis=0), count + len(x)
        mean = total / count
        norm.moving_mean.assign(mean.astype(np.float32))
        norm.moving_variance.assign(np.maximum(squares / count - mean**2, 0).astype(np.float32))
    return norms


def model_probabilities(model, images: np.ndarray, tta: int) -> np.ndarray:
    """One model's softmax, averaged over the image and `tta` shifted views, as its run predicted."""
    views = [images, *(shifted(images, dy, dx) for dy, dx in TTA_SHIFTS[:tta])]
    return sum(model.predict(view, batch_size=1024, verbose=0).astype(np.float64) for view in views) / len(views)


# ---------------------------------------------------------------------------
# The transductive round: learn the hidden test set's hands from the ensemble's own sure answers
# ---------------------------------------------------------------------------


def read_train_sample(root: Path, facts: dict, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`rows` random labelled rows of the competition's training file: they keep the models anchored to the
    labels they learnt while the round fits the test set's sure images."""
    path = find_competition_file(root, facts, facts["train_file"])
    frame = pd.read_csv(path)
    frame = frame.sample(n=min(rows, len(frame)), random_state=seed)
    images = frame[[f"pixel{i}" for i in range(N_PIXELS)]].to_numpy().clip(0, 255).astype(np.uint8)
    return images.reshape(-1, 28, 28, 1), frame[facts["label_column"]].to_numpy()


def fine_tuned(keras, model, images: np.ndarray, labels: np.ndarray, settings: dict, seed: int):
    """`model` trained further on (images, labels) under Keras' own random affine layers (training only)."""
    keras.utils.set_random_seed(seed)
    shift, turn = settings["shift"], settings["rotate"] / 360
    trainer = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.RandomRotation(turn, fill_mode="constant"),
            keras.layers.RandomTranslation(shift, shift, fill_mode="constant"),
            keras.layers.RandomZoom(settings["scale"], fill_mode="constant"),
            model,
        ]
    )
    steps = settings["epochs"] * int(np.ceil(len(images) / settings["batch_size"]))
    trainer.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(settings["lr"], steps)),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,  # the random layers are not jit-compatible
    )
    trainer.fit(images, labels, batch_size=settings["batch_size"], epochs=settings["epochs"], shuffle=True, verbose=0)
    return model


def transductive(root: Path, folder: Path, facts: dict, images: np.ndarray, first: np.ndarray) -> np.ndarray:
    """`rounds` times: take the test images the current ensemble is sure of, labelled with its answers, fine-tune
    every model on them mixed with training rows, and predict again. A model not reached within the time limit
    keeps its previous answers (the first ensemble's, before its first fine-tuning)."""
    settings = facts["transductive"]
    deadline = time.perf_counter() + settings["max_minutes"] * 60
    train_images, train_labels = read_train_sample(root, facts, settings["train_rows"], seed=0)
    keras, shares = keras_module(), model_shares(facts)
    models, answers = [None] * len(shares), [first] * len(shares)
    for round_index in range(settings["rounds"]):
        ensemble = weighted(answers, facts)
        sure = ensemble.max(axis=1) >= settings["threshold"]
        fit_images = np.concatenate([images[sure], train_images])
        fit_labels = np.concatenate([ensemble[sure].argmax(axis=1), train_labels])
        print(f"transductive round {round_index + 1}: {sure.sum()} of {len(images)} test images sure")
        for index, (name, _, tta) in enumerate(shares):
            if time.perf_counter() > deadline:
                print(f"time limit reached: {len(shares) - index} models keep their previous answers")
                return weighted(answers, facts)
            model = prepared_model(keras, folder / name, facts, images) if models[index] is None else models[index]
            models[index] = fine_tuned(keras, model, fit_images, fit_labels, settings, seed=index + 100 * round_index)
            answers[index] = model_probabilities(models[index], images, tta)
            print(f"fine-tuned and predicted with {name}")
    return weighted(answers, facts)


def write_submission(ids: np.ndarray, labels: np.ndarray, facts: dict, path: Path) -> None:
    id_column, label_column = facts["submission_columns"]
    pd.DataFrame({id_column: ids, label_column: labels}).to_csv(path, index=False)


def main() -> None:
    root = input_root()
    folder = find_dataset(root)
    facts = read_facts(folder)
    test_file = find_competition_file(root, facts, facts["test_file"])
    ids, images = read_test(test_file, facts)
    print(f"run {facts['run_id']}: {len(facts['models'])} models from {folder}; {len(ids)} rows from {test_file}")
    probabilities = predict(folder, facts, images)
    if facts.get("transductive"):
        probabilities = transductive(root, folder, facts, images, probabilities)
    labels = probabilities.argmax(axis=1)
    path = output_dir() / "submission.csv"
    write_submission(ids, labels, facts, path)
    print(f"wrote {path.resolve()}: {len(ids)} rows")


if __name__ == "__main__":
    main()
