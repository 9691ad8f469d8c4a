"""Stores at an fsspec URL (issue 9 item 6): written shard by shard from any machine, read through a
verified local mirror. `memory://` stands in for object storage (no rename, no locks, no shared disk)."""

import shutil
import uuid

import fsspec
import numpy as np
import pytest

from nait_core.store import Store, StoreError, mirror_folder
from nait_testing.stores import synthetic_store

pytestmark = pytest.mark.unit


@pytest.fixture
def url(tmp_path, monkeypatch):
    monkeypatch.setenv("NAIT_CACHE", str(tmp_path / "cache"))  # the local mirrors of this test only
    yield f"memory://bucket-{uuid.uuid4().hex[:8]}/stores/s"


def _write(url, n=7, shard_size=3):
    manifest = {
        "model": {"name": "m", "fingerprint": "f", "dtype": "float32"},
        "data": {"name": "s", "hash": "h", "n_samples": n},
        "options": {"reductions": ["mean"], "max_length": 8},
        "shape": {"layers": 2, "neurons": 3},
        "shard_size": shard_size,
    }
    data = np.random.default_rng(0).normal(size=(n, 2, 3)).astype(np.float16)
    return manifest, data


def _shard(data, s, e):
    return {
        "mean": data[s:e],
        "tokens": np.arange(s, e, dtype=np.int32),
        "response_tokens": np.ones(e - s, np.int32),
        "truncated": np.zeros(e - s, bool),
    }


def test_two_writers_without_a_shared_disk_fill_one_remote_store(url):
    manifest, data = _write(url)
    first = Store.create(url, manifest)
    assert first.url == url and first.path == mirror_folder(url)
    first.write_shard(0, 3, _shard(data, 0, 3))
    shutil.rmtree(mirror_folder(url))  # the second "machine" has no copy of the first one's disk
    second = Store.create(url, manifest)
    assert second.missing_ranges() == [(3, 6), (6, 7)]  # it sees the first machine's shard remotely
    for s, e in second.claim_missing():
        second.write_shard(s, e, _shard(data, s, e))
    shutil.rmtree(mirror_folder(url))
    reader = Store.open(url)  # downloads every shard, checking each file's sha256
    np.testing.assert_array_equal(reader.rows("mean", range(7)), data.astype(np.float32))
    np.testing.assert_allclose(reader.mean("mean"), data.astype(np.float64).mean(0), rtol=1e-6)
    assert not reader.verify()["damaged_shards"]


def test_a_damaged_remote_shard_is_never_mirrored_and_can_be_recaptured(url):
    manifest, data = _write(url)
    store = Store.create(url, manifest)
    for s, e in store.shard_ranges():
        store.write_shard(s, e, _shard(data, s, e))
    fs = fsspec.filesystem("memory")
    remote = url.removeprefix("memory://") + "/shard-000000003-000000006/mean.npy"
    raw = bytearray(fs.cat_file(remote))
    raw[-1] ^= 0xFF
    fs.pipe_file(remote, bytes(raw))
    shutil.rmtree(mirror_folder(url))
    with pytest.raises(
        StoreError, match=r"shard-000000003-000000006/mean.npy: checksum mismatch.*nait verify --repair"
    ):
        Store.open(url)
    report = Store.existing(url).verify(repair=True)
    assert [d["range"] for d in report["damaged_shards"]] == [[3, 6]]
    again = Store.create(url, manifest)
    assert again.missing_ranges() == [(3, 6)]
    again.write_shard(3, 6, _shard(data, 3, 6))
    np.testing.assert_array_equal(Store.open(url, verify=True).rows("mean", range(7)), data.astype(np.float32))


def test_file_urls_work_like_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("NAIT_CACHE", str(tmp_path / "cache"))
    store, data = synthetic_store(tmp_path / "local")
    url = f"file://{tmp_path}/remote"
    remote = Store.create(url, store.manifest)
    for s, e in remote.shard_ranges():
        remote.write_shard(
            s,
            e,
            {
                n: store._array(sh, n)
                for sh in store.shards()
                if sh.start == s
                for n in ["mean", "tokens", "response_tokens", "truncated"]
            },
        )
    assert sorted(p.name for p in (tmp_path / "remote").iterdir())[0] == "manifest.json"
    np.testing.assert_array_equal(Store.open(url).rows("mean", range(5)), data["mean"].astype(np.float32))
