"""The store's layers: one identity rule, one rule for derived summaries, a location object per kind."""

import numpy as np
import pytest

from nait_core.features import layer_summary, summary
from nait_core.scoring import chunk_names
from nait_core.store import Store, StoreError, derive, identity, readable, sources
from nait_core.store.location import Local, Remote
from nait_core.store.manifest import differences, identity_digest
from nait_testing.stores import synthetic_store

pytestmark = pytest.mark.unit


def test_one_identity_rule_for_the_folder_name_the_shards_and_reuse(tmp_path):
    store, _ = synthetic_store(tmp_path / "s", n=4)
    renamed = {**store.manifest, "model": {**store.manifest["model"], "name": "other"}, "shard_size": 99}
    # Display names and the shard size are not the store's identity; the records' hash is.
    assert identity(renamed) == identity(store.manifest) and identity_digest(renamed) == store.identity
    edited = {**store.manifest, "data": {**store.manifest["data"], "hash": "h9"}}
    assert differences(edited, store.manifest) == [("data.hash", "h9", "h0")]
    with pytest.raises(StoreError, match="other inputs already lives here"):
        Store.create(tmp_path / "s", edited)
    assert Store.create(tmp_path / "s", renamed).shard_size == store.shard_size  # reopened, its own shard size


def test_last_first_is_derived_from_last_and_first_unless_stored(tmp_path):
    parts, _ = synthetic_store(tmp_path / "parts", n=5, reductions=("last", "first"))
    assert sources("last-first", parts.reductions) == ("last", "first") == chunk_names(parts, "last-first")
    assert readable("last-first", parts.reductions) and not readable("last-first", ["last", "mean"])
    assert sources("last-first", ["last-first", "last", "first"]) == ("last-first",)
    rows = [4, 0, 2]
    want = parts.rows("last", rows) - parts.rows("first", rows)
    np.testing.assert_array_equal(summary(parts, "last-first", rows), want)
    np.testing.assert_array_equal(layer_summary(parts, "last-first", 1, rows), want[:, 1])
    assert derive("mean", ["mean"], lambda name: name) == "mean"
    with pytest.raises(StoreError, match="'mean' was not captured"):
        summary(parts, "mean", rows)


def test_a_location_per_kind(tmp_path):
    store, _ = synthetic_store(tmp_path / "s", n=4, shard_size=2)
    assert isinstance(store.place, Local) and store.url is None and store.location == tmp_path / "s"
    assert store.place.written(["shard-000000000-000000002", "shard-000000002-000000004", "nope"]) == {
        "shard-000000000-000000002",
        "shard-000000002-000000004",
    }
    remote = Remote("memory://bucket/stores/x/")
    assert (
        remote.url == "memory://bucket/stores/x" and remote.location == remote.url and remote.path.name.endswith("-x")
    )
