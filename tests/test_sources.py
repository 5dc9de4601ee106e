"""common/data/sources.py: the data asked for or one line saying what the folder holds instead; which files a run
read (path, size, SHA-256), recorded in run.json and shown by `compare A B`."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import run
from common.data.files import load_dataset
from common.data.sources import Source, data_file, locate
from common.ground.errors import UserError
from common.ground.spec import get_spec
from tests.conftest import csv_bytes, pixel_frame

MNIST, KANNADA, DIGITS = get_spec("mnist"), get_spec("kannada"), get_spec("digits")


def competition_members(spec) -> dict[str, bytes]:
    """A tiny, valid competition in `spec`'s own layout (ids, sample columns, extra sets)."""
    n_train, n_test = 40, 10
    ids = spec.first_id + np.arange(n_test)
    test = pixel_frame(n_test, 2, (spec.test_id_column, ids) if spec.test_id_column else None)
    sample = pd.DataFrame({spec.submission_columns[0]: ids, spec.submission_columns[1]: 0})
    members = {
        spec.train_file: csv_bytes(pixel_frame(n_train, 1, ("label", np.arange(n_train) % 10))),
        spec.test_file: csv_bytes(test),
        spec.sample_file: csv_bytes(sample),
    }
    return members | {
        file: csv_bytes(pixel_frame(20, 3, ("label", np.arange(20) % 10))) for file in spec.extra_sets.values()
    }


def write_zip(folder: Path, spec) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / spec.zip_name, "w") as archive:
        for name, raw in competition_members(spec).items():
            archive.writestr(name, raw)
    return folder / spec.zip_name


def write_csvs(folder: Path, spec) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in competition_members(spec).items():
        (folder / name).write_bytes(raw)
    return folder


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project whose data/ holds valid files of every Kaggle competition: what a --data-dir that is ignored
    would silently train on."""
    root = tmp_path / "project"
    for spec in (MNIST, KANNADA):
        write_zip(root / "data" / spec.slug, spec)
    monkeypatch.setattr("common.data.sources.PROJECT_ROOT", root)
    monkeypatch.delenv("KAGGLE_DATA_DIR", raising=False)
    return root


def train(capsys, competition: str, data_dir: Path, out: Path) -> tuple[int, str]:
    """`python run.py COMPETITION --preset smoke --data-dir DIR --out OUT`, in this process: (status, stderr)."""
    status = run.main([competition, "--preset", "smoke", "--data-dir", str(data_dir), "--out", str(out)])
    return status, capsys.readouterr().err


def test_kannada_from_a_folder_of_digit_recognizer_files_is_refused_naming_them(project, tmp_path, capsys):
    """The issue's case: `run.py kannada --data-dir data/digit-recognizer` trained on Kannada-MNIST."""
    out = tmp_path / "runs"
    zipped = project / "data" / MNIST.slug
    status, error = train(capsys, "kannada", zipped, out)
    assert status == 2 and error.count("\n") == 1 and not out.exists()
    assert error == (
        f"error: --data-dir {zipped} holds digit-recognizer's files (digit-recognizer.zip), not Kannada-MNIST's:"
        " pass the folder of Kannada-MNIST.zip or its CSVs\n"
    )
    extracted = write_csvs(tmp_path / "extracted", MNIST)  # the CSVs, unzipped: told apart by the sample's columns
    status, error = train(capsys, "kannada", extracted, out)
    assert (
        status == 2 and "holds digit-recognizer's files (its sample_submission.csv has columns ImageId,Label)" in error
    )
    status, error = train(capsys, "mnist", write_csvs(tmp_path / "kannada-csv", KANNADA), out)
    assert status == 2 and "holds Kannada-MNIST's files" in error and not out.exists()


def test_an_empty_data_dir_is_one_line(project, tmp_path, capsys):
    """The issue's case: `run.py mnist --preset smoke --data-dir bad/empty` exited 0 and trained on data/."""
    empty, out = tmp_path / "bad" / "empty", tmp_path / "runs"
    empty.mkdir(parents=True)
    status, error = train(capsys, "mnist", empty, out)
    assert status == 2 and not out.exists()
    assert error == (
        f"error: --data-dir {empty} holds no digit-recognizer files (digit-recognizer.zip or train.csv, there or in"
        f" digit-recognizer/): it is empty; run `kaggle competitions download -c digit-recognizer -p {empty}`, or"
        " pass the folder that holds them\n"
    )


def test_a_folder_of_other_files_names_what_it_holds(project, tmp_path):
    folder = tmp_path / "downloads"
    (folder / "photos").mkdir(parents=True)
    for name in ("notes.txt", "a.csv", "b.csv", "c.csv", "d.csv", "e.csv"):
        (folder / name).write_text("x")
    with pytest.raises(UserError, match=r": it holds a\.csv, b\.csv, c\.csv, d\.csv, e\.csv, notes\.txt and 1 more;"):
        locate(MNIST, folder)


