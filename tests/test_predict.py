"""common/commands/predict.py: your own photo of a digit in MNIST's format, and predicting it with a run's ensemble."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from common.commands.predict import NOISE_FRACTION, format_predictions, load_digit_image, predict_images
from common.execution.pipeline import RunOptions, run_competition
from common.ground.config_files import load_config
from common.ground.errors import UserError
from common.ground.spec import get_spec
from common.runs import find_run
from common.training.inference import predict_with_models
from tests.conftest import real_rows

pytestmark = pytest.mark.usefixtures("figures_left_out")  # no report is tested here

ROOT = Path(__file__).resolve().parents[1]
PAPER, INK = 235, 20


def draw_seven(size: tuple[int, int] = (300, 200)) -> Image.Image:
    """A thick dark '7' on light paper, drawn in the middle of a large landscape image."""
    w, h = size
    image = Image.new("L", size, PAPER)
    s = w / 300
    ImageDraw.Draw(image).line([(110 * s, 40 * s), (190 * s, 40 * s), (140 * s, 170 * s)], fill=INK, width=int(14 * s))
    return image


def saved(image: Image.Image, path) -> str:
    image.save(path)
    return str(path)


def ink_box(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(top, left) and (bottom, right) of the pixels that are not black."""
    found = np.argwhere(array[..., 0] > 0)
    return found.min(axis=0), found.max(axis=0)


# ---------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------


def test_dark_digit_on_light_paper_becomes_mnist_format(tmp_path):
    array = load_digit_image(saved(draw_seven(), tmp_path / "seven.png"))
    assert array.shape == (28, 28, 1) and array.dtype == np.uint8
    assert array.max() == 255  # ink is bright ...
    assert np.mean(array == 0) > 0.6 and array[0].max() == array[-1].max() == 0  # ... on black
    (top, left), (bottom, right) = ink_box(array)
    assert max(bottom - top, right - left) + 1 == 20  # the longer side fills the 20x20 box
    assert top >= 1 and left >= 1 and bottom <= 26 and right <= 26  # nothing cut off at the field's edge
    assert right - left < bottom - top  # the 7 keeps its tall aspect ratio
    assert np.allclose(ndimage.center_of_mass(array[..., 0].astype(float)), (14, 14), atol=0.75)


def test_an_already_inverted_image_is_not_inverted_twice(tmp_path):
    dark_on_light = load_digit_image(saved(draw_seven(), tmp_path / "seven.png"))
    light_on_dark = load_digit_image(saved(Image.eval(draw_seven(), lambda v: 255 - v), tmp_path / "inverted.png"))
    assert np.array_equal(dark_on_light, light_on_dark)


def test_an_unevenly_lit_noisy_colour_photo_gives_nearly_the_clean_digit(tmp_path):
    clean = load_digit_image(saved(draw_seven(), tmp_path / "seven.png"))
    ink = np.asarray(draw_seven((1200, 800)), float) < 128
    rows, cols = np.mgrid[0:800, 0:1200]
    paper = 240 - 140 * (((rows - 400) / 800) ** 2 + ((cols - 600) / 1200) ** 2)  # corners 70 levels darker
    noisy = np.where(ink, 90.0, paper) + np.random.default_rng(0).normal(0, 8, ink.shape)
    photo = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).convert("RGB")
    array = load_digit_image(saved(photo, tmp_path / "photo.jpg"))
    assert np.corrcoef(array.ravel(), clean.ravel())[0, 1] > 0.8
    assert np.allclose(ndimage.center_of_mass(array[..., 0].astype(float)), (14, 14), atol=0.75)


def test_transparent_background_counts_as_paper(tmp_path):
    clean = load_digit_image(saved(draw_seven(), tmp_path / "seven.png"))
    rgba = Image.new("RGBA", (300, 200), (0, 0, 0, 0))  # transparent black: must not read as black paper
    rgba.putalpha(Image.eval(draw_seven(), lambda v: 255 if v < 128 else 0))
    array = load_digit_image(saved(rgba, tmp_path / "transparent.png"))
    assert np.corrcoef(array.ravel(), clean.ravel())[0, 1] > 0.95


def correlation_within_a_pixel(a: np.ndarray, b: np.ndarray) -> float:
    """The best correlation of a with b moved by at most one pixel (re-centring may round the other way)."""
    moves = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return max(np.corrcoef(np.roll(a, move, axis=(0, 1)).ravel(), b.ravel())[0, 1] for move in moves)


