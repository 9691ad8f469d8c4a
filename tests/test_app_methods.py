"""Which methods the app offers for a pool: the registry's target-scoring methods it can serve, with why not."""

import pytest

from nait_core import methods
from nait_testing.stores import synthetic_store
from studio.select_page import unavailable_note
from studio.session import fallback_note, unavailable_methods

pytestmark = pytest.mark.unit


def test_stores_without_hidden_states_do_not_offer_rds_and_say_why(tmp_path):
    pool, _ = synthetic_store(tmp_path / "pool", n=6)  # as an older nait wrote: no hidden_size in the manifest
    target, _ = synthetic_store(tmp_path / "target", n=3, seed=1)
    unavailable = unavailable_methods(pool, [target])
    assert list(unavailable) == ["rds"]  # embed's encoder is installed here; every neuron method reads these stores
    assert str(pool.path) in unavailable["rds"] and "final hidden state" in unavailable["rds"]
    assert "recapture" in unavailable_note(unavailable) and unavailable_note(unavailable).startswith(
        "rds is not offered"
    )
    for store in (pool, target):  # stores that keep the final hidden state (what `nait capture` writes now)
        store.manifest["hidden_size"] = 4
    assert unavailable_methods(pool, [target]) == {}
    offered = [m for m in methods.names() if methods.get(m).target]
    assert "rds" in offered and "embed" in offered and "random" not in offered


def test_the_note_groups_methods_by_reason():
    note = unavailable_note({"jaccard": "compact", "overlap-z": "compact", "rds": "old stores"})
    assert note == "jaccard, overlap-z are not offered: compact. rds is not offered: old stores."
    assert unavailable_note({}) == ""


def test_a_method_the_stores_cannot_serve_falls_back_with_the_true_reason(tmp_path):
    pool, _ = synthetic_store(tmp_path / "pool", n=6)  # no final hidden state, as an older nait wrote
    target, _ = synthetic_store(tmp_path / "target", n=3, seed=1)
    note = fallback_note("rds", unavailable_methods(pool, [target]))  # what `session.show` says for ?method=rds
    assert note.startswith("rds cannot score this pool: it reads each record's final hidden state")
    assert str(pool.path) in note and "recapture" in note and note.endswith("Using overlap.")
    assert "compact" not in note  # the compact pool's reason was said for every method before
