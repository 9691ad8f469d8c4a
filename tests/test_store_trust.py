"""Stores that trust nothing they read (issue 21 items 3, 4, 7 and 8): cache entries that name files outside
the store, shards copied in from another store, edited or ill-typed manifests, model files rewritten in
place, read-only folders, full disks and what killed writers leave behind."""

import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

from nait_core import atomic
from nait_core.cli import main
from nait_core.features import STORE_FEATURE
from nait_core.models import model_fingerprint
from nait_core.pipeline import feature_for, feature_path
from nait_core.store import CacheWarning, Store, StoreError, shard_name
from nait_testing.mounts import read_only, tiny_disk
from nait_testing.stores import synthetic_store

pytestmark = pytest.mark.unit


def _caches(store):
    return json.loads((store.path / "caches.json").read_text())


def _list_cache(store, name, file):
    """A caches.json entry, written by hand as a hostile teammate would, naming `file`."""
    caches = _caches(store) if (store.path / "caches.json").exists() else {}
    caches[name] = {"file": str(file), "sha256": "0" * 64, "size": 1, "inputs": store.cache_inputs()}
    (store.path / "caches.json").write_text(json.dumps(caches))


# ---- 1. cache entries are plain names inside the store, else refused, never followed or deleted


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink", "hidden", "manifest"])
def test_a_cache_entry_can_never_delete_or_read_a_file_outside_the_store(tmp_path, kind, capsys):
    store, data = synthetic_store(tmp_path / "s")
    victim = tmp_path / "teammate.npy"
    np.save(victim, np.full((2, 3), 99, np.float32))
    named = {
        "absolute": str(victim),
        "dotdot": "../teammate.npy",
        "symlink": "link.npy",
        "hidden": ".locks",
        "manifest": "manifest.json",
    }[kind]
    if kind == "symlink":
        os.symlink(victim, store.path / "link.npy")
    _list_cache(store, "pool-mean-mean", named)
    before = sorted(p.name for p in store.path.iterdir())

    # `nait select` reusing a pool-mean entry: the entry is ignored, the mean recomputed, nothing deleted
    np.testing.assert_allclose(store.mean("mean"), data["mean"].astype(np.float64).mean(0), rtol=1e-6)
    assert victim.exists() and np.load(victim)[0, 0] == 99
    assert _caches(store)["pool-mean-mean"]["file"] == "pool-mean-mean.npy"  # replaced by the store's own

    _list_cache(store, "bad", named)  # `nait verify` reports the entry; --repair drops the entry only
    assert main(["verify", str(store.path)]) == 2
    assert "cache 'bad' refused" in capsys.readouterr().out
    assert main(["verify", "--repair", str(store.path)]) == 0
    assert "bad" not in _caches(store) and victim.exists() and np.load(victim)[0, 0] == 99
    assert (store.path / "manifest.json").exists() and (store.path / ".locks").is_dir()
    assert set(before) <= {p.name for p in store.path.iterdir()}
    store.drop_cache("pool-mean-mean")  # the store's own file goes; outside, nothing
    assert victim.exists()


def test_record_cache_refuses_a_file_outside_the_store(tmp_path):
    store, _ = synthetic_store(tmp_path / "s")
    (tmp_path / "x.npy").write_bytes(b"x")
    with pytest.raises(ValueError, match="plain file inside"):
        store.record_cache("x", tmp_path / "x.npy")