def test_mnist_rows_saved_as_png_round_trip(tmp_path):
    frame = real_rows("digit-recognizer.zip", "test.csv", 60)
    images = frame.to_numpy().reshape(-1, 28, 28).astype(np.uint8)
    scores = []
    for i, image in enumerate(images):
        ink = image >= NOISE_FRACTION * 255  # what the preprocessing keeps as ink
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        if max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 != 20:
            continue  # a digit not 20 pixels long is rescaled, as it should be: not a round trip
        array = load_digit_image(saved(Image.fromarray(image), tmp_path / f"row{i}.png"))[..., 0]
        scores.append(correlation_within_a_pixel(array, image))
    # A few keep a stray speck in MNIST's box that the preprocessing removes (and rescales without it).
    assert len(scores) >= 50 and np.mean(np.array(scores) > 0.98) >= 0.9


@pytest.mark.parametrize(
    "content, message",
    [
        (b"label,pixel0\n1,0\n", "not a readable image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "not a readable image"),  # a truncated PNG
    ],
)
def test_a_non_image_file_is_a_one_line_user_error(tmp_path, content, message):
    path = tmp_path / "digit.png"
    path.write_bytes(content)
    with pytest.raises(UserError, match=f"{path}: {message}") as caught:
        load_digit_image(path)
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="nowhere.png: file not found"):
        load_digit_image(tmp_path / "nowhere.png")


@pytest.mark.parametrize("colour", [255, 0, 128])
def test_an_image_without_ink_is_a_user_error(tmp_path, colour):
    path = saved(Image.new("L", (300, 200), colour), tmp_path / "blank.png")
    with pytest.raises(UserError, match="blank.png: no digit found"):
        load_digit_image(path)


# ---------------------------------------------------------------------------
# Predicting with a finished run's ensemble
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(digits_dir, tmp_path_factory):
    """A finished 2-fold, 1-epoch digits run on 300 rows: a real run folder with two saved models."""
    cfg, label = load_config("digits", overrides=["max_train_rows=300", "epochs=1", "folds=2", "model=mlp"])
    out = tmp_path_factory.mktemp("runs")
    run_competition(get_spec("digits"), cfg, label, ["digits"], RunOptions(str(digits_dir), out))
    return find_run(out, "digits", None)


@pytest.mark.slow  # the module's tiny run
def test_predict_images_returns_label_and_top3(tiny_run, tmp_path):
    paths = [saved(draw_seven(), tmp_path / "seven.png"), saved(draw_seven((600, 400)), tmp_path / "big.png")]
    results = predict_images(tiny_run, paths)
    assert [r["path"] for r in results] == paths
    expected = predict_with_models(tiny_run.model_files(), np.stack([load_digit_image(p) for p in paths]))
    for result, probabilities in zip(results, expected, strict=True):
        labels = [label for label, _ in result["top3"]]
        assert result["label"] == labels[0] == int(probabilities.argmax())
        assert labels == np.argsort(probabilities)[::-1][:3].tolist() and len(set(labels)) == 3
        assert [p for _, p in result["top3"]] == pytest.approx(probabilities[labels], abs=1e-6)
        assert all(0 <= label <= 9 for label in labels)


@pytest.mark.slow  # the module's tiny run
def test_predict_checks_every_file_before_predicting(tiny_run, tmp_path):
    good, bad = saved(draw_seven(), tmp_path / "seven.png"), tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(UserError, match="notes.png: not a readable image"):
        predict_images(tiny_run, [good, bad])


@pytest.mark.slow  # the module's tiny run
def test_predictions_print_as_lines_or_json(tiny_run, tmp_path):
    results = predict_images(tiny_run, [saved(draw_seven(), tmp_path / "seven.png")])
    line = format_predictions(results)
    label, top = results[0]["label"], results[0]["top3"]
    assert line.startswith(f"{tmp_path / 'seven.png'}: {label}  (top 3: {top[0][0]} {top[0][1]:.3f}, ")
    assert line.count("\n") == 0 and line.endswith(")")
    parsed = [json.loads(text) for text in format_predictions(results + results, as_json=True).splitlines()]
    assert parsed == [results[0], results[0]] and set(parsed[0]) == {"path", "label", "top3"}


@pytest.mark.slow  # the module's tiny run
def test_predict_from_the_command_line_prints_no_tensorflow_noise(tiny_run, tmp_path):
    """TensorFlow's start-up lines and, on a machine without a GPU, its failed CUDA probe (cuInit ... 303) stay
    off the terminal: the line saying which run predicts, then one line per image, is all there is."""
    image = saved(draw_seven(), tmp_path / "seven.png")
    root = tiny_run.folder.parent.parent
    command = [sys.executable, str(ROOT / "run.py"), "predict", "digits", tiny_run.run_id, image, "--out", str(root)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    chosen, predicted = done.stdout.splitlines()
    assert chosen == f"run {tiny_run.run_id}: as named" and predicted.startswith(f"{image}: ")
    for noise in ("cuInit", "absl", "cuda", "retracing"):
        assert noise not in done.stderr, done.stderr[-3000:]
