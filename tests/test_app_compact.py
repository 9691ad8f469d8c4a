"""The app on a compact pool (`NAIT_SKETCH=K`): the small demo's pool projected to K = 64 per layer with a
40-record exact sample, written under the keys `nait capture --sketch 64 --exact-sample 40` uses (no model
needed for that: `nait_testing.app.compact_demo`). Every page renders, says what is exact and what is
approximate, offers no jaccard, and a record outside the exact sample gets its neuron view from a live pass.

Slow: the `demo` fixture captures the small demo with the bundled model (reused from NAIT_APP_TEST_STORE).
"""

from __future__ import annotations

import numpy as np
import pytest

from nait_testing.app import PAGES, check, compact_demo, open_page, widget
from nait_testing.demo import TARGET_SIZE

pytestmark = pytest.mark.slow

K, SAMPLE = 64, 40


@pytest.fixture(scope="module")
def root(demo, tmp_path_factory):
    """A store folder of its own: the demo's exact pool, targets and features copied from the `demo` one, so
    the compact stores written here never meet the other tests' (which find the demo pool by its name)."""
    import shutil

    own = tmp_path_factory.mktemp("compact-stores")
    for path in demo.iterdir():
        if path.is_dir() and (path.name == "features" or "--demo-" in path.name or f"-n{TARGET_SIZE}-" in path.name):
            shutil.copytree(path, own / path.name)
    return own


@pytest.fixture()
def compact(root, monkeypatch):
    """The compact demo pool and its exact sample, and the app pointed at it."""
    pool, sample, rows = compact_demo(root, K, SAMPLE)
    monkeypatch.setenv("NAIT_STORE_DIR", str(root))
    monkeypatch.setenv("NAIT_SKETCH", str(K))
    monkeypatch.setenv("NAIT_EXACT_SAMPLE", str(SAMPLE))
    return pool, sample, rows


def captions(at) -> str:
    return "\n".join(c.value for c in at.caption)


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_on_a_compact_pool_and_says_what_is_exact(compact, page):
    pool, sample, rows = compact
    at = open_page(page)
    assert not at.error, [e.value for e in at.error]
    studio = at.session_state["studio"]
    assert studio.compact and studio.pool_store.path == pool.path  # the app found the compact store, no capture
    assert studio.pool_store.width == K and studio.neuron_store.path == sample.path
    text = captions(at)
    assert f"Compact pool · K = {K}" in text and "**Approximate:**" in text  # the same line on every page
    assert f"over the {SAMPLE}-record exact sample of 120 records" in text
    if page == "data":
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["Pool summaries"] == f"compact, K = {K}" and metrics["Exact sample"] == f"{SAMPLE} records"
    if page == "map":  # the map places the exact sample (as pool rows) and every target sample
        assert any(f"Map of the {SAMPLE}-record exact sample" in i.value for i in at.info)
        coords = studio.map()
        assert sorted(coords[coords["group"] < 0]["index"]) == list(rows)
    if page == "neurons":  # every pool value comes from the exact sample; its top records are pool rows in it
        top = next(d.value for d in at.dataframe if {"map", "activation"} <= set(d.value.columns))
        shown = [int(str(r).rsplit("=", 1)[-1]) for r in top["row"]]
        assert set(shown) <= set(rows.tolist())


def test_select_offers_no_jaccard_and_explains_sample_rows_by_neurons(compact):
    _, _, rows = compact
    at = open_page("select")
    # rds reads a compact pool too, but this one was projected from the exact store without its hidden states
    # (compact_demo), as a store of an older nait: not offered, and the page says why
    assert list(widget(at, "select_method").options) == ["overlap", "nait-pca", "embed"]
    (note,) = [c.value for c in at.caption if "not offered" in c.value]
    assert note.startswith("overlap-balanced, overlap-z, jaccard, overlap-max are not offered: a compact pool (K")
    assert "rds is not offered: it reads each record's final hidden state" in note and "recapture" in note
    table = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    inside = table["row"].isin(rows)
    assert table.loc[inside, "reason"].str.contains("neurons L").all()
    assert table.loc[~inside, "reason"].str.contains("not in the exact sample").all()
    widget(at, "select_method").set_value("nait-pca").run()
    check(at)
    assert not at.error, [e.value for e in at.error]


