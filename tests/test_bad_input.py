"""Bad input, end to end (issue 5): `run.py` prints ONE `error:` line naming the file (and line and column
where they apply), exits 2, and writes nothing: no run folder, and the data folder is left byte for byte.

Every case starts from the valid offline `digits` competition, breaks one thing, and runs the real command
line in this process (`run.main`): a subprocess per case would import TensorFlow each time.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

import common.data.sources
import common.runs
import run
from common.data.files import load_dataset
from common.ground.spec import get_spec

ZIP = "sklearn-digits.zip"
Members = dict[str, bytes]  # zip member name -> its bytes
Edit = Callable[[Members], Members]
Build = Callable[[Path, Members], None]  # writes the competition's files into the data folder


@pytest.fixture(scope="module")
def members(digits_dir) -> Members:
    """The valid digits competition's files, read once for every case to break."""
    with zipfile.ZipFile(digits_dir / ZIP) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# ---------------------------------------------------------------------------
# Breaking one member: its text as rows of fields (row 0 is the header, file line 1)
# ---------------------------------------------------------------------------


def on_rows(member: str, change: Callable[[list[list[str]]], None]) -> Edit:
    def edit(files: Members) -> Members:
        rows = [line.split(",") for line in files[member].decode().splitlines()]
        change(rows)
        return files | {member: "".join(",".join(row) + "\n" for row in rows).encode()}

    return edit


def set_cell(member: str, line: int, column: str, value: str) -> Edit:
    def change(rows: list[list[str]]) -> None:
        rows[line - 1][rows[0].index(column)] = value

    return on_rows(member, change)


def rename_column(member: str, old: str, new: str) -> Edit:
    return set_cell(member, 1, old, new)


def swap_columns(member: str, a: str, b: str) -> Edit:
    def change(rows: list[list[str]]) -> None:
        i, j = rows[0].index(a), rows[0].index(b)
        rows[0][i], rows[0][j] = b, a

    return on_rows(member, change)


def drop_column(member: str, column: str) -> Edit:
    def change(rows: list[list[str]]) -> None:
        index = rows[0].index(column)
        for row in rows:
            del row[index]

    return on_rows(member, change)


def add_column(member: str, name: str, value: str) -> Edit:
    def change(rows: list[list[str]]) -> None:
        rows[0].append(name)
        for row in rows[1:]:
            row.append(value)

    return on_rows(member, change)


def keep_lines(member: str, n: int) -> Edit:
    def change(rows: list[list[str]]) -> None:
        del rows[n:]

    return on_rows(member, change)


def edit_line(member: str, line: int, fields: Callable[[list[str]], list[str]]) -> Edit:
    def change(rows: list[list[str]]) -> None:
        rows[line - 1] = fields(rows[line - 1])

    return on_rows(member, change)


def replace(member: str, raw: bytes) -> Edit:
    return lambda files: files | {member: raw}


def without(member: str) -> Edit:
    return lambda files: {name: raw for name, raw in files.items() if name != member}


# ---------------------------------------------------------------------------
# Writing the data folder: the competition zip, or its extracted CSVs
# ---------------------------------------------------------------------------


def apply(files: Members, edits: tuple[Edit, ...]) -> Members:
    for edit in edits:
        files = edit(files)
    return files


def write_zip(path: Path, files: Members) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, raw in files.items():
            archive.writestr(name, raw)


def zipped(*edits: Edit) -> Build:
    return lambda data, files: write_zip(data / ZIP, apply(files, edits))


def extracted(*edits: Edit) -> Build:
    def build(data: Path, files: Members) -> None:
        for name, raw in apply(files, edits).items():
            (data / name).write_bytes(raw)

    return build


def damaged_zip(change: Callable[[bytes], bytes]) -> Build:
    def build(data: Path, files: Members) -> None:
        write_zip(data / ZIP, files)
        (data / ZIP).write_bytes(change((data / ZIP).read_bytes()))

    return build


def flip(start: int, stop: int) -> Callable[[bytes], bytes]:
    """Inverts bytes inside train.csv's compressed data (the first member, 478 KB from offset ~40)."""
    return lambda raw: raw[:start] + bytes(b ^ 0xFF for b in raw[start:stop]) + raw[stop:]


def with_config(text: str) -> Build:
    def build(data: Path, files: Members) -> None:
        zipped()(data, files)
        (data / "my.yaml").write_text(text)

    return build


