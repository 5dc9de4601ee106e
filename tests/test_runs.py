"""common/runs/__init__.py: exclusive run folders, atomic writes, finding runs."""

from __future__ import annotations

import numpy as np
import pytest

from common import runs
from common.ground.errors import UserError


def test_run_folders_are_never_shared(tmp_path):
    folders = {runs.create_run_dir(tmp_path, "mnist", "smoke") for _ in range(20)}
    assert len(folders) == 20 and all(f.is_dir() and f.parent.name == "mnist" for f in folders)


def test_atomic_writes_leave_no_partial_files(tmp_path):
    runs.save_array(tmp_path / "a.npy", np.ones(3, np.float32))
    runs.write_json(tmp_path / "m.json", {"accuracy": np.float32(0.5)})
    assert np.load(tmp_path / "a.npy").tolist() == [1, 1, 1]
    assert '"accuracy": 0.5' in (tmp_path / "m.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "m.json"]


def make_run(root, label: str, finished: bool) -> runs.Run:
    folder = runs.create_run_dir(root, "digits", label)
    runs.start_run(folder, {"epochs": 1}, ["digits"], "CPU")
    if finished:
        runs.finish_run(folder, 1.0)
    return runs.load_run(folder)


def test_find_run_by_id_prefix_and_latest(tmp_path):
    old = make_run(tmp_path, "a", finished=True)
    new = make_run(tmp_path, "b", finished=True)
    make_run(tmp_path, "c", finished=False)
    assert runs.find_run(tmp_path, "digits", "latest").run_id == new.run_id
    assert runs.find_run(tmp_path, "digits", old.run_id).run_id == old.run_id
    assert runs.load_run(old.folder).record["status"] == "finished"
    with pytest.raises(UserError, match="no run of digits matches 'nope'"):
        runs.find_run(tmp_path, "digits", "nope")
    with pytest.raises(UserError, match="no finished run of mnist"):
        runs.find_run(tmp_path, "mnist", None)