def test_jaccard_chosen_before_falls_back_to_overlap(compact):
    from nait_core.scoring import ScoreOptions
    from studio.session import Settings

    at = open_page("data")
    at.session_state["studio_settings"] = Settings(ScoreOptions("jaccard"))  # e.g. from an exact pool or a link
    at.switch_page("pages/neurons.py").run()
    check(at)
    assert not at.error, [e.value for e in at.error]
    assert any("jaccard cannot score this pool: a compact pool" in i.value for i in at.info)
    assert at.session_state["studio_settings"].options.method == "overlap"


def test_a_record_outside_the_exact_sample_gets_its_neurons_from_a_live_pass(compact, root):
    from nait_core.store import Store

    pool, sample, rows = compact
    outside = next(r for r in range(120) if r not in set(rows.tolist()))
    inside = int(rows[3])
    at = open_page("samples")
    widget(at, "samples_row").set_value(inside).run()
    check(at)
    assert any(f"exact, from the {SAMPLE}-record exact sample (its row 3)" in c.value for c in at.caption)
    widget(at, "samples_row").set_value(outside).run()
    check(at)
    assert any(f"Record {outside} is not in the {SAMPLE}-record exact sample" in i.value for i in at.info)
    widget(at, "samples_exact_live").set_value(True).run()  # loads the model: one live pass of the record
    check(at)
    assert not at.error, [e.value for e in at.error]
    assert any("from a live forward pass" in c.value for c in at.caption)
    top = next(d.value for d in at.dataframe if any(c.startswith("share of score:") for c in d.value.columns))
    assert len(top) == 20
    # the live pass gives the values the exact capture stored for that record (float16, other batch padding)
    demo_stores = [Store.open(p) for p in sorted(root.glob("*--demo-120--*"))]
    exact = next(s for s in demo_stores if "sketch" not in s.manifest["options"])  # the demo's exact pool
    live = at.session_state["studio"].live_summaries(outside)["mean"]
    assert np.allclose(live, exact.rows("mean", [outside])[0], atol=0.05, rtol=0.05)


def test_a_compact_pool_without_exact_sample_says_why(root, monkeypatch):
    compact_demo(root, K, 0)
    monkeypatch.setenv("NAIT_STORE_DIR", str(root))
    monkeypatch.setenv("NAIT_SKETCH", str(K))
    monkeypatch.setenv("NAIT_EXACT_SAMPLE", "0")
    for page in ["neurons", "map", "samples", "transfer", "select"]:
        at = open_page(page)
        text = "\n".join(m.value for m in [*at.error, *at.warning, *at.caption])
        if page in ("neurons", "map"):
            assert "has no exact sample (captured with --exact-sample 0)" in text
        else:  # the rest of the page still draws
            assert at.get("plotly_chart")


def test_the_sidebar_opens_the_compact_pool(compact, monkeypatch):
    """From an exact session, the sidebar's K and exact-sample boxes open the compact store (no capture)."""
    pool, sample, _ = compact
    monkeypatch.delenv("NAIT_SKETCH")
    monkeypatch.delenv("NAIT_EXACT_SAMPLE")
    at = open_page("data")
    assert not at.session_state["studio"].compact
    widget(at, "sb_sketch").set_value(K)
    widget(at, "sb_exact_sample").set_value(SAMPLE)
    at.button(key="FormSubmitter:sb_form-Load").click().run()
    check(at)
    studio = at.session_state["studio"]
    assert studio.compact and studio.pool_store.path == pool.path and studio.neuron_store.path == sample.path
    assert any(f"**Compact pool** K = {K}" in c.value for c in at.sidebar.caption)
    assert {m.label: m.value for m in at.metric}["Pool summaries"] == f"compact, K = {K}"


def test_a_bad_sketch_in_the_environment_is_said_and_the_pool_opens_exact(root, monkeypatch):
    monkeypatch.setenv("NAIT_STORE_DIR", str(root))
    monkeypatch.setenv("NAIT_SKETCH", "lots")
    at = open_page("data")
    assert any("NAIT_SKETCH must be a whole number, not 'lots'" in e.value for e in at.error)
    assert not at.session_state["studio"].compact
