"""common/ground/atomic.py: whole files or none, and writers of the same file at the same instant never clash."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from common.ground.atomic import atomic_path, atomic_write_bytes
from common.runs import save_array


def test_writers_of_one_file_at_once_never_share_a_temporary_name(tmp_path):
    target = tmp_path / "submission.csv"
    payloads = [f"writer {i}\n".encode() * 2000 for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda data: atomic_write_bytes(target, data), payloads * 4))
    assert target.read_bytes() in payloads
    assert [p.name for p in tmp_path.iterdir()] == ["submission.csv"]  # no temporary file left behind


def test_arrays_keep_their_name_and_a_failed_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "oof.npy"
    save_array(target, np.arange(3))
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert np.array_equal(np.load(target), np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["oof.npy"]
