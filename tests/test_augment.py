"""common/training/augment.py: the in-graph affine transform agrees with albumentations' A.Affine; draws and seeds."""

from __future__ import annotations

import albumentations as A
import cv2
import keras
import numpy as np
import pytest
from keras import ops
from sklearn.datasets import load_digits

from common.ground.config import Config
from common.training import augment
from common.training.augment import PARAMETERS, AffineRanges, RandomAffine, draw_parameters, tta_views, warp


def digit_images(n: int = 48) -> np.ndarray:
    """Real handwriting shapes: scikit-learn's 8x8 digits, upscaled to 28x28 uint8 with a blank margin."""
    small = load_digits().images[:n] / 16.0 * 255
    images = np.zeros((n, 28, 28, 1), np.uint8)
    for i, image in enumerate(small):
        images[i, 4:24, 4:24, 0] = cv2.resize(image, (20, 20), interpolation=cv2.INTER_LINEAR).clip(0, 255)
    return images


IMAGES = digit_images()
IDENTITY = dict(rotate=0.0, scale_x=1.0, scale_y=1.0, shear_x=0.0, shear_y=0.0, shift_x=0.0, shift_y=0.0)

# (A.Affine arguments with every range degenerate, the same transform as our parameters)
CASES = [
    ({"rotate": (15, 15)}, {"rotate": 15}),
    ({"rotate": (-20, -20)}, {"rotate": -20}),
    ({"scale": {"x": (1.2, 1.2), "y": (1, 1)}}, {"scale_x": 1.2}),
    ({"scale": {"x": (1, 1), "y": (0.8, 0.8)}}, {"scale_y": 0.8}),
    ({"shear": {"x": (10, 10), "y": (0, 0)}}, {"shear_x": 10}),
    ({"shear": {"x": (0, 0), "y": (-12, -12)}}, {"shear_y": -12}),
    ({"translate_percent": {"x": (0.1, 0.1), "y": (0, 0)}}, {"shift_x": 2}),  # int(0.1 * 28) = 2 pixels
    ({"translate_percent": {"x": (0, 0), "y": (-0.15, -0.15)}}, {"shift_y": -4}),  # int(-4.2) = -4
    (
        {
            "rotate": (12, 12),
            "scale": {"x": (1.1, 1.1), "y": (0.9, 0.9)},
            "shear": {"x": (5, 5), "y": (-7, -7)},
            "translate_percent": {"x": (0.1, 0.1), "y": (-0.1, -0.1)},
        },
        {"rotate": 12, "scale_x": 1.1, "scale_y": 0.9, "shear_x": 5, "shear_y": -7, "shift_x": 2, "shift_y": -2},
    ),
]


def albumentations_affine(images: np.ndarray, **arguments) -> np.ndarray:
    arguments.setdefault("rotate", 0.0)
    affine = A.Affine(interpolation=cv2.INTER_LINEAR, border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0, **arguments)
    return np.stack([affine(image=image)["image"] for image in images]).reshape(images.shape)


def our_affine(images: np.ndarray, kernel: str = "native", **values) -> np.ndarray:
    row = [(IDENTITY | values)[name] for name in PARAMETERS]
    parameters = np.tile(np.array([row], np.float32), (len(images), 1))
    return ops.convert_to_numpy(warp(ops.convert_to_tensor(images), ops.convert_to_tensor(parameters), kernel))


@pytest.mark.parametrize("kernel", ["native", "gathers"])
@pytest.mark.parametrize(("reference", "ours"), CASES, ids=[str(c[1]) for c in CASES])
def test_the_warp_agrees_with_albumentations_affine(reference, ours, kernel):
    # OpenCV rounds sampling positions to 1/32 pixel: small differences on edges are expected.
    difference = np.abs(our_affine(IMAGES, kernel, **ours).astype(int) - albumentations_affine(IMAGES, **reference))
    assert difference.mean() <= 0.5 and np.percentile(difference, 99) <= 4
    assert not np.array_equal(our_affine(IMAGES, kernel, **ours), IMAGES)  # the case really transforms


@pytest.mark.parametrize("kernel", ["native", "gathers"])
def test_identity_parameters_leave_images_exactly_alone(kernel):
    assert np.array_equal(our_affine(IMAGES, kernel), IMAGES)


