"""The store: atomic shards, integrity checks, and mismatches reported, never read as valid."""

import json

import numpy as np
import pytest

from nait_core.store import FORMAT_VERSION, Store, StoreError, list_stores
from nait_testing.stores import synthetic_store

pytestmark = pytest.mark.unit
MANIFEST = {
    "model": {"name": "m", "fingerprint": "f", "dtype": "float32"},
    "data": {"name": "s", "hash": "h0", "n_samples": 5},
    "options": {"reductions": ["mean"], "max_length": 8},
    "shape": {"layers": 2, "neurons": 3},
    "shard_size": 3,
}


def make_store(path):
    store, data = synthetic_store(path)
    return store, data["mean"]


def test_round_trip_and_random_access(tmp_path):
    store, data = make_store(tmp_path / "s")
    np.testing.assert_array_equal(store.rows("mean", [4, 0, 3]), data[[4, 0, 3]].astype(np.float32))
    np.testing.assert_array_equal(store.neuron_values("mean", 1, 2), data[:, 1, 2].astype(np.float32))
    np.testing.assert_allclose(store.mean("mean"), data.astype(np.float64).mean(0), rtol=1e-6)
    assert (tmp_path / "s" / "pool-mean-mean.npy").exists()
    assert list(store.per_sample("tokens")) == [0, 1, 2, 3, 4]
    assert list_stores(tmp_path)[0]["complete"]


def test_incomplete_store_is_refused(tmp_path):
    Store.create(tmp_path / "s", MANIFEST)
    with pytest.raises(StoreError, match="incomplete, 2 of 2 shards missing"):
        Store.open(tmp_path / "s")


def test_changed_bytes_are_detected(tmp_path):
    make_store(tmp_path / "s")
    file = next((tmp_path / "s").glob("shard-*/mean.npy"))
    raw = bytearray(file.read_bytes())
    raw[-1] ^= 0xFF
    file.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="checksum mismatch"):
        Store.open(tmp_path / "s", verify=True)


def test_truncated_and_missing_files_are_detected(tmp_path):
    make_store(tmp_path / "s")
    shard = sorted((tmp_path / "s").glob("shard-*"))[1]
    (shard / "mean.npy").write_bytes((shard / "mean.npy").read_bytes()[:100])
    with pytest.raises(StoreError, match="corrupt|shape"):
        Store.open(tmp_path / "s", verify=False)
    (shard / "mean.npy").unlink()
    with pytest.raises(StoreError, match="missing"):
        Store.open(tmp_path / "s")
    with pytest.raises(StoreError, match=r"shard-000000003-000000005.*nait verify --repair"):
        Store.open(tmp_path / "s")  # names the shard and how to recapture it


def test_bad_manifest_and_mismatch(tmp_path):
    make_store(tmp_path / "s")
    with pytest.raises(StoreError, match="other inputs"):
        Store.create(tmp_path / "s", {**MANIFEST, "data": {**MANIFEST["data"], "hash": "other"}})
    (tmp_path / "s" / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="corrupt"):
        Store.open(tmp_path / "s")
    with pytest.raises(StoreError, match="no store"):
        Store.open(tmp_path / "nothing")


def test_store_files_are_plain_numpy(tmp_path):
    make_store(tmp_path / "s")
    for file in (tmp_path / "s").glob("shard-*/*.npy"):
        np.load(file, allow_pickle=False)  # never needs pickle
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["format_version"] == FORMAT_VERSION


# ---- cheap reopen, honest integrity (issue 9 item 2)


def _flip(file, offset=-1):
    raw = bytearray(file.read_bytes())
    raw[offset] ^= 0xFF
    file.write_bytes(bytes(raw))


def test_open_checks_sizes_not_bytes_and_verify_catches_a_flip(tmp_path):
    store, data = make_store(tmp_path / "s")
    file = tmp_path / "s" / "shard-000000003-000000005" / "mean.npy"
    _flip(file)
    Store.open(tmp_path / "s")  # cheap: headers and sizes still right, bytes not hashed
    report = store.verify()
    assert [d["range"] for d in report["damaged_shards"]] == [[3, 5]]
    assert (
        "checksum mismatch" in report["damaged_shards"][0]["problem"]
        and str(file) in report["damaged_shards"][0]["problem"]
    )
    store.verify(repair=True)
    assert store.missing_ranges() == [(3, 5)]  # removed: the same capture command recaptures just it
    assert not list((tmp_path / "s").glob(".trash-*"))


