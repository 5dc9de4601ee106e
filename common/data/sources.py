"""Finding a competition's files, refusing a folder that holds none of them (or another competition's), and
recording which files were read (path, size, SHA-256).

A folder named for the run (--data-dir, or KAGGLE_DATA_DIR for a Kaggle competition) is the only place looked:
files found elsewhere must never stand in for the ones asked for.
"""

from __future__ import annotations

import csv
import hashlib
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from common.ground.atomic import atomic_write_bytes
from common.ground.errors import UserError
from common.ground.paths import PROJECT_ROOT
from common.ground.spec import COMPETITIONS, CompetitionSpec, get_spec

CACHE_VERSION = "1"  # bump when parsing or validation changes, so old caches are ignored
SHOWN_NAMES = 6  # what a folder holds: the first names listed in an error


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
            archive = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as error:  # the archive itself: no member to name
            raise UserError(f"{self.path}: truncated or corrupt zip ({error})") from None
        with archive:
            if member not in archive.namelist():
                raise UserError(
                    f"{self.path}: the zip has no member {member!r} (it has {', '.join(archive.namelist())})"
                )
            try:
                return archive.read(member)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:  # zlib.error: damaged deflate data
                raise UserError(f"{self.where(member)}: truncated or corrupt zip ({error})") from None

    def fingerprint(self, member: str) -> str:
        """Changes whenever the member's bytes may have changed: size and mtime of the file read."""
        return f"{file_fingerprint(self.file_of(member))}|{member}|{CACHE_VERSION}"


def file_fingerprint(file: Path) -> str:
    stat = file.stat()
    return f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


# ---------------------------------------------------------------------------
# Whose files a folder holds
# ---------------------------------------------------------------------------


def known_specs() -> list[CompetitionSpec]:
    return [get_spec(name) for name in COMPETITIONS]


def sample_header(file: Path) -> tuple[str, ...]:
    """The column names of a CSV's first line (a sample submission's: they tell the competitions apart)."""
    with file.open(newline="", encoding="utf-8", errors="replace") as handle:
        return tuple(next(csv.reader([handle.readline()]), []))


def csvs_match(base: Path, spec: CompetitionSpec) -> bool:
    """Whether `base` holds `spec`'s extracted CSVs: its train and sample files, the sample's columns, and its
    extra sets' files (Kannada's Dig-MNIST.csv)."""
    sample = base / spec.sample_file
    if not ((base / spec.train_file).is_file() and sample.is_file()):
        return False
    extras = all((base / name).is_file() for name in spec.extra_sets.values())
    return extras and sample_header(sample) == tuple(spec.submission_columns)


def csvs_owner(base: Path) -> CompetitionSpec | None:
    """The one known competition whose CSVs `base` holds; None when none or several could be."""
    owners = [spec for spec in known_specs() if csvs_match(base, spec)]
    return owners[0] if len(owners) == 1 else None


def another_competition(folder: Path, spec: CompetitionSpec) -> str | None:
    """'<slug>'s files (what shows it)' when `folder` (or its <slug>/ subfolder) holds another known
    competition's zip or extracted CSVs; None otherwise."""
    for other in known_specs():
        if other.slug == spec.slug:
            continue
        if folder.is_file():
            if folder.name == other.zip_name:
                return f"{other.slug}'s files ({folder.name})"
            continue
        for base in (folder, folder / other.slug):
            if (base / other.zip_name).is_file():
                return f"{other.slug}'s files ({(base / other.zip_name).relative_to(folder)})"
            if csvs_match(base, other):
                columns = ",".join(other.submission_columns)
                return f"{other.slug}'s files (its {other.sample_file} has columns {columns})"
    return None


def holdings(folder: Path) -> str:
    """What a folder holds, in a few words: 'it is empty', or its first names."""
    names = sorted(f"{p.name}/" if p.is_dir() else p.name for p in folder.iterdir())
    if not names:
        return "it is empty"
    more = f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
    return f"it holds {', '.join(names[:SHOWN_NAMES])}{more}"


# ---------------------------------------------------------------------------
# Locating the files
# ---------------------------------------------------------------------------