def nothing(data: Path, files: Members) -> None:
    """An empty data folder."""


# ---------------------------------------------------------------------------
# The table: how to break it, the words the error line must hold ({data} and {zip} are filled in)
# ---------------------------------------------------------------------------


class Case(NamedTuple):
    name: str
    build: Build
    words: tuple[str, ...]
    args: tuple[str, ...] = ()  # added after `COMPETITION --preset smoke --data-dir DATA --out OUT`
    competition: str = "digits"


TRAIN, TEST, EXTRA, SAMPLE = (
    "{zip}:train.csv",
    "{zip}:test.csv",
    "{zip}:sklearn_test.csv",
    "{zip}:sample_submission.csv",
)

CASES = [
    # Missing files
    Case(
        "missing file",
        nothing,
        (
            "--data-dir {data} holds no digit-recognizer files (digit-recognizer.zip or train.csv",
            "it is empty",
            "kaggle competitions download -c digit-recognizer -p {data}",
        ),
        competition="mnist",
    ),
    Case(
        "data dir is a csv",
        extracted(),
        ("{data}/train.csv: expected a folder or the competition's .zip",),
        ("--data-dir", "{data}/train.csv"),
    ),
    Case(
        "data dir does not exist",
        extracted(),
        ("--data-dir {data}/typo: no such folder or file",),
        ("--data-dir", "{data}/typo"),
    ),
    Case("missing csv", extracted(without("sklearn_test.csv")), ("{data}/sklearn_test.csv: file not found",)),
    Case("zip without member", zipped(without("test.csv")), ("{zip}: the zip has no member 'test.csv'",)),
    Case("truncated zip", damaged_zip(lambda raw: raw[: len(raw) // 2]), ("{zip}:", "truncated or corrupt zip")),
    Case("corrupt zip data", damaged_zip(flip(1000, 1200)), (f"{TRAIN}: truncated or corrupt zip",)),
    Case("corrupt zip crc", damaged_zip(lambda raw: raw[:5000] + bytes(300) + raw[5300:]), (f"{TRAIN}: truncated",)),
    Case("not a zip", damaged_zip(lambda raw: b"label,pixel0\n1,2\n"), ("{zip}: truncated or corrupt zip",)),
    # Empty files, header only
    Case("empty train", zipped(replace("train.csv", b"")), (f"{TRAIN}: the file is empty",)),
    Case("blank test csv", extracted(replace("test.csv", b"\n\n")), ("{data}/test.csv: the file is empty",)),
    Case("header only", zipped(keep_lines("train.csv", 1)), (f"{TRAIN}: the file has a header but no rows",)),
    Case("sample header only", zipped(keep_lines("sample_submission.csv", 1)), (f"{SAMPLE}: the file has a header",)),
    # Columns
    Case(
        "wrong label column",
        zipped(rename_column("train.csv", "label", "digit")),
        (f"{TRAIN}: column 1 is 'digit', expected 'label'",),
    ),
    Case(
        "missing label column",
        zipped(drop_column("train.csv", "label")),
        (f"{TRAIN}: column 1 is 'pixel0', expected 'label'",),
    ),
    Case("wrong id column", zipped(rename_column("test.csv", "id", "ImageId")), (f"{TEST}: column 1 is 'ImageId'",)),
    Case("missing id column", zipped(drop_column("test.csv", "id")), (f"{TEST}: column 1 is 'pixel0', expected 'id'",)),
    Case(
        "missing pixel column",
        zipped(drop_column("train.csv", "pixel783")),
        (f"{TRAIN}: 784 columns, expected 785: missing 'pixel783'",),
    ),
    Case(
        "extra pixel column",
        extracted(add_column("sklearn_test.csv", "pixel784", "0")),
        ("{data}/sklearn_test.csv: 786 columns, expected 785: unexpected extra column 'pixel784'",),
    ),
    Case(
        "misordered pixel columns",
        zipped(swap_columns("train.csv", "pixel5", "pixel6")),
        (f"{TRAIN}: column 7 is 'pixel6', expected 'pixel5'",),
    ),
    Case(
        "wrong sample header",
        zipped(rename_column("sample_submission.csv", "label", "Label")),
        (f"{SAMPLE}: column 2 is 'Label', expected 'label'",),
    ),
    # Cells
    Case(
        "non-numeric cell",
        zipped(set_cell("train.csv", 9, "pixel300", "abc")),
        (f"{TRAIN}: line 9, column 'pixel300': expected an integer, found 'abc'",),
    ),
    Case(
        "empty cell",
        extracted(set_cell("train.csv", 5, "pixel10", "")),
        ("{data}/train.csv: line 5, column 'pixel10': expected an integer, found an empty",),
    ),
    Case("NaN", zipped(set_cell("test.csv", 3, "pixel200", "NaN")), (f"{TEST}: line 3, column 'pixel200'", "NaN")),
    Case("inf", zipped(set_cell("train.csv", 4, "pixel1", "inf")), (f"{TRAIN}: line 4, column 'pixel1'", "found inf")),
    Case("huge", zipped(set_cell("train.csv", 4, "pixel1", "1e20")), (f"{TRAIN}: line 4, column 'pixel1'", "1e+20")),
    Case(
        "pixel below 0",
        zipped(set_cell("train.csv", 2, "pixel0", "-1")),
        (f"{TRAIN}: line 2, column 'pixel0': pixels must be 0-255, found -1",),
    ),
    Case(
        "pixel above 255",
        zipped(set_cell("test.csv", 300, "pixel783", "256")),
        (f"{TEST}: line 300, column 'pixel783': pixels must be 0-255, found 256",),
    ),
    Case(
        "float pixel",
        zipped(set_cell("sklearn_test.csv", 6, "pixel400", "12.5")),
        (f"{EXTRA}: line 6, column 'pixel400': expected an integer, found 12.5",),
    ),
    Case(
        "label above 9",
        zipped(set_cell("train.csv", 4, "label", "10")),
        (f"{TRAIN}: line 4, column 'label': labels must be 0-9, found 10",),
    ),
    Case(
        "label below 0", zipped(set_cell("sklearn_test.csv", 2, "label", "-1")), (f"{EXTRA}: line 2, column 'label'",)
    ),
    Case("label not a number", zipped(set_cell("train.csv", 3, "label", "seven")), ("line 3, column 'label'", "seven")),
    # Ids
    Case(
        "duplicate test ids",
        zipped(set_cell("test.csv", 6, "id", "3")),
        (f"{TEST}: line 6, column 'id': duplicate id 3",),
    ),
    Case(
        "duplicate sample ids",
        zipped(set_cell("sample_submission.csv", 3, "id", "0")),
        (f"{SAMPLE}: line 3, column 'id': duplicate id 0",),
    ),
    Case(
        "test ids not in sample",
        zipped(set_cell("test.csv", 2, "id", "5000")),
        (f"{TEST}: test ids do not match sample_submission.csv", "id 0 is missing"),
    ),
    Case(
        "sample shorter than test",
        zipped(keep_lines("sample_submission.csv", 300)),
        (f"{TEST}: test ids do not match sample_submission.csv: 300 rows vs 299",),
    ),
    # Rows with the wrong number of fields
    Case(
        "too few fields",
        zipped(edit_line("train.csv", 7, lambda fields: fields[:-1])),
        (f"{TRAIN}: line 7, column 'pixel783'", "too few fields"),
    ),
    Case(
        "too many fields",
        zipped(edit_line("train.csv", 7, lambda fields: [*fields, "0"])),
        (f"{TRAIN}: malformed CSV", "line 7", "786"),
    ),
    # Config files and flags
    Case(
        "config unknown key",
        with_config("epochz: 3\n"),
        ("{data}/my.yaml: unknown config key 'epochz'",),
        ("--config", "{data}/my.yaml"),
    ),
    Case(
        "config wrong type",
        with_config("epochs: many\n"),
        ("{data}/my.yaml: epochs must be int, got 'many'",),
        ("--config", "{data}/my.yaml"),
    ),
    Case(
        "config float for int",
        with_config("folds: 2.5\n"),
        ("{data}/my.yaml: folds must be int",),
        ("--config", "{data}/my.yaml"),
    ),
    Case(
        "config bad yaml",
        with_config("epochs: [1\n"),
        ("{data}/my.yaml: invalid YAML",),
        ("--config", "{data}/my.yaml"),
    ),
    Case(
        "config not a mapping",
        with_config("- 1\n"),
        ("{data}/my.yaml: expected a mapping",),
        ("--config", "{data}/my.yaml"),
    ),
    Case("config missing", zipped(), ("{data}/none.yaml: config file not found",), ("--config", "{data}/none.yaml")),
    Case("override wrong type", zipped(), ("command line: lr must be float, got 'fast'",), ("lr=fast",)),
    Case("override unknown key", zipped(), ("command line: unknown config key 'epochz'",), ("epochz=3",)),
    Case("override without =", zipped(), ("override 'epochs': expected key=value",), ("epochs",)),
    Case(
        "unknown competition", zipped(), ("unknown competition 'chess'", "kannada, mnist, digits"), competition="chess"
    ),
    Case("unknown model", zipped(), ("unknown model 'resnet999'", "small"), ("model=resnet999",)),
    Case("unknown preset", zipped(), ("unknown preset 'turbo'", "smoke"), ("--preset", "turbo")),
    Case("zero folds", zipped(), ("folds must be a positive integer, got 0",), ("--folds", "0")),
    Case("negative folds", zipped(), ("folds must be a positive integer, got -3",), ("--folds", "-3")),
    Case("one fold", zipped(), ("folds must be at least 2, got 1",), ("--folds", "1")),
    Case("folds not a number", zipped(), ("invalid int value: 'abc'",), ("--folds", "abc")),
    Case(
        "more folds than rows",
        zipped(),
        ("folds must be between 2 and", "the rarest, has", "training rows), got 500"),
        ("--folds", "500"),
    ),
    Case("negative seed", zipped(), ("seed must be between 0 and", "got -1"), ("seed=-1",)),
    Case("aug probability above 1", zipped(), ("aug_probability must be in [0, 1], got 2.0",), ("aug_probability=2",)),
    Case("fold without seed", zipped(), ("--fold and --seed go together",), ("--fold", "0")),
    Case("fold out of range", zipped(), ("--fold 5 --seed 0: the run has folds 0-1",), ("--fold", "5", "--seed", "0")),
    Case("resume unknown run", zipped(), ("no run of digits matches 'nope'",), ("--resume", "nope")),
    Case("resume latest, none", zipped(), ("--resume latest: no unfinished run of digits",), ("--resume", "latest")),
]


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def nothing_else_to_find(tmp_path, monkeypatch):
    """No Kaggle credentials and no project data/ folder: only the case's data folder is seen."""
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(common.data.sources, "PROJECT_ROOT", tmp_path / "project")


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file's and folder's name under `folder`, with the file's bytes (None for a folder)."""
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None for path in folder.rglob("*")}


def command(competition: str, data: Path, out: Path, *args: str) -> list[str]:
    preset = [] if "--resume" in args else ["--preset", "smoke"]  # a resumed run takes no config choices
    return [competition, *preset, "--data-dir", str(data), "--out", str(out), *args]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gives_one_error_line_exit_2_and_writes_nothing(case, members, tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "runs"
    data.mkdir()
    case.build(data, members)
    before = snapshot(data)

    status = run.main(command(case.competition, data, out, *(arg.format(data=data) for arg in case.args)))

    error = capsys.readouterr().err
    assert status == 2, error
    assert error.startswith("error: ") and error.endswith("\n") and error.count("\n") == 1, error
    assert "Traceback" not in error
    for word in case.words:
        assert word.format(data=data, zip=data / ZIP) in error, error
    assert not out.exists() or not any(out.iterdir())
    assert snapshot(data) == before


class Reached(Exception):
    """Raised in place of creating the run folder: validation passed."""


@pytest.mark.parametrize("build", [zipped(), extracted()], ids=["zip", "csv"])
def test_the_unbroken_competition_passes_every_check(build, members, tmp_path, monkeypatch):
    """The table is not vacuous: the same folder, command and flags, unbroken, get as far as the run folder."""
    data = tmp_path / "data"
    data.mkdir()
    build(data, members)
    dataset = load_dataset(get_spec("digits"), data)
    assert len(dataset.train.images) == len(dataset.train.labels) == 1300
    assert dataset.test_ids.tolist() == dataset.sample["id"].tolist() == list(range(300))
    extra = dataset.extras["sklearn_test"]
    assert len(extra.images) == len(extra.labels) == 197 and set(extra.labels.tolist()) == set(range(10))

    def create_run_dir(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(common.runs, "create_run_dir", create_run_dir)
    with pytest.raises(Reached):
        run.main(command("digits", data, tmp_path / "runs", "--folds", "5", "seed=7"))


def test_data_dir_may_name_the_zip_itself(members, tmp_path):
    zipped()(tmp_path, members)
    assert len(load_dataset(get_spec("digits"), tmp_path / ZIP).test_ids) == 300
