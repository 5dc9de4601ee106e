"""Shared fixtures: tiny generated data by default; real rows from ../shared/kaggle when present."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common.ground.spec import PIXEL_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

KAGGLE_DIR = ROOT.parent / "shared" / "kaggle"


# Session-scoped, so that module- and session-scoped fixtures (which train runs once for many tests) see them too:
# a session fixture is set up before any fixture of a narrower scope.


@pytest.fixture(autouse=True, scope="session")
def isolated_cache(tmp_path_factory) -> Iterator[None]:
    """Parsed-array caches go to a temporary folder, never the project's .cache/; the user's KAGGLE_DATA_DIR is
    not seen."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIGIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.delenv("KAGGLE_DATA_DIR", raising=False)
        yield


@pytest.fixture(autouse=True, scope="session")
def float32_without_a_probe(tmp_path_factory) -> Iterator[None]:
    """The suite trains in float32 on every CPU: `mixed_precision: auto` finds this machine's probe answered
    (bfloat16 not faster) in the cache it reads, so no test's figures hang on a timing. tests/test_precision.py
    tests the probe itself."""
    from common.training.precision import PrecisionProbe, remember_probe

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        for backend in ("tensorflow", "jax"):
            remember_probe(backend, PrecisionProbe("off", 0.0, 0.0))
        yield


@pytest.fixture(autouse=True, scope="session")
def no_kaggle_credentials(tmp_path_factory) -> Iterator[None]:
    """Nothing in the suite may reach Kaggle, even on a machine that holds credentials: tests that need a token
    set a fake one and cut the network at the HTTP boundary themselves."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path_factory.mktemp("no-kaggle-credentials")))
        for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
            patch.delenv(name, raising=False)
        yield


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> Path:
    """The offline sklearn-digits competition, written once per test session."""
    from common.data.synthetic import write_sklearn_digits_competition

    folder = tmp_path_factory.mktemp("digits")
    write_sklearn_digits_competition(folder)
    return folder


def pixel_frame(n: int, seed: int = 0, first: tuple[str, np.ndarray] | None = None) -> pd.DataFrame:
    """n random images as a Kaggle-style frame, optionally with a first column (label or id)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (n, 784))
    frame = pd.DataFrame(pixels, columns=list(PIXEL_COLUMNS))
    if first is not None:
        frame.insert(0, first[0], first[1])
    return frame


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def real_rows(zip_name: str, member: str, n: int) -> pd.DataFrame:
    """The first n rows of a real competition file; skips the test when the data is not there."""
    path = KAGGLE_DIR / zip_name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    with zipfile.ZipFile(path) as archive, archive.open(member) as handle:
        return pd.read_csv(io.TextIOWrapper(handle, newline=""), nrows=n)


@pytest.fixture(scope="module")
def figures_left_out():
    """The runs of a module that tests no report write none (its figures take a second or two a run); the reports
    themselves are tested in test_report, test_pipeline, test_blend and test_full_data."""
    from common.execution import pipeline

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "write_report", lambda *args: "left out")
        yield
