"""Reading the competition files (found by common/data/sources.py) fast, validating them against the spec, caching
arrays.

Arrays stay uint8 images of shape (n, 28, 28, 1) until the model's first layer.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common.data.folds import holdout_split
from common.data.sources import DataFile, Source, files_read, locate
from common.ground.atomic import atomic_path
from common.ground.errors import UserError
from common.ground.paths import PROJECT_ROOT
from common.ground.spec import IMAGE_SHAPE, N_CLASSES, PIXEL_COLUMNS, CompetitionSpec

# ---------------------------------------------------------------------------
# Reading and validating one CSV
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """One validated CSV: images plus, when the file has them, labels or ids."""

    images: np.ndarray  # uint8 (n, 28, 28, 1)
    labels: np.ndarray | None = None  # int64 (n,)
    ids: np.ndarray | None = None  # int64 (n,)


def read_csv_bytes(raw: bytes, where: str) -> pd.DataFrame:
    if not raw.strip():
        raise UserError(f"{where}: the file is empty")
    try:
        frame = pd.read_csv(io.BytesIO(raw), engine="c", low_memory=False)
    except pd.errors.EmptyDataError:
        raise UserError(f"{where}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        detail = str(error).replace("Error tokenizing data. C error: ", "").strip()
        raise UserError(f"{where}: malformed CSV: {detail}") from None
    if frame.empty:
        raise UserError(f"{where}: the file has a header but no rows")
    return frame


def check_header(frame: pd.DataFrame, expected: list[str], where: str) -> None:
    found = [str(c) for c in frame.columns]
    if found == expected:
        return
    for i, (want, got) in enumerate(zip(expected, found, strict=False)):
        if want != got:
            raise UserError(
                f"{where}: column {i + 1} is {got!r}, expected {want!r} (header must be {expected[0]},{expected[1]},...)"
            )
    if len(found) < len(expected):
        raise UserError(
            f"{where}: {len(found)} columns, expected {len(expected)}: missing {expected[len(found)]!r} onwards"
        )
    raise UserError(
        f"{where}: {len(found)} columns, expected {len(expected)}: unexpected extra column {found[len(expected)]!r}"
    )


def integer_matrix(frame: pd.DataFrame, where: str) -> np.ndarray:
    """The frame as int64, or a UserError naming the first cell that is empty, NaN, non-numeric or fractional."""
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_signed_integer_dtype(values):
            continue
        numeric = pd.to_numeric(values, errors="coerce").astype(float)
        # Whole numbers only, and small enough for int64: inf, 1e20 or a uint64 would wrap around silently.
        bad = ~np.isfinite(numeric) | (numeric != np.floor(numeric)) | (numeric.abs() >= 2.0**63)
        if not bad.any():
            continue  # a float column of whole numbers, such as 12.0
        row = int(np.flatnonzero(bad.to_numpy())[0])
        cell = values.tolist()[row]  # a plain Python value, so the message shows 12.5, not np.float64(12.5)
        what = "an empty or NaN cell (or too few fields)" if pd.isna(cell) else f"{cell!r}"
        raise UserError(f"{where}: line {row + 2}, column {column!r}: expected an integer, found {what}")
    return frame.to_numpy(dtype=np.int64)


def check_range(values: np.ndarray, columns: list[str], low: int, high: int, where: str, what: str) -> None:
    bad = np.argwhere((values < low) | (values > high))
    if len(bad):
        row, col = bad[0]
        raise UserError(
            f"{where}: line {row + 2}, column {columns[col]!r}: {what} must be {low}-{high}, found {values[row, col]}"
        )


def parse_table(raw: bytes, where: str, *, label_column: str | None = None, id_column: str | None = None) -> Table:
    """Validates a pixel CSV: an optional label or id column, then pixel0..pixel783 in order."""
    if label_column and id_column:
        raise ValueError("a table has a label column or an id column, not both")
    first_column = label_column or id_column
    frame = read_csv_bytes(raw, where)
    expected = ([first_column] if first_column else []) + list(PIXEL_COLUMNS)
    check_header(frame, expected, where)
    values = integer_matrix(frame, where)
    pixels = values[:, -len(PIXEL_COLUMNS) :]
    check_range(pixels, list(PIXEL_COLUMNS), 0, 255, where, "pixels")
    images = pixels.astype(np.uint8).reshape((-1, *IMAGE_SHAPE))
    if label_column:
        return Table(images, labels=labels_checked(values[:, 0], label_column, where))
    if id_column:
        return Table(images, ids=ids_checked(values[:, 0], id_column, where))
    return Table(images)


def labels_checked(labels: np.ndarray, column: str, where: str) -> np.ndarray:
    check_range(labels[:, None], [column], 0, N_CLASSES - 1, where, "labels")
    return labels


def ids_checked(ids: np.ndarray, column: str, where: str) -> np.ndarray:
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        duplicate = unique[counts > 1][0]
        row = int(np.flatnonzero(ids == duplicate)[1])
        raise UserError(f"{where}: line {row + 2}, column {column!r}: duplicate id {duplicate}")
    return ids


# ---------------------------------------------------------------------------
# The whole competition, cached
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """A competition's validated arrays; test ids line up with the sample submission's ids."""

    spec: CompetitionSpec
    train: Table
    test: Table
    sample: pd.DataFrame  # sample_submission.csv as given
    extras: dict[str, Table]  # labelled extra sets by report name
    files: tuple[DataFile, ...] = ()  # the files read: path, size, SHA-256

    @property
    def test_ids(self) -> np.ndarray:
        return self.test.ids

    def judged_halves(self) -> dict[str, tuple[str, np.ndarray]]:
        """Half name -> (its extra set, row indices) for each judged set still scored (not trained on)."""
        halves = {}
        for name in self.spec.judged_sets:
            if name in self.extras:
                rows = judged_rows(self.extras[name].labels)
                halves |= dict(zip(judged_half_names(name), ((name, r) for r in rows), strict=True))
        return halves

    def set_rows(self) -> dict[str, tuple[str, np.ndarray]]:
        """Every labelled set that a run is scored on, by name -> (the extra set it is, or is cut from, its row
        indices there): each extra set whole, then each judged set's halves."""
        whole = {name: (name, np.arange(len(table.labels))) for name, table in self.extras.items()}
        return whole | self.judged_halves()

    def scored_sets(self, probabilities: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(labels, probabilities) of every extra set in `probabilities`, and of each judged set's halves cut from
        its rows."""
        return {
            name: (self.extras[source].labels[rows], probabilities[source][rows])
            for name, (source, rows) in self.set_rows().items()
            if source in probabilities
        }


def read_sample(source: Source, spec: CompetitionSpec) -> pd.DataFrame:
    where = source.where(spec.sample_file)
    frame = read_csv_bytes(source.read_bytes(spec.sample_file), where)
    check_header(frame, list(spec.submission_columns), where)
    ids = integer_matrix(frame.iloc[:, :1], where)[:, 0]
    ids_checked(ids, spec.submission_columns[0], where)
    return frame


def with_ids(test: Table, spec: CompetitionSpec, sample: pd.DataFrame, where: str) -> Table:
    """Gives implicit ids (first_id + row) where test.csv has none; checks them against the sample's ids."""
    ids = test.ids if test.ids is not None else spec.first_id + np.arange(len(test.images))
    expected = sample[spec.submission_columns[0]].to_numpy(np.int64)
    if len(ids) != len(expected) or set(ids.tolist()) != set(expected.tolist()):
        missing = sorted(set(expected.tolist()) - set(ids.tolist()))[:3]
        raise UserError(
            f"{where}: test ids do not match {spec.sample_file}: {len(ids)} rows vs {len(expected)}"
            + (f", e.g. id {missing[0]} is missing" if missing else "")
        )
    return Table(test.images, ids=ids)


def cached_table(source: Source, member: str, cache_dir: Path, **columns: str | None) -> Table:
    """parse_table, memoised on disk by the source's fingerprint (size and mtime)."""
    key = hashlib.sha1(f"{source.fingerprint(member)}|{sorted(columns.items())}".encode()).hexdigest()[:16]
    cache_file = cache_dir / f"{Path(member).stem}-{key}.npz"
    if cache_file.is_file():
        with np.load(cache_file) as stored:
            return Table(**{name: stored[name] for name in stored.files})
    table = parse_table(source.read_bytes(member), source.where(member), **columns)
    cache_dir.mkdir(parents=True, exist_ok=True)
    arrays = {name: value for name, value in vars(table).items() if value is not None}
    with atomic_path(cache_file, ".npz") as temporary:
        np.savez(temporary, **arrays)
    return table


def default_cache_dir() -> Path:
    return Path(os.environ.get("DIGIT_CACHE_DIR", PROJECT_ROOT / ".cache"))


def load_dataset(spec: CompetitionSpec, data_dir: str | Path | None = None, cache_dir: Path | None = None) -> Dataset:
    """Locates, reads, validates (and caches) every file of the competition."""
    source = locate(spec, data_dir)
    cache = (cache_dir or default_cache_dir()) / spec.slug
    sample = read_sample(source, spec)
    train = cached_table(source, spec.train_file, cache, label_column=spec.label_column)
    test = cached_table(source, spec.test_file, cache, id_column=spec.test_id_column)
    test = with_ids(test, spec, sample, source.where(spec.test_file))
    extras = {
        name: cached_table(source, member, cache, label_column=spec.label_column)
        for name, member in spec.extra_sets.items()
    }
    members = [spec.sample_file, spec.train_file, spec.test_file, *spec.extra_sets.values()]
    return Dataset(spec, train, test, sample, extras, files_read(source, members, cache))


def judged_half_names(name: str) -> tuple[str, str]:
    """The halves that `judged_sets` cuts from the extra set `name`: (picks recipes, only reports)."""
    return f"{name}_pick", f"{name}_report"


def judged_rows(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a judged set's two stratified halves, the same on every run and machine (HOLDOUT_SEED)."""
    return holdout_split(labels, 0.5)