def source_in(folder: Path, spec: CompetitionSpec) -> Source | None:
    """The competition's zip or extracted CSVs inside `folder` (or its SLUG/ subfolder), if any; CSVs that are
    plainly another competition's (their sample's columns, their extra sets) are not."""
    if folder.is_file():  # --data-dir may name the zip itself
        if folder.suffix != ".zip":
            raise UserError(f"{folder}: expected a folder or the competition's .zip, not another file")
        return None if another_competition(folder, spec) else Source(folder)
    for base in (folder, folder / spec.slug):
        if (base / spec.zip_name).is_file():
            return Source(base / spec.zip_name)
        if (base / spec.train_file).is_file() and csvs_owner(base) in (None, spec):
            return Source(base)
    return None


def locate(spec: CompetitionSpec, data_dir: str | Path | None = None) -> Source:
    """Finds the files: in --data-dir alone when it is given, else in KAGGLE_DATA_DIR alone when it is set (for a
    Kaggle competition: an offline one makes its own files), else in data/SLUG/ and /kaggle/input/SLUG/. Makes an
    offline competition's files, or downloads with the kaggle package, when none are found."""
    if data_dir:
        return located_in(Path(data_dir), spec, f"--data-dir {data_dir}")
    environment = os.environ.get("KAGGLE_DATA_DIR")
    if environment and spec.on_kaggle:
        return located_in(Path(environment), spec, f"KAGGLE_DATA_DIR={environment}")
    own = PROJECT_ROOT / "data" / spec.slug
    dirs = [Path(environment)] if environment else []
    dirs += [own, Path("/kaggle/input") / spec.slug]
    for folder in dirs:
        found = source_in(folder, spec) if folder.exists() else None
        if found:
            return refreshed(spec, found)
    if spec.writer is not None:
        return Source(write_offline_files(spec, own))
    if kaggle_credentials_present():
        return download(spec, own)
    looked = ", ".join(str(d) for d in dirs)
    others = [f"; {d} holds {other}" for d in dirs if d.is_dir() and (other := another_competition(d, spec))]
    raise UserError(
        f"no {spec.zip_name} or {spec.train_file} found (looked in {looked}){''.join(others)} and no Kaggle"
        f" credentials: run `{spec.download_command}` in one of those folders, or pass --data-dir"
    )


def located_in(folder: Path, spec: CompetitionSpec, named: str) -> Source:
    """The files in the one folder the user named, or one line saying what that folder holds instead. A folder
    without them takes an offline competition's own files, or the download when Kaggle credentials are present."""
    if not folder.exists():
        raise UserError(f"{named}: no such folder or file")
    found = source_in(folder, spec)
    if found:
        return refreshed(spec, found)
    other = another_competition(folder, spec)
    if other:
        raise UserError(f"{named} holds {other}, not {spec.slug}'s: pass the folder of {spec.zip_name} or its CSVs")
    if spec.writer is not None:
        return Source(write_offline_files(spec, folder))
    if kaggle_credentials_present():
        return download(spec, folder)
    raise UserError(
        f"{named} holds no {spec.slug} files ({spec.zip_name} or {spec.train_file}, there or in {spec.slug}/):"
        f" {holdings(folder)}; run `{spec.download_command} -p {folder}`, or pass the folder that holds them"
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
# Which files were read
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DataFile:
    """One file a run read: where it was, its size and its SHA-256 (what tells two copies apart)."""

    path: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, str | int]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: dict) -> DataFile:
        return cls(str(data.get("path", "")), int(data.get("size", 0)), str(data.get("sha256", "")))


def data_file(file: Path, cache_dir: Path) -> DataFile:
    """The file's record; its SHA-256 is cached beside the parsed arrays under the file's size and mtime, so an
    unchanged file is hashed once."""
    key = hashlib.sha1(file_fingerprint(file).encode()).hexdigest()[:16]
    cached = cache_dir / f"sha256-{file.name}-{key}.txt"
    if cached.is_file():
        digest = cached.read_text().strip()
    else:
        with file.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cached, digest.encode())
    return DataFile(str(file.resolve()), file.stat().st_size, digest)


def files_read(source: Source, members: list[str], cache_dir: Path) -> tuple[DataFile, ...]:
    """The files on disk that hold `members` (the zip once, or each CSV), recorded."""
    files = dict.fromkeys(source.file_of(member) for member in members)
    return tuple(data_file(file, cache_dir) for file in files)
