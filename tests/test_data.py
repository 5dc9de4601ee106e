"""common/data/files.py: locating, reading, validating and caching the competition files."""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common.data.files import load_dataset, parse_table
from common.data.sources import Source, locate
from common.ground.errors import UserError
from common.ground.spec import COMPETITIONS, CompetitionSpec, get_spec
from tests.conftest import csv_bytes, pixel_frame, real_rows

TINY = CompetitionSpec(name="tiny", slug="tiny-comp", test_id_column="id", submission_columns=("id", "label"))


def write_competition(folder: Path, n_train: int = 40, n_test: int = 10, **replace: bytes) -> Path:
    """A valid tiny competition zip in Kaggle's layout; `replace` swaps a member's bytes."""
    members = {
        "train.csv": csv_bytes(pixel_frame(n_train, 1, ("label", np.arange(n_train) % 10))),
        "test.csv": csv_bytes(pixel_frame(n_test, 2, ("id", np.arange(n_test)))),
        "sample_submission.csv": csv_bytes(pd.DataFrame({"id": np.arange(n_test), "label": 0})),
    } | replace
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "tiny-comp.zip", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return folder


def good_train() -> pd.DataFrame:
    return pixel_frame(5, 3, ("label", np.array([0, 1, 2, 3, 4])))


def edited(change) -> bytes:
    """train.csv bytes after `change(frame)`, which returns a new frame or edits in place (None)."""
    frame = good_train()
    result = change(frame)
    return csv_bytes(frame if result is None else result)


def set_cell(row, column, value):
    def change(frame):
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value

    return change


# (case, CSV bytes of train.csv, words the one-line error must contain)
BAD_TRAIN = [
    ("empty file", b"", ["empty"]),
    ("header only", csv_bytes(good_train()).splitlines()[0] + b"\n", ["no rows"]),
    ("wrong label column", edited(lambda f: f.rename(columns={"label": "digit"})), ["column 1", "'digit'", "'label'"]),
    ("missing pixel column", edited(lambda f: f.drop(columns="pixel783")), ["missing", "'pixel783'"]),
    ("extra column", edited(lambda f: f.insert(785, "extra", 0)), ["extra column", "'extra'"]),
    (
        "misordered pixels",
        edited(lambda f: f.rename(columns={"pixel5": "pixel6", "pixel6": "pixel5"})),
        ["column 7", "'pixel6'", "'pixel5'"],
    ),
    ("non-numeric cell", edited(set_cell(2, "pixel10", "abc")), ["line 4", "'pixel10'", "'abc'"]),
    ("empty cell", edited(set_cell(1, "pixel3", None)), ["line 3", "'pixel3'", "empty"]),
    ("NaN", edited(set_cell(0, "pixel7", "NaN")), ["line 2", "'pixel7'"]),
    ("pixel above 255", edited(set_cell(3, "pixel20", 256)), ["line 5", "'pixel20'", "0-255", "256"]),
    ("pixel below 0", edited(set_cell(4, "pixel0", -1)), ["line 6", "'pixel0'", "-1"]),
    ("float pixel", edited(set_cell(2, "pixel9", 1.5)), ["line 4", "'pixel9'", "1.5"]),
    ("label outside 0-9", edited(set_cell(1, "label", 10)), ["line 3", "'label'", "0-9"]),
    ("too many fields", csv_bytes(good_train()) + b"1," + b"0," * 784 + b"0\n", ["line 7", "fields"]),
    ("too few fields", csv_bytes(good_train()) + b"1,0,0\n", ["line 7", "'pixel2'"]),
]


@pytest.mark.parametrize("case, raw, words", BAD_TRAIN, ids=[c[0] for c in BAD_TRAIN])
def test_bad_train_file_gives_one_clear_line(case, raw, words):
    with pytest.raises(UserError) as caught:
        parse_table(raw, "train.csv", label_column="label")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("train.csv")
    for word in words:
        assert word in message, f"{case}: {word!r} not in {message!r}"


def test_duplicate_test_ids_are_named():
    raw = csv_bytes(pixel_frame(4, 0, ("id", np.array([0, 1, 1, 2]))))
    with pytest.raises(UserError, match=r"line 4, column 'id': duplicate id 1"):
        parse_table(raw, "test.csv", id_column="id")


def test_valid_table_parses_to_uint8_images():
    frame = good_train()
    table = parse_table(csv_bytes(frame), "train.csv", label_column="label")
    assert table.images.shape == (5, 28, 28, 1) and table.images.dtype == np.uint8
    assert table.images[2].ravel().tolist() == frame.iloc[2, 1:].tolist()
    assert table.labels.tolist() == [0, 1, 2, 3, 4]


def test_crlf_line_ends_are_read():
    frame = pixel_frame(3, 5)
    raw = frame.to_csv(index=False, lineterminator="\r\n").encode()
    assert parse_table(raw, "test.csv").images.reshape(3, -1).tolist() == frame.to_numpy().tolist()


def test_truncated_zip(tmp_path):
    folder = write_competition(tmp_path)
    zip_path = folder / "tiny-comp.zip"
    zip_path.write_bytes(zip_path.read_bytes()[:300])
    with pytest.raises(UserError, match="truncated or corrupt zip"):
        load_dataset(TINY, folder)