def test_damage_after_open_is_caught_by_the_first_read(tmp_path):
    make_store(tmp_path / "s")
    store = Store.open(tmp_path / "s")
    shard = tmp_path / "s" / "shard-000000000-000000003"
    (shard / "mean.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(StoreError, match=r"shard-000000000-000000003/mean.npy: unreadable.*nait verify --repair"):
        store.rows("mean", [0])


def test_appended_bytes_and_wrong_header_are_caught_at_open(tmp_path):
    make_store(tmp_path / "s")
    file = tmp_path / "s" / "shard-000000000-000000003" / "tokens.npy"
    file.write_bytes(file.read_bytes() + b"\0")
    with pytest.raises(StoreError, match="bytes, its header says"):
        Store.open(tmp_path / "s")
    np.save(file, np.zeros(4, np.int32))  # a valid .npy of the wrong length
    with pytest.raises(StoreError, match=r"shape \(4,\), expected \(3,\)"):
        Store.open(tmp_path / "s")


# ---- derived caches in the store's contract (issue 9 item 5, issue 10 item 2)


def test_damaged_pool_mean_cache_is_recomputed_not_used(tmp_path):
    store, data = make_store(tmp_path / "s")
    truth = store.mean("mean").copy()
    entry = json.loads((tmp_path / "s" / "caches.json").read_text())["pool-mean-mean"]
    assert entry["inputs"]["store"] == store.content_id and len(entry["sha256"]) == 64
    _flip(tmp_path / "s" / "pool-mean-mean.npy")
    assert [name for name, _ in Store.open(tmp_path / "s").damaged_caches()] == ["pool-mean-mean"]
    with pytest.warns(UserWarning, match="pool-mean-mean.*fails its checksum"):
        again = Store.open(tmp_path / "s").mean("mean")
    np.testing.assert_array_equal(again, truth)
    assert not Store.open(tmp_path / "s").damaged_caches()  # recomputed and listed again


def test_caches_are_invalidated_when_their_shards_change(tmp_path):
    store, data = make_store(tmp_path / "s")
    store.mean("mean")
    new = np.ones((2, 2, 3), np.float16)
    store.write_shard(
        3,
        5,
        {
            "mean": new,
            "tokens": np.zeros(2, np.int32),
            "response_tokens": np.zeros(2, np.int32),
            "truncated": np.zeros(2, bool),
        },
    )
    reopened = Store.open(tmp_path / "s")
    assert reopened.load_cached_array("pool-mean-mean") is None  # made from other shards: not used
    expected = np.concatenate([data[:3], new]).astype(np.float64).mean(0)
    np.testing.assert_allclose(reopened.mean("mean"), expected, rtol=1e-6)


def test_unlisted_legacy_cache_is_not_trusted(tmp_path):
    store, data = make_store(tmp_path / "s")
    np.save(tmp_path / "s" / "pool-mean-mean.npy", np.full((2, 3), 99, np.float32))  # an old, unlisted file
    np.testing.assert_allclose(store.mean("mean"), data.astype(np.float64).mean(0), rtol=1e-6)


# ---- resume granularity and concurrent writers (issue 10 items 7 and 8)


def test_default_shard_size_keeps_most_work_of_any_run():
    from nait_core.store import default_shard_size

    assert default_shard_size(100) == 32 and default_shard_size(1100) == 69 and default_shard_size(52_000) == 512
    assert all(-(-n // default_shard_size(n)) >= min(16, -(-n // 32)) for n in range(1, 20_000, 97))


def test_create_keeps_the_existing_shard_size(tmp_path):
    Store.create(tmp_path / "s", MANIFEST)
    again = Store.create(
        tmp_path / "s", {**MANIFEST, "shard_size": 2, "data": {**MANIFEST["data"], "name": "other name"}}
    )
    assert again.shard_size == 3


WRITER = r"""
import sys, time, numpy as np
sys.path.insert(0, sys.argv[3])
from nait_core.store import Store  # numpy only: no torch (tests/test_imports.py)
store = Store.create(sys.argv[1], {"model": {"name": "m", "fingerprint": "f", "dtype": "float32"},
    "data": {"name": "s", "hash": "h", "n_samples": 60}, "options": {"reductions": ["mean"], "max_length": 8},
    "shape": {"layers": 2, "neurons": 3}, "shard_size": 3})
def arrays(s, e):
    return {"mean": np.full((e - s, 2, 3), s, np.float16), "tokens": np.arange(s, e, dtype=np.int32),
            "response_tokens": np.ones(e - s, np.int32), "truncated": np.zeros(e - s, bool)}
if sys.argv[2] == "race":  # both write every shard, several times: no error, one intact copy each
    for _ in range(3):
        for s, e in store.shard_ranges():
            store.write_shard(s, e, arrays(s, e))
else:  # share: each computes only shards nobody else has claimed
    with open(sys.argv[2], "a") as log:
        for s, e in store.claim_missing():
            log.write(f"{s}\n"); log.flush()
            time.sleep(0.02)
            store.write_shard(s, e, arrays(s, e))
"""


def _two_writers(tmp_path, mode):
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "s"), mode, root], stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    store = Store.open(tmp_path / "s", verify=True)
    assert not store.verify()["damaged_shards"]
    assert not list((tmp_path / "s").glob(".tmp-*")) and not list((tmp_path / "s").glob(".trash-*"))
    for s, _end in store.shard_ranges():
        assert store.rows("mean", [s])[0, 0, 0] == s
    return store


def test_two_processes_writing_the_same_shards_do_not_race(tmp_path):
    _two_writers(tmp_path, "race")


def test_two_processes_share_the_missing_shards(tmp_path):
    log = tmp_path / "log.txt"
    store = _two_writers(tmp_path, str(log))
    computed = [int(x) for x in log.read_text().split()]
    assert sorted(computed) == [s for s, _ in store.shard_ranges()]  # every shard computed exactly once


def test_reads_are_float32_in_order_on_every_reader_thread_and_never_write_the_file(tmp_path):
    store, data = synthetic_store(tmp_path / "s", n=50, layers=3, neurons=8, reductions=("mean", "last"), shard_size=7)
    for threads in (1, 2, 3):
        seen = {}
        store.map_chunks(
            ("mean", "last"),
            lambda start, mean, last, seen=seen: seen.update({start: (mean.copy(), last.copy())}),
            rows=4,
            threads=threads,
        )
        starts = sorted(seen)
        np.testing.assert_array_equal(np.concatenate([seen[s][0] for s in starts]), data["mean"].astype(np.float32))
        np.testing.assert_array_equal(np.concatenate([seen[s][1] for s in starts]), data["last"].astype(np.float32))
    # The memory map is copy-on-write: a stray write stays in this process; the file and its checksum hold.
    chunk = next(store.iter_chunks("mean", dtype=None))[1]
    chunk[0] = 99
    assert Store.open(store.path, verify=True).rows("mean", [0])[0, 0, 0] == data["mean"][0, 0, 0]