def test_the_two_kernels_sample_alike():
    values = {"rotate": 12, "scale_x": 1.1, "scale_y": 0.9, "shear_x": 5, "shear_y": -7, "shift_x": 2, "shift_y": -2}
    difference = np.abs(our_affine(IMAGES, "native", **values).astype(int) - our_affine(IMAGES, "gathers", **values))
    assert difference.max() <= 1  # float rounding on the way to uint8


def drawn(ranges: AffineRanges, n: int = 4000, seed: int = 0) -> np.ndarray:
    return ops.convert_to_numpy(draw_parameters(ranges, n, 28, keras.random.SeedGenerator(seed)))


def test_parameters_are_drawn_from_the_ranges_albumentations_would_use():
    values = dict(zip(PARAMETERS, drawn(AffineRanges(10, 0.1, 0.15, 8, 1.0)).T, strict=True))
    assert np.abs(values["rotate"]).max() <= 10 and np.abs(values["rotate"]).max() > 9.5
    for axis in "xy":
        assert np.abs(values[f"scale_{axis}"] - 1).max() <= 0.1 and np.abs(values[f"shear_{axis}"]).max() <= 8
        shift = values[f"shift_{axis}"]
        assert np.array_equal(shift, np.trunc(shift)) and set(np.unique(shift)) == set(range(-4, 5))
    assert abs(np.corrcoef(values["scale_x"], values["scale_y"])[0, 1]) < 0.1  # drawn apart, as keep_ratio=False


def test_probability_leaves_that_share_of_images_untransformed():
    parameters = drawn(AffineRanges(10, 0.1, 0.1, 0, 0.5))
    untouched = np.all(parameters == [IDENTITY[name] for name in PARAMETERS], axis=1)
    assert 0.45 < untouched.mean() < 0.55
    assert np.all(drawn(AffineRanges(10, 0.1, 0.1, 0, 0.0)) == [IDENTITY[name] for name in PARAMETERS])


def test_random_affine_transforms_in_training_only_and_repeats_from_its_seed():
    ranges = AffineRanges.from_config(Config(rotate=20.0, shift=0.1))
    x = ops.convert_to_tensor(IMAGES[:16])
    a, b, c = (ops.convert_to_numpy(RandomAffine(ranges, seed=s)(x, training=True)) for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert sum(np.array_equal(a[i], IMAGES[i]) for i in range(16)) == 0
    assert np.array_equal(ops.convert_to_numpy(RandomAffine(ranges, seed=1)(x, training=False)), IMAGES[:16])


def test_tta_views_are_the_image_then_one_pixel_shifts():
    views = tta_views(IMAGES[:2], 2)
    assert len(views) == 3 and np.array_equal(views[0], IMAGES[:2])
    assert np.array_equal(views[1][:, :, 1:], IMAGES[:2, :, :-1]) and np.all(views[1][:, :, 0] == 0)


def test_the_kaggle_notebook_makes_the_same_test_time_views():
    """The notebook that `kernel` writes carries its own copy of the shifts (it cannot import this project):
    the copy's order and its shift function must give exactly the views that training predicted with."""
    import ast

    from common.runs import notebook as kernel

    tree = ast.parse(kernel.TEMPLATE.read_text())
    wanted = [n for n in tree.body if isinstance(n, ast.Assign | ast.FunctionDef)]
    shifts = next(n for n in wanted if isinstance(n, ast.Assign) and n.targets[0].id == "TTA_SHIFTS")
    function = next(n for n in wanted if isinstance(n, ast.FunctionDef) and n.name == "shifted")
    namespace = {"np": np}
    exec(compile(ast.Module([function], []), str(kernel.TEMPLATE), "exec"), namespace)
    assert ast.literal_eval(shifts.value) == augment.TTA_SHIFTS
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    notebook = [images, *(namespace["shifted"](images, dy, dx) for dy, dx in augment.TTA_SHIFTS)]
    for ours, theirs in zip(augment.tta_views(images, len(augment.TTA_SHIFTS)), notebook, strict=True):
        np.testing.assert_array_equal(ours, theirs)
