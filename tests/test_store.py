"""The store: atomic shards, integrity checks, and mismatches reported, never read as valid."""
import json

import numpy as np
import pytest

from conftest import synthetic_store
from nait_core.store import Store, StoreError, list_stores

MANIFEST = {"model": {"name": "m", "fingerprint": "f", "dtype": "float32"},
            "data": {"name": "s", "hash": "h0", "n_samples": 5},
            "options": {"reductions": ["mean"], "max_length": 8}, "shape": {"layers": 2, "neurons": 3},
            "shard_size": 3}


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
    store = Store.create(tmp_path / "s", MANIFEST)
    with pytest.raises(StoreError, match="incomplete, 2 of 2 shards missing"):
        Store.open(tmp_path / "s")


def test_changed_bytes_are_detected(tmp_path):
    make_store(tmp_path / "s")
    file = next((tmp_path / "s").glob("shard-*/mean.npy"))
    raw = bytearray(file.read_bytes())
    raw[-1] ^= 0xFF
    file.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="checksum mismatch"):
        Store.open(tmp_path / "s")


def test_truncated_and_missing_files_are_detected(tmp_path):
    make_store(tmp_path / "s")
    shard = sorted((tmp_path / "s").glob("shard-*"))[1]
    (shard / "mean.npy").write_bytes((shard / "mean.npy").read_bytes()[:100])
    with pytest.raises(StoreError, match="corrupt|shape"):
        Store.open(tmp_path / "s", verify=False)
    (shard / "mean.npy").unlink()
    with pytest.raises(StoreError, match="missing"):
        Store.open(tmp_path / "s")


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
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["format_version"] == 1