def test_zip_without_expected_member(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    with zipfile.ZipFile(folder / "tiny-comp.zip", "w") as archive:
        archive.writestr("train.csv", csv_bytes(good_train()))
    with pytest.raises(UserError, match="no member 'sample_submission.csv'"):
        load_dataset(TINY, folder)


def test_test_ids_must_match_sample_submission(tmp_path):
    sample = csv_bytes(pd.DataFrame({"id": np.arange(1, 11), "label": 0}))
    folder = write_competition(tmp_path, **{"sample_submission.csv": sample})
    with pytest.raises(UserError, match="test ids do not match sample_submission.csv"):
        load_dataset(TINY, folder)


def test_missing_files_name_where_it_looked_and_the_download_command(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-credentials"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError) as caught:
        locate(TINY, tmp_path / "empty")
    assert "kaggle competitions download -c tiny-comp" in str(caught.value)
    assert str(tmp_path / "empty") in str(caught.value)


def test_a_data_dir_that_does_not_exist_is_refused_even_with_kaggle_data_dir_set(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_DATA_DIR", str(write_competition(tmp_path / "elsewhere")))
    assert locate(TINY) == Source(tmp_path / "elsewhere" / "tiny-comp.zip")  # the environment's folder is valid
    typo = tmp_path / "typo"
    with pytest.raises(UserError, match=f"^{re.escape(f'--data-dir {typo}: no such folder or file')}$"):
        locate(TINY, typo)


def test_extracted_csvs_are_found_like_the_zip(tmp_path):
    folder = write_competition(tmp_path / "zipped")
    extracted = tmp_path / "extracted"
    with zipfile.ZipFile(folder / "tiny-comp.zip") as archive:
        archive.extractall(extracted)
    assert locate(TINY, extracted) == Source(extracted)
    from_zip, from_csv = load_dataset(TINY, folder), load_dataset(TINY, extracted)
    assert np.array_equal(from_zip.train.images, from_csv.train.images)


def test_second_load_comes_from_the_cache(tmp_path):
    folder = write_competition(tmp_path, n_train=2000)
    first = load_dataset(TINY, folder)
    start = time.perf_counter()
    second = load_dataset(TINY, folder)
    assert time.perf_counter() - start < 1.0
    assert np.array_equal(first.train.images, second.train.images)
    assert np.array_equal(first.train.labels, second.train.labels)


def test_changed_file_is_read_again_not_served_stale(tmp_path):
    folder = write_competition(tmp_path, n_train=20)
    assert len(load_dataset(TINY, folder).train.labels) == 20
    write_competition(tmp_path, n_train=30)
    assert len(load_dataset(TINY, folder).train.labels) == 30


def test_the_tools_own_digits_files_are_written_again_when_an_older_version_wrote_them(tmp_path, monkeypatch):
    monkeypatch.setattr("common.data.sources.PROJECT_ROOT", tmp_path)
    own = tmp_path / "data" / "sklearn-digits"
    older = write_competition(own) / "tiny-comp.zip"  # no sklearn_test.csv, as before the set was renamed
    older.rename(own / "sklearn-digits.zip")
    data = load_dataset(get_spec("digits"))
    assert "sklearn_test" in data.extras and len(data.train.labels) == 1300
    elsewhere = write_competition(tmp_path / "mine") / "tiny-comp.zip"
    elsewhere.rename(tmp_path / "mine" / "sklearn-digits.zip")
    with pytest.raises(UserError, match="no member 'sklearn_test.csv'"):  # the user's own folder: never rewritten
        load_dataset(get_spec("digits"), tmp_path / "mine")


def test_digits_competition_is_written_on_first_use(tmp_path, monkeypatch):
    monkeypatch.setattr("common.data.sources.PROJECT_ROOT", tmp_path / "project")  # no data/ of an earlier run
    data = load_dataset(get_spec("digits"), tmp_path)
    assert (tmp_path / "sklearn-digits.zip").is_file()
    assert data.train.images.shape[1:] == (28, 28, 1)
    assert set(np.unique(data.train.labels)) == set(range(10))
    assert "sklearn_test" in data.extras and len(data.test_ids) == len(data.sample)


def test_the_competitions_are_one_table_and_an_offline_ones_writer_is_the_data_floors():
    from common.data.synthetic import WRITERS

    assert {name: spec.name for name, spec in COMPETITIONS.items()} == {n: n for n in ("kannada", "mnist", "digits")}
    offline = {name: spec.writer for name, spec in COMPETITIONS.items() if not spec.on_kaggle}
    assert offline == {"digits": "sklearn_digits"} and set(offline.values()) <= set(WRITERS)


@pytest.mark.parametrize(
    "zip_name, member, first_column",
    [
        ("Kannada-MNIST.zip", "train.csv", "label"),
        ("Kannada-MNIST.zip", "test.csv", "id"),
        ("Kannada-MNIST.zip", "Dig-MNIST.csv", "label"),
        ("digit-recognizer.zip", "train.csv", "label"),
        ("digit-recognizer.zip", "test.csv", None),
    ],
)
def test_real_rows_parse(zip_name, member, first_column):
    frame = real_rows(zip_name, member, 50)
    role = {"label": {"label_column": "label"}, "id": {"id_column": "id"}, None: {}}[first_column]
    table = parse_table(csv_bytes(frame), member, **role)
    assert table.images.shape == (50, 28, 28, 1)
    assert table.images.reshape(50, -1).tolist() == frame.iloc[:, -784:].to_numpy().tolist()


@pytest.fixture(scope="module")
def cache_seen_by_a_module_fixture() -> Path:
    from common.data.files import default_cache_dir

    return default_cache_dir()


def test_fixtures_of_every_scope_keep_caches_out_of_the_project(cache_seen_by_a_module_fixture):
    from common.data.files import default_cache_dir
    from common.ground.paths import PROJECT_ROOT

    assert cache_seen_by_a_module_fixture == default_cache_dir()  # the same temporary folder for the whole session
    assert PROJECT_ROOT not in cache_seen_by_a_module_fixture.parents