def test_a_target_feature_lives_inside_its_store_and_nait_info_lists_it(tmp_path, capsys):
    root = tmp_path / "stores"
    store, _ = synthetic_store(root / "t", reductions=("mean", "last", "first"), n=6)
    feature_for(store, root)
    assert feature_path(store) == store.path / STORE_FEATURE and _caches(store)["feature"]["file"] == STORE_FEATURE
    assert not (root / "features").exists()
    assert main(["info", "--store-dir", str(root), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["features"]
    assert [f["path"] for f in listed] == [str(store.path / STORE_FEATURE)]
    # Same mode as the shards' files (0644 less umask): safetensors' own writer made features 0600.
    shard_file = store.path / shard_name(0, 3) / "mean.npy"
    assert (store.path / STORE_FEATURE).stat().st_mode & 0o777 == shard_file.stat().st_mode & 0o777


# ---- 2. shard checksums bind to the store and the range


def test_a_shard_copied_from_another_store_of_the_same_shape_is_damaged(tmp_path, capsys):
    ours, _ = synthetic_store(tmp_path / "ours", seed=0)
    theirs, _ = synthetic_store(tmp_path / "theirs", seed=1)  # same model, shape and shard size; other records
    name = shard_name(0, 3)
    shutil.rmtree(ours.path / name)
    shutil.copytree(theirs.path / name, ours.path / name)
    with pytest.raises(StoreError, match="belongs to another store"):
        Store.open(ours.path)  # the cheap check already: one small field compared
    with pytest.raises(StoreError, match="belongs to another store"):
        Store.open(ours.path, verify=True)
    assert main(["verify", str(ours.path)]) == 2
    assert f"{name}/checksums.json: belongs to another store" in capsys.readouterr().out


def test_a_shard_copied_to_another_range_of_its_store_is_damaged(tmp_path):
    store, _ = synthetic_store(tmp_path / "s", n=6)
    shutil.rmtree(store.path / shard_name(3, 6))
    shutil.copytree(store.path / shard_name(0, 3), store.path / shard_name(3, 6))
    with pytest.raises(StoreError, match="holds range \\[0, 3\\], not 3-6"):
        Store.open(store.path)


# ---- 3. manifests: structure checked, and against the input on reuse (see test_store_trust_model.py)


@pytest.mark.parametrize(
    "manifest, problem",
    [
        ([], "is a JSON list, not an object"),
        ({}, "field 'model.fingerprint' is missing"),
        ("x", "is a JSON str, not an object"),
        ("edit:n_samples", "field 'data.n_samples' is '50', expected int"),
    ],
)
def test_a_manifest_of_the_wrong_json_type_is_a_clear_error(tmp_path, capsys, manifest, problem):
    root = tmp_path / "stores"
    store, _ = synthetic_store(root / "s")
    if manifest == "edit:n_samples":
        manifest = {**store.manifest, "data": {**store.manifest["data"], "n_samples": "50"}}
    (store.path / "manifest.json").write_text(json.dumps(manifest))
    for argv in (["verify", str(store.path)], ["info", "--store-dir", str(root)]):
        code = main(argv)
        out = capsys.readouterr()
        assert f"{store.path}/manifest.json: {problem}" in out.out + out.err, argv
        assert code == (2 if argv[0] == "verify" else 0)
    with pytest.raises(StoreError, match="delete the store folder to recapture"):
        Store.open(store.path)
    with pytest.raises(StoreError, match=problem.replace("[", "\\[")):
        Store.create(store.path, {**store.manifest, "format_version": None})


# ---- 4. model identity covers every byte


def test_a_weight_file_rewritten_in_place_changes_the_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setenv("NAIT_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    weights = folder / "model.safetensors"
    weights.write_bytes(np.random.default_rng(0).bytes(5 << 20))
    first = model_fingerprint(str(folder))
    assert model_fingerprint(str(folder)) == first  # the second time from the digest cache
    assert str(weights.resolve()) in json.loads((tmp_path / "cache" / "digests.json").read_text())
    stat = weights.stat()
    with open(weights, "r+b") as f:  # a merged LoRA: the middle rewritten, same size, same inode
        f.seek(2 << 20)
        f.write(b"\x00" * 1024)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the old mtime put back
    assert weights.stat().st_size == stat.st_size and weights.stat().st_mtime_ns == stat.st_mtime_ns
    assert model_fingerprint(str(folder)) != first


# ---- 5. read-only folders and full disks


def test_a_read_only_store_is_read_without_writing_caches(tmp_path):
    store, data = synthetic_store(tmp_path / "s", reductions=("mean", "last", "first"), n=6)
    with read_only(store.path):
        reopened = Store.open(store.path)
        with pytest.warns(CacheWarning, match="cannot write derived caches here"):
            mean = reopened.mean("mean")
        np.testing.assert_allclose(mean, data["mean"].astype(np.float64).mean(0), rtol=1e-6)
        with pytest.warns(CacheWarning, match="cannot write derived caches here"):
            feature = feature_for(reopened)
        assert feature.profile.shape == (2, 3) and not (store.path / STORE_FEATURE).exists()


def test_a_damaged_cache_in_a_read_only_store_is_recomputed_not_used(tmp_path):
    store, data = synthetic_store(tmp_path / "s")
    store.mean("mean")
    np.save(store.path / "pool-mean-mean.npy", np.full((2, 3), 99, np.float32))  # damaged: fails its checksum
    with read_only(store.path):
        with pytest.warns(CacheWarning):
            mean = Store.open(store.path).mean("mean")
        np.testing.assert_allclose(mean, data["mean"].astype(np.float64).mean(0), rtol=1e-6)


def test_a_new_store_in_a_read_only_folder_is_a_clear_error(tmp_path):
    (tmp_path / "ro").mkdir()
    with read_only(tmp_path / "ro"), pytest.raises(StoreError, match="ro/s: cannot write the store.*writable"):
        synthetic_store(tmp_path / "ro" / "s")


def test_a_full_disk_stops_the_capture_clearly_and_the_store_resumes(tmp_path):
    with tiny_disk(tmp_path / "tiny") as disk:
        store, _ = synthetic_store(disk / "s", n=3, neurons=3)  # small: fits
        big = dict(n=6, layers=4, neurons=8192, shard_size=3, seed=5)
        (disk / "filler").write_bytes(b"\0" * (700 << 10))
        with pytest.raises(StoreError, match="shard 3-6 \\(No space left on device\\); free some space.*same command"):
            synthetic_store(disk / "big", **big)
        assert [p.name for p in (disk / "big").iterdir() if p.name.startswith(".tmp-")] == []
        assert Store.at(disk / "big").missing_ranges() == [(3, 6)]  # the shard written before is kept
        (disk / "filler").unlink()
        resumed, data = synthetic_store(disk / "big", **big)
        assert resumed.complete and Store.open(resumed.path, verify=True).n_samples == 6


# ---- 6. what killed writers leave behind


def _killed_writer(folder, code):
    """Run `code` (with `folder` as `folder`) in a process that dies with `os._exit` halfway through it."""
    script = f"import os, numpy as np\nfrom pathlib import Path\nfrom nait_core import atomic\nfolder = Path({str(folder)!r})\n"
    subprocess.run([sys.executable, "-c", script + code], check=True)


def test_temporaries_of_killed_writers_are_removed_but_a_live_writers_are_kept(tmp_path, capsys):
    store, _ = synthetic_store(tmp_path / "s")
    _killed_writer(store.path, "with atomic.temp_folder(folder, 'shard-000000000-000000003'):\n    os._exit(0)")
    _killed_writer(store.path, "with atomic.replacing(folder / 'pool-mean-mean.npy', '.npy'):\n    os._exit(0)")
    _killed_writer(store.path, "with atomic.replacing(folder / 'feature.safetensors'):\n    os._exit(0)")
    trash = store.path / f".trash-{shard_name(0, 3)}-99999999-1-0123abcd-{atomic.HOST}"  # a pid never running
    trash.mkdir()
    with atomic.temp_folder(store.path, "shard-000000003-000000005") as live:  # this very process: alive
        killed = sorted(p.name for p in store.path.iterdir() if p.name.startswith(".") and p.name != ".locks")
        assert len(killed) == 5
        assert sorted(p.name for p in atomic.leftovers(store.path)) == sorted(set(killed) - {live.name})
        assert main(["verify", str(store.path)]) == 0  # reported, not damage
        assert capsys.readouterr().out.count("left by a killed writer (--repair removes it)") == 4
        assert main(["verify", "--repair", str(store.path)]) == 0
        assert [p.name for p in store.path.iterdir() if p.name.startswith(".") and p.name != ".locks"] == [live.name]
    _killed_writer(store.path, "with atomic.temp_folder(folder, 'shard-000000000-000000003'):\n    os._exit(0)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Store.create(store.path, store.manifest)  # the next run that creates or reopens the store for writing
    assert [p.name for p in store.path.iterdir() if p.name.startswith(".tmp")] == []
