"""Predicting your own image: a photo or scan of one digit, turned into the competitions' 28x28 format.

MNIST was made this way (LeCun et al.): the digit, bright ink on black, is cropped to its bounding box,
scaled keeping its aspect ratio into a 20x20 box (anti-aliased, hence grey edges), and placed in a 28x28
field so that its centre of mass sits at the centre. Kannada-MNIST's images were made to match.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from common.ground.errors import UserError
from common.runs import Run

BOX = 20  # the digit's longer side, in pixels
FIELD = 28  # the image's side
CENTRE = 14.0  # where MNIST's centres of mass sit (row, column): 13.99 and 14.00 on average over train.csv
MAX_SIDE = 1024  # photos are shrunk to this first: enough for a 20-pixel digit, and fast
NOISE_FRACTION = 0.2  # ink fainter than this share of the strongest ink is background noise
MIN_PART = 0.05  # a connected part of the ink smaller than this share of the largest part is a speck
MIN_CONTRAST = 40  # grey levels between paper and ink below which an image holds no digit


# ---------------------------------------------------------------------------
# Reading: any size, any mode -> a grayscale float array
# ---------------------------------------------------------------------------


def read_grayscale(path: Path) -> np.ndarray:
    """The image as float grayscale 0-255; transparent parts become white paper; EXIF rotation applied."""
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)  # phone photos are often stored sideways
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit or float scans
                values = np.asarray(image, np.float64)
                return values * (255.0 / max(values.max(), 1.0))
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
            return np.asarray(image.convert("L"), np.float64)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise UserError(f"{path}: not a readable image ({type(error).__name__})") from None


# ---------------------------------------------------------------------------
# Ink: bright on black, background removed
# ---------------------------------------------------------------------------


def ink_is_dark(gray: np.ndarray) -> bool:
    """True for dark ink on light paper: around the centre, where the digit is, the pixels that stray
    furthest from the paper's brightness stray downwards.

    The paper's brightness is the whole image's median (a digit covers well under half of it). Comparing the
    centre's extremes with it, rather than a mean with a mean, keeps the answer right for a thin digit on a lot
    of paper, for an image that is already light on dark (MNIST's own), and for photos with darker corners.
    """
    h, w = gray.shape
    paper = np.median(gray)
    centre = gray[h // 4 : h - h // 4, w // 4 : w - w // 4] if min(h, w) >= 4 else gray
    return paper - np.percentile(centre, 1) > np.percentile(centre, 99) - paper


def without_paper(ink: np.ndarray) -> np.ndarray:
    """Bright ink minus the paper under it (0 where there is no ink).

    A photo's paper is unevenly lit, so its level is estimated locally: a grey opening wider than any stroke
    (a fifth of the image) keeps the slowly changing light and drops the ink. A small image (a scan or an
    MNIST-like crop) is taken as evenly lit: its median is the paper.
    """
    if min(ink.shape) <= 4 * FIELD:
        return np.clip(ink - np.median(ink), 0, None)
    ink = ndimage.median_filter(ink, size=3)  # drops isolated specks of dust and sensor noise
    return np.clip(ink - ndimage.grey_opening(ink, size=min(ink.shape) // 5), 0, None)


def bright_ink(gray: np.ndarray, where: Path) -> np.ndarray:
    """Ink bright on black, 0-255: inverted if needed, paper subtracted, faint noise set to zero."""
    ink = without_paper(255.0 - gray if ink_is_dark(gray) else gray)
    if ink.max() < MIN_CONTRAST:
        raise UserError(f"{where}: no digit found (the image is blank or has too little contrast)")
    ink[~digit_parts(ink >= NOISE_FRACTION * ink.max())] = 0
    return ink * (255.0 / ink.max())


def digit_parts(mask: np.ndarray) -> np.ndarray:
    """The mask without specks: connected parts under MIN_PART of the largest part's area are noise.

    A digit may come in several parts (a 5's detached bar, a broken pencil stroke) but each is a sizeable
    share of the whole; specks of dust, paper grain or JPEG ringing are not.
    """
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count <= 1:
        return mask
    areas = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(areas >= MIN_PART * areas.max()) + 1
    return np.isin(labels, keep)


# ---------------------------------------------------------------------------
# Geometry: crop, scale into 20x20, centre of mass at the centre of 28x28
# ---------------------------------------------------------------------------


def cropped(ink: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def scaled_into_box(digit: np.ndarray) -> np.ndarray:
    """The digit resized, aspect ratio kept, so that its longer side is BOX pixels.

    Pillow's bilinear filter widens with the reduction, so shrinking is anti-aliased (MNIST's grey edges),
    and unlike Lanczos it leaves no faint ringing halo around the strokes.
    """
    h, w = digit.shape
    factor = BOX / max(h, w)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    resized = Image.fromarray(digit.astype(np.float32)).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(resized, np.float64)


def centred(digit: np.ndarray) -> np.ndarray:
    """The digit in a FIELD x FIELD image, moved by whole pixels so its centre of mass is nearest CENTRE.

    Whole-pixel moves add no blur; the digit is never pushed out of the field.
    """
    h, w = digit.shape
    com_row, com_col = ndimage.center_of_mass(digit)
    top = int(np.clip(round(CENTRE - com_row), 0, FIELD - h))
    left = int(np.clip(round(CENTRE - com_col), 0, FIELD - w))
    field = np.zeros((FIELD, FIELD), np.float64)
    field[top : top + h, left : left + w] = digit
    return field


def load_digit_image(path: str | Path) -> np.ndarray:
    """A photo or scan of one digit (dark on light, or already light on dark) as uint8 (28, 28, 1)."""
    path = Path(path)
    ink = bright_ink(read_grayscale(path), path)
    digit = scaled_into_box(cropped(ink))
    image = centred(digit * (255.0 / max(digit.max(), 1e-9)))  # the strongest stroke is full white, as in MNIST
    return np.rint(image).astype(np.uint8)[..., None]


# ---------------------------------------------------------------------------
# Predicting with a run's own ensemble
# ---------------------------------------------------------------------------


def predict_images(run: Run, paths: list[str | Path]) -> list[dict]:
    """Per image: its path, the ensemble's label and the three most probable labels with probabilities."""
    from common.training.inference import predict_ensemble

    images = np.stack([load_digit_image(path) for path in paths])  # every file checked before TensorFlow loads
    probabilities = predict_ensemble(run, images)
    results = []
    for path, row in zip(paths, probabilities, strict=True):
        best = np.argsort(row)[::-1][:3]
        top_k = [[int(label), round(float(row[label]), 6)] for label in best]
        results.append({"path": str(path), "label": top_k[0][0], "top3": top_k})
    return results


def format_predictions(results: list[dict], as_json: bool = False) -> str:
    """One line per image: 'path: label  (label p, ...)', or one JSON object per line."""
    if as_json:
        return "\n".join(json.dumps(result) for result in results)
    lines = []
    for result in results:
        top = ", ".join(f"{label} {probability:.3f}" for label, probability in result["top3"])
        lines.append(f"{result['path']}: {result['label']}  (top 3: {top})")
    return "\n".join(lines)
