"""common/runs/layout.py: unit keys and their folder names, the status and kind words."""

from __future__ import annotations

import pytest

from common.ground.config import Config
from common.runs.layout import RunStatus, UnitKey, unit_dir, unit_files, unit_keys
from common.runs.units import all_units


def test_unit_keys_name_their_folders_and_parse_back():
    assert UnitKey(3, 1).name == "f3-s1" and UnitKey(None, 2).name == "all-s2"
    for key in (UnitKey(0, 0), UnitKey(12, 3), UnitKey(None, 0)):
        assert UnitKey.parse(key.name) == key
    for bad in ("f1", "x0-s1", "all-s", "f-1-s0", "f1-s1-old"):
        with pytest.raises(ValueError, match="not a unit folder name"):
            UnitKey.parse(bad)


def test_unit_keys_order_fold_by_fold_with_full_data_models_last():
    keys = [UnitKey(None, 0), UnitKey(1, 0), UnitKey(0, 1), UnitKey(0, 0), UnitKey(10, 0), UnitKey(None, 1)]
    assert [k.name for k in sorted(keys)] == ["f0-s0", "f0-s1", "f1-s0", "f10-s0", "all-s0", "all-s1"]
    assert UnitKey(1, 0).holds_out and not UnitKey(None, 0).holds_out


def test_all_units_are_the_fold_models():
    assert all_units(Config(folds=2, seeds=2)) == [UnitKey(0, 0), UnitKey(0, 1), UnitKey(1, 0), UnitKey(1, 1)]


def test_unit_files_list_every_unit_folder_in_key_order(tmp_path):
    for key in (UnitKey(None, 0), UnitKey(10, 0), UnitKey(2, 0)):
        unit_dir(tmp_path, key).mkdir(parents=True)
        (unit_dir(tmp_path, key) / "history.csv").write_text("epoch\n1\n")
    (tmp_path / "units" / "notes").mkdir()  # not a unit: ignored
    assert unit_keys(tmp_path) == [UnitKey(2, 0), UnitKey(10, 0), UnitKey(None, 0)]
    assert [p.parent.name for p in unit_files(tmp_path, "history.csv")] == ["f2-s0", "f10-s0", "all-s0"]
    assert [p.parent.name for p in unit_files(tmp_path, "history.csv", fold=10)] == ["f10-s0"]
    assert unit_dir(tmp_path, UnitKey(1, 0)) == tmp_path / "units" / "f1-s0"


def test_statuses_decode_in_one_place():
    assert RunStatus.decode("pruned") is RunStatus.PRUNED and RunStatus.decode("finished") is RunStatus.FINISHED
    assert RunStatus.decode(None) is RunStatus.RUNNING and RunStatus.decode("odd") is RunStatus.RUNNING
    assert [s.shown for s in RunStatus] == ["unfinished", "finished", "pruned", "failed"]
