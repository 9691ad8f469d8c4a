"""One atomic-write helper (nait_core/atomic.py): whole files or none, temp names unique per writer."""

import json
import os
import threading

import numpy as np
import pytest

from nait_core import atomic

pytestmark = pytest.mark.unit


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if ".tmp" in p.name]


def test_writes_land_whole_and_leave_nothing_behind(tmp_path):
    atomic.write_bytes(tmp_path / "a.bin", b"\x00\x01")
    atomic.write_text(tmp_path / "b.txt", "héllo\n")
    atomic.write_json(tmp_path / "c.json", {"b": 1, "a": [1, 2]}, indent=2, sort_keys=True)
    atomic.save_npy(tmp_path / "d.npy", np.arange(5, dtype=np.float16))
    with atomic.open_for_writing(tmp_path / "e.jsonl", "w", encoding="utf-8", newline="") as f:
        f.write("x\r\n")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_bytes() == "héllo\n".encode()
    assert (tmp_path / "c.json").read_bytes() == json.dumps({"b": 1, "a": [1, 2]}, indent=2, sort_keys=True).encode()
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy"), np.arange(5, dtype=np.float16))
    assert (tmp_path / "e.jsonl").read_bytes() == b"x\r\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.json", "d.npy", "e.jsonl"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temp(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic.open_for_writing(path) as f:
        f.write("half of the new")
        raise RuntimeError("interrupted")
    with pytest.raises(KeyboardInterrupt), atomic.replacing(path) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert path.read_text() == "old" and _leftovers(tmp_path) == []


def test_temp_names_are_unique_per_writer_and_files_get_the_usual_mode(tmp_path):
    path = tmp_path / "same.txt"
    with atomic.replacing(path) as first, atomic.replacing(path) as second:  # one process, one thread
        assert first != second and first.parent == second.parent == tmp_path and first.name.startswith(".same.txt.tmp")
        second.write_text("second")
        first.write_text("first")
    assert path.read_text() == "first"  # the last to finish wins, whole
    (tmp_path / "plain.txt").write_text("x")
    assert os.stat(path).st_mode & 0o777 == os.stat(tmp_path / "plain.txt").st_mode & 0o777


def test_concurrent_writers_of_one_file(tmp_path):
    path = tmp_path / "shared.json"
    errors = []

    def write(i):
        try:
            for _ in range(20):
                atomic.write_json(path, {"writer": i, "pad": "x" * 10_000})
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and json.loads(path.read_text())["writer"] in range(4) and _leftovers(tmp_path) == []


def test_temp_folder_is_removed_after_success_and_failure(tmp_path):
    final = tmp_path / "shard"
    with atomic.temp_folder(tmp_path, "shard") as tmp:
        assert tmp.is_dir() and tmp.name.startswith(".tmp-shard-")
        (tmp / "x.npy").write_bytes(b"1")
        os.replace(tmp, final)
    with pytest.raises(ValueError), atomic.temp_folder(tmp_path, "shard") as tmp:
        (tmp / "y").write_bytes(b"2")
        raise ValueError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard"] and (final / "x.npy").read_bytes() == b"1"
