"""Finding the competition files, reading them fast, validating them against the spec, caching arrays.

Arrays stay uint8 images of shape (n, 28, 28, 1) until the model's first layer.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common.data.folds import holdout_split
from common.ground.atomic import atomic_path
from common.ground.errors import UserError
from common.ground.paths import PROJECT_ROOT
from common.ground.spec import IMAGE_SHAPE, N_CLASSES, PIXEL_COLUMNS, CompetitionSpec

CACHE_VERSION = "1"  # bump when parsing or validation changes, so old caches are ignored


# ---------------------------------------------------------------------------
# Locating the files
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """The competition's files: either the downloaded zip or a folder of extracted CSVs."""

    path: Path

    @property
    def is_zip(self) -> bool:
        return self.path.suffix == ".zip"

    def where(self, member: str) -> str:
        return f"{self.path}:{member}" if self.is_zip else str(self.path / member)

    def file_of(self, member: str) -> Path:
        """The file on disk that holds `member` (the zip, or the CSV itself); UserError when it is missing."""
        file = self.path if self.is_zip else self.path / member
        if not file.is_file():
            raise UserError(f"{file}: file not found")
        return file

    def read_bytes(self, member: str) -> bytes:
        if not self.is_zip:
            return self.file_of(member).read_bytes()
        try:
            with zipfile.ZipFile(self.path) as archive:
                if member not in archive.namelist():
                    raise UserError(
                        f"{self.path}: the zip has no member {member!r} (it has {', '.join(archive.namelist())})"
                    )
                return archive.read(member)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:  # zlib.error: damaged deflate data
            raise UserError(f"{self.where(member)}: truncated or corrupt zip ({error})") from None

    def fingerprint(self, member: str) -> str:
        """Changes whenever the member's bytes may have changed: size and mtime of the file read."""
        stat = self.file_of(member).stat()
        return f"{self.path.resolve()}|{member}|{stat.st_size}|{stat.st_mtime_ns}|{CACHE_VERSION}"


def candidate_dirs(spec: CompetitionSpec, data_dir: str | Path | None) -> list[Path]:
    """Where to look, in order: --data-dir, $KAGGLE_DATA_DIR, data/SLUG/, /kaggle/input/SLUG/."""
    dirs = [Path(d) for d in (data_dir, os.environ.get("KAGGLE_DATA_DIR")) if d]
    return dirs + [PROJECT_ROOT / "data" / spec.slug, Path("/kaggle/input") / spec.slug]


def source_in(folder: Path, spec: CompetitionSpec) -> Source | None:
    """The competition's zip or extracted CSVs inside `folder` (or its SLUG/ subfolder), if any."""
    if folder.is_file():  # --data-dir may name the zip itself
        if folder.suffix != ".zip":
            raise UserError(f"{folder}: expected a folder or the competition's .zip, not another file")
        return Source(folder)
    for base in (folder, folder / spec.slug):
        if (base / spec.zip_name).is_file():
            return Source(base / spec.zip_name)
        if (base / spec.train_file).is_file():
            return Source(base)
    return None


def locate(spec: CompetitionSpec, data_dir: str | Path | None = None) -> Source:
    """Finds the files; makes offline ones or downloads with the kaggle package when none are found. A --data-dir
    that does not exist is refused: a typo must not let the files of another folder (KAGGLE_DATA_DIR) stand in."""
    if data_dir and not Path(data_dir).exists():
        raise UserError(f"--data-dir {data_dir}: no such folder or file")
    dirs = candidate_dirs(spec, data_dir)
    for folder in dirs:
        found = source_in(folder, spec)
        if found:
            return refreshed(spec, found)
    target = dirs[0] if data_dir else PROJECT_ROOT / "data" / spec.slug
    if spec.writer is not None:
        return Source(write_offline_files(spec, target))
    if kaggle_credentials_present():
        return download(spec, target)
    looked = ", ".join(str(d) for d in dirs)
    raise UserError(
        f"no {spec.zip_name} or {spec.train_file} found (looked in {looked}) and no Kaggle credentials: "
        f"run `{spec.download_command}` in one of those folders, or pass --data-dir"
    )


def refreshed(spec: CompetitionSpec, found: Source) -> Source:
    """`found`, or written again when it is the tool's own copy of an offline competition (data/SLUG/SLUG.zip)
    that lacks a file the competition has now (an older version wrote it). Files anywhere else are the user's: a
    missing member stays an error there."""
    own = PROJECT_ROOT / "data" / spec.slug
    if spec.writer is None or found.path != own / spec.zip_name:
        return found
    members = {spec.train_file, spec.test_file, spec.sample_file, *spec.extra_sets.values()}
    try:
        with zipfile.ZipFile(found.path) as archive:
            if members <= set(archive.namelist()):
                return found
    except (zipfile.BadZipFile, OSError):
        return found  # reading it says what is wrong, as for any other zip
    return Source(write_offline_files(spec, own))


def write_offline_files(spec: CompetitionSpec, folder: Path) -> Path:
    """An offline competition's zip, written into `folder` by the writer its spec names."""
    from common.data.synthetic import WRITERS  # late: its OpenCV and scikit-learn take seconds to import

    return WRITERS[spec.writer](folder)


def kaggle_credentials_present() -> bool:
    home = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    return os.environ.get("KAGGLE_API_TOKEN") is not None or any(
        (home / name).is_file() for name in ("kaggle.json", "access_token")
    )


def download(spec: CompetitionSpec, target: Path) -> Source:
    """Downloads the competition zip with the official kaggle package (authenticating only now)."""
    from kaggle.api.kaggle_api_extended import (
        KaggleApi,  # imported late: it is slow and needs no import-time auth
    )

    target.mkdir(parents=True, exist_ok=True)
    try:
        api = KaggleApi()
        api.authenticate()
        api.competition_download_files(spec.slug, path=str(target), quiet=False)
    except Exception as error:  # noqa: BLE001 - the kaggle package raises many types; all mean the same here
        raise UserError(f"download failed: `{spec.download_command}`: {error}") from None
    return Source(target / spec.zip_name)


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
    return Dataset(spec, train, test, sample, extras)


def judged_half_names(name: str) -> tuple[str, str]:
    """The halves that `judged_sets` cuts from the extra set `name`: (picks recipes, only reports)."""
    return f"{name}_pick", f"{name}_report"


def judged_rows(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a judged set's two stratified halves, the same on every run and machine (HOLDOUT_SEED)."""
    return holdout_split(labels, 0.5)