def test_kaggle_data_dir_is_the_one_place_looked_for_a_kaggle_competition(project, tmp_path, monkeypatch):
    shared = tmp_path / "kaggle"
    write_zip(shared, KANNADA)
    monkeypatch.setenv("KAGGLE_DATA_DIR", str(shared))
    assert locate(KANNADA) == Source(shared / KANNADA.zip_name)
    message = f"KAGGLE_DATA_DIR={shared} holds Kannada-MNIST's files (Kannada-MNIST.zip), not digit-recognizer's"
    with pytest.raises(UserError, match=f"^{re.escape(message)}"):
        locate(MNIST)  # project/data/digit-recognizer/ has them, but the environment names another folder
    write_zip(shared, MNIST)  # a folder of several competitions' zips serves each
    assert locate(MNIST) == Source(shared / MNIST.zip_name)
    # The offline competition makes its own files: a Kaggle folder is no reason to refuse it.
    assert locate(DIGITS).path == project / "data" / DIGITS.slug / DIGITS.zip_name


def test_the_zip_of_another_competition_named_itself_is_refused(project, tmp_path):
    zipped = write_zip(tmp_path / "z", MNIST)
    with pytest.raises(UserError, match="holds digit-recognizer's files \\(digit-recognizer.zip\\), not Kannada"):
        locate(KANNADA, zipped)
    assert locate(MNIST, zipped) == Source(zipped)


def test_the_offline_competition_refuses_another_competitions_folder(project, tmp_path):
    folder = project / "data" / MNIST.slug
    with pytest.raises(UserError, match="holds digit-recognizer's files"):
        locate(DIGITS, folder)
    assert not (folder / DIGITS.zip_name).exists()


def test_the_files_read_are_recorded_and_hashed_once(tmp_path, monkeypatch):
    zipped = write_zip(tmp_path / "mnist", MNIST)
    data = load_dataset(MNIST, zipped.parent)
    (record,) = data.files  # the zip, once, whatever members were read from it
    assert record.path == str(zipped.resolve()) and record.size == zipped.stat().st_size
    assert record.sha256 == hashlib.sha256(zipped.read_bytes()).hexdigest()
    extracted = write_csvs(tmp_path / "csv", MNIST)
    assert [Path(f.path).name for f in load_dataset(MNIST, extracted).files] == [
        "sample_submission.csv",
        "train.csv",
        "test.csv",
    ]

    hashed = []
    digest = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda handle, name: hashed.append(name) or digest(handle, name))
    assert data_file(zipped, tmp_path / "cache") == record and hashed == ["sha256"]
    assert data_file(zipped, tmp_path / "cache") == record and hashed == ["sha256"]  # the cache answers
    zipped.write_bytes(zipped.read_bytes() + b"\0")  # another file now: hashed again
    assert data_file(zipped, tmp_path / "cache").sha256 != record.sha256 and len(hashed) == 2


def recorded_run(root: Path, run_id: str, files: list[dict]) -> None:
    """A finished digits run (from test_compare's fake folders) whose run.json records `files`."""
    from tests.test_compare import one_hot, write_run

    rows = np.arange(20)
    folder = write_run(root, run_id, rows, rows % 10, rows % 2, one_hot(rows % 10))
    record = json.loads((folder / "run.json").read_text()) | {"data_files": files}
    (folder / "run.json").write_text(json.dumps(record))


def test_compare_shows_the_data_files_when_two_runs_read_different_ones(tmp_path, capsys):
    old = {"path": "/data/a/sklearn-digits.zip", "size": 100, "sha256": "a" * 64}
    moved = old | {"path": "/elsewhere/sklearn-digits.zip"}  # the same bytes in another folder: the same data
    changed = old | {"size": 101, "sha256": "b" * 64}
    recorded_run(tmp_path, "20260101-000000-default-aaaa", [old])
    recorded_run(tmp_path, "20260101-000001-default-bbbb", [moved])
    recorded_run(tmp_path, "20260101-000002-default-cccc", [changed])

    def compare(a: str, b: str) -> str:
        assert run.main(["compare", "digits", a, b, "--out", str(tmp_path)]) == 0
        return capsys.readouterr().out

    assert "data files" not in compare("20260101-000000", "20260101-000001")
    assert (
        "note: the runs read different data files: A /data/a/sklearn-digits.zip (100 bytes, SHA-256 aaaaaaaaaaaa);"
        " B /data/a/sklearn-digits.zip (101 bytes, SHA-256 bbbbbbbbbbbb)"
    ) in compare("20260101-000000", "20260101-000002")
