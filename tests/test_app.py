"""The Streamlit app driven by AppTest on a small demo (120 pool records, 16 samples per target).

The stores are captured once, by `nait select` itself; its file is what the Select & export page must
reproduce byte for byte. Slow: the capture takes a few minutes on a CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from nait_testing.app import PAGES, check, downloads, open_page, tmp_data_root, widget  # noqa: F401 (autouse)
from nait_testing.demo import DEMO_SIZE, TARGET_SIZE, TARGETS, nait_select

pytestmark = pytest.mark.slow


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def shows_the_demo(at: AppTest, page: str, demo: Path, tmp_path: Path) -> bool:
    """One fact per page that it can only show when drawn from the demo's stores at the default settings
    (overlap, ratio 0.1, union: what the warm-up `nait select` wrote)."""
    selected = (demo / "warmup.jsonl").read_text().count("\n")
    if page == "data":
        return metrics(at)["Pool records"] == DEMO_SIZE and metrics(at)["Target sets"] == str(len(TARGETS))
    if page == "samples":
        table = at.dataframe[0].value
        return (
            any(f"of {DEMO_SIZE} records match" in m.value for m in at.markdown)
            and table["rank"].iloc[0] == 1
            and int(table["selected"].sum()) == min(selected, len(table))
        )
    if page == "neurons":  # a density per group, and the pool's top records by this neuron's activation
        groups = ["candidates", "selected", *(f"{t}-n{TARGET_SIZE}-s0" for t in TARGETS)]
        top = next(d.value for d in at.dataframe if {"map", "activation"} <= set(d.value.columns))
        return (
            at.subheader[0].value.startswith("Neuron L")
            and len(top) == 10
            and [m.label for m in at.main.metric] == groups
            and top["activation"].is_monotonic_decreasing
        )
    if page == "map":
        return bool(list(demo.glob("*demo*/map-*.npy"))) and "Per-neuron overlap" in [s.value for s in at.subheader]
    if page == "select":
        return int(metrics(at)["Selected records"].replace(",", "")) == selected
    core = nait_select(demo, tmp_path / "core.jsonl", "--ratio", "0.1", "--merge", "intersection").count(b"\n")
    return f"Core subset: {core:,} records chosen for every target" in [s.value for s in at.subheader]  # transfer


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_loads(demo, page, tmp_path):
    at = open_page(page)
    assert not at.error, [e.value for e in at.error]
    if page != "data":
        assert at.get("plotly_chart"), "every page but Data & model draws a chart"
    assert shows_the_demo(at, page, demo, tmp_path)


def test_data_page_shows_setup_and_builds_a_feature(demo):
    at = open_page("data")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Pool records"] == DEMO_SIZE and metrics["Target sets"] == "3"
    assert f"**Pool** demo-{DEMO_SIZE}: {DEMO_SIZE} records of the demo's 1,000 (NAIT_DEMO_SIZE)" in [
        c.value for c in at.sidebar.caption
    ]
    listed = at.dataframe[-1].value  # the feature library: each target store's own feature (kept in the store)
    assert sum(path.endswith("/feature.safetensors") for path in listed["path"]) >= len(TARGETS), listed
    at.slider(key="data_size").set_value(8)
    at.text_input(key="data_name").set_value("gsm8k-eight")
    at.button(key="FormSubmitter:data_build-Build feature").click().run()
    check(at)
    assert any("Built gsm8k-eight from 8 samples" in s.value for s in at.success)
    assert (demo / "features" / "gsm8k-eight.safetensors").exists()


def test_sample_explorer_filters_and_explains(demo):
    at = open_page("samples")
    at.radio(key="samples_status").set_value("selected").run()
    check(at)
    table = at.dataframe[0].value
    assert len(table) == (demo / "warmup.jsonl").read_text().count("\n") and table["selected"].all()
    at.text_input(key="samples_query").set_value("python").run()
    assert "humaneval" in set(at.dataframe[0].value["source"])
    row = int(at.dataframe[0].value.index[0])
    at.number_input(key="samples_row").set_value(row).run()
    assert at.subheader[0].value.startswith(f"Record {row} · humaneval")
    at.radio(key="samples_view").set_value("sample").run()
    at.toggle(key="samples_live").set_value(True).run()  # one live forward pass
    check(at)
    assert len(at.get("plotly_chart")) == 3 and at.get("html")
    at.text_input(key="samples_neuron_id").set_value("L99.N1").run()
    assert any("outside" in e.value for e in at.error)


def test_neuron_explorer(demo):
    at = open_page("neurons")
    assert at.subheader[0].value.startswith("Neuron L")
    at.radio(key="neurons_mode").set_value("any neuron").run()
    at.text_input(key="neurons_id").set_value("L5.N10").run()
    check(at)
    assert at.subheader[0].value == "Neuron L5.N10"
    assert len(at.dataframe) == 1 + len(TARGETS)  # candidates, then each target's top samples
    at.slider(key="neurons_k").set_value(3).run()
    assert all(len(d.value) == 3 for d in at.dataframe)


def test_overlap_map_is_cached_and_filters_samples(demo):
    at = open_page("map")
    assert list(Path(demo).glob("*demo*/map-*.npy")), "map coordinates cached in the pool's store folder"
    at.radio(key="map_color").set_value("source").run()
    at.number_input(key="map_per_layer").set_value(2).run()
    check(at)
    assert len(at.get("plotly_chart")) == 2
    at.session_state["map_filter"] = [0, 1, 2]  # what the lasso's button stores
    at.run()
    check(at)
    assert any("chosen on the map" in c.proto.spec for c in at.get("plotly_chart"))  # a group in the overlap heatmap
    at.switch_page("pages/samples.py").run()
    check(at)
    assert len(at.dataframe[0].value) == 3
    at.switch_page("pages/neurons.py").run()
    check(at)
    assert "chosen on the map" in [m.label for m in at.metric]


@pytest.mark.parametrize(
    "settings, cli_options",
    [
        ({}, ["--ratio", "0.1"]),
        ({"select_ratio": 0.5, "select_merge": "intersection"}, ["--ratio", "0.5", "--merge", "intersection"]),
        (
            {
                "select_method": "jaccard",
                "select_threshold": "q0.9",
                "select_cut": "top",
                "select_top": 7,
                "select_merge": "mean-z",
            },
            ["--method", "jaccard", "--fire-threshold", "q0.9", "--top", "7", "--merge", "mean-z"],
        ),
        (
            {"select_method": "nait-pca", "select_layer_norm": "z"},
            ["--method", "nait-pca", "--layer-norm", "z", "--ratio", "0.1"],
        ),
        ({"select_method": "rds"}, ["--method", "rds", "--ratio", "0.1"]),  # the final hidden states
        ({"select_method": "embed", "select_ratio": 0.2}, ["--method", "embed", "--ratio", "0.2"]),  # the encoder
    ],
)
def test_export_matches_nait_select(demo, tmp_path, monkeypatch, settings, cli_options):
    offered = downloads(monkeypatch)
    at = open_page("select")
    for key, value in settings.items():  # in order: the cut kind before its value
        widget(at, key).set_value(value).run()
    at.text_input(key="select_path").set_value(str(tmp_path / "app.jsonl"))
    at.button(key="FormSubmitter:select_write-Write").click().run()
    check(at)
    expected = nait_select(demo, tmp_path / "cli.jsonl", *cli_options)
    assert (tmp_path / "app.jsonl").read_bytes() == expected
    from studio.select_page import export_name

    name = export_name(at.session_state["studio"].pool.name, at.session_state["studio_settings"], "selected")
    download = offered[name]
    assert (download.encode() if isinstance(download, str) else download) == expected
    count = next(m.value for m in at.metric if m.label == "Selected records")
    assert int(count.replace(",", "")) == expected.count(b"\n")
    assert "nait select" in at.code[0].value
    preview = next(d.value for d in at.dataframe if "preview" in d.value.columns)
    if settings.get("select_method") in ("rds", "embed"):  # no per-neuron split: said plainly, no reason column
        assert "reason" not in preview.columns
        assert any("has no per-neuron split of its scores" in c.value for c in at.caption)
    else:
        assert preview["reason"].str.contains("L").all()


def test_user_errors_are_messages(demo, tmp_path):
    at = open_page("select")
    at.text_input(key="select_threshold").set_value("often").run()
    check(at)
    assert any("fire threshold" in e.value for e in at.error)
    at.text_input(key="select_threshold").set_value("0").run()
    at.radio(key="select_cut").set_value("min_score").run()
    at.number_input(key="select_min").set_value(99.0).run()
    check(at)
    # nait select's own words (selection.empty_reason), with the best score beside the cut
    assert any("Nothing is selected: no record scores at least 99" in w.value for w in at.warning), at.warning
    at.number_input(key="select_min").set_value(0.0).run()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    at.text_input(key="select_path").set_value(str(blocked / "out.jsonl"))
    at.button(key="FormSubmitter:select_write-Write").click().run()
    check(at)
    assert any("Not written" in e.value and "is a file, not a folder" in e.value for e in at.error)
    # A pool that does not exist: the message, and the page keeps the last working setup.
    at.text_input(key="sb_pool").set_value(str(tmp_path / "missing.jsonl"))
    at.button(key="FormSubmitter:sb_form-Load").click().run()
    check(at)
    assert any("file not found" in e.value for e in at.error)
    assert [t.value for t in at.main.title] == ["Select & export"]


def test_method_comparison_includes_the_baselines(demo):
    """NAIT methods and the baselines side by side; ifd is computed once and then read from the store folder."""
    at = open_page("select")
    assert at.toggle(key="select_compare").value
    offered = ["overlap", "overlap-balanced", "overlap-z", "jaccard", "nait-pca", "overlap-max", "rds", "embed"]
    assert at.multiselect(key="select_compare_methods").options == offered + ["ifd", "length", "random"]
    # every method of the registry that the pool serves, but those that run a model over the pool (ifd, embed)
    assert at.multiselect(key="select_compare_methods").value == [m for m in offered if m != "embed"] + [
        "length",
        "random",
    ]
    table = at.dataframe[0].value
    assert "overlap vs random" in set(table["methods"]) and "nait-pca vs length" in set(table["methods"])
    assert set(table["target"]) == {f"{t}-n{TARGET_SIZE}-s0" for t in TARGETS}
    at.multiselect(key="select_compare_methods").set_value(["overlap", "ifd"]).run()
    check(at)
    assert list(at.dataframe[0].value["methods"].unique()) == ["overlap vs ifd"]
    assert list(demo.glob("*demo*/ifd-L1024.npy")), "ifd scores are cached beside the pool's store"
    at.multiselect(key="select_compare_methods").set_value(["overlap"]).run()
    assert any("two methods or more" in i.value for i in at.info)


def test_transfer(demo):
    at = open_page("transfer")
    assert len(at.get("plotly_chart")) == 3
    core = at.subheader[0].value
    at.switch_page("pages/select.py").run()
    at.slider(key="select_ratio").set_value(0.5).run()
    at.switch_page("pages/transfer.py").run()
    check(at)
    assert at.subheader[0].value != core  # a larger cut, a larger core subset


def test_own_pool_file_is_captured_in_the_app(demo, tmp_path):
    """A user's pool file with a bad line: captured by the app itself, the bad record listed, not fatal."""
    pool = tmp_path / "my-pool.jsonl"
    rows = [{"instruction": f"Add {i} and {i + 1}.", "input": "", "output": f"{2 * i + 1}"} for i in range(5)]
    pool.write_text(
        "\n".join(json.dumps(r) for r in rows[:3])
        + '\n{"instruction": 3}\n'
        + "\n".join(json.dumps(r) for r in rows[3:])
        + "\n"
    )
    at = open_page("data")
    at.text_input(key="sb_pool").set_value(str(pool))
    at.button(key="FormSubmitter:sb_form-Load").click().run()
    check(at)
    assert any("my-pool.jsonl:4" in e.value for e in at.error)  # stops at the bad line, names it
    at.checkbox(key="sb_skip_invalid").check()
    at.button(key="FormSubmitter:sb_form-Load").click().run()
    check(at)
    assert not at.error
    assert {m.label: m.value for m in at.metric}["Pool records"] == "5"
    assert any("1 invalid records were skipped" in e.label for e in at.expander)
    at.switch_page("pages/select.py").run()
    check(at)
    assert {m.label: m.value for m in at.metric}["Selected records"] in {"1", "2", "3"}
    at.radio(key="select_cut").set_value("top").run()  # the top-k starts within the 5 records, not at 10
    check(at)
    assert at.number_input(key="select_top").value == 5


def test_export_says_which_values_json_cannot_hold(demo, tmp_path):
    """A Parquet pool with a NaN field: the app's file holds null there and says so, as `nait select` does."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pool = tmp_path / "measured.parquet"
    pq.write_table(
        pa.table(
            {
                "instruction": [f"Add {i} and {i + 1}." for i in range(5)],
                "output": [f"{2 * i + 1}" for i in range(5)],
                "rating": [1.0, float("nan"), 3.0, 4.0, 5.0],
            }
        ),
        pool,
    )
    at = open_page("data")
    at.text_input(key="sb_pool").set_value(str(pool))
    at.button(key="FormSubmitter:sb_form-Load").click().run()
    check(at)
    at.switch_page("pages/select.py").run()
    at.radio(key="select_cut").set_value("top").run()
    at.number_input(key="select_top").set_value(5).run()  # every record, the NaN one included
    check(at)
    warnings = [w.value for w in at.warning if "JSON cannot hold" in w.value]
    assert warnings == [
        f"1 exported values changed because JSON cannot hold them:\n\n- {pool}:row 1: field 'rating': nan "
        "exported as null (JSON has no NaN or Infinity)"
    ]
    at.text_input(key="select_path").set_value(str(tmp_path / "chosen.jsonl"))
    at.button(key="FormSubmitter:select_write-Write").click().run()
    assert [json.loads(line)["rating"] for line in (tmp_path / "chosen.jsonl").read_text().splitlines()] == [
        1.0,
        None,
        3.0,
        4.0,
        5.0,
    ]
    assert sum("JSON cannot hold" in w.value for w in at.warning) == 2  # the download's, and the written file's


# ---------------------------------------------------------------- issue 10: app state and the map's selection


@pytest.mark.unit
def test_a_pool_file_changed_on_disk_is_read_again(tmp_path):
    """The app caches what it read per file version (mtime and size): a pool edited in place is re-read,
    never served from the cache (Streamlit leaves `_`-prefixed arguments out of the key, so the version
    must not be one)."""
    import os

    from studio import session

    pool = tmp_path / "pool.jsonl"

    def write(n: int, mtime_ns: int) -> None:
        pool.write_text("".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(n)))
        os.utime(pool, ns=(mtime_ns, mtime_ns))

    def read():
        return session._dataset(str(pool), None, None, False, None, 0, session._file_key(str(pool)))

    write(3, 10**18)
    assert len(read()) == 3
    write(4, 10**18 + 10**9)
    assert len(read()) == 4 and len(read()) == 4


@pytest.mark.unit
def test_map_selection_maps_points_to_rows_whatever_the_browser_echoes():
    """A selection is read back by curve and point index in the figure's own arrays: whatever the browser
    echoes as customdata (a target's {"0": -1}, as a typed 2-D array's point was echoed, or none at all) is
    never indexed (it raised KeyError: 0)."""
    import pandas as pd

    from studio import charts
    from studio.map_page import chosen_rows

    candidates = pd.DataFrame(
        {
            "x": [0.0, 1, 2, 3],
            "y": [0.0, 1, 0, 1],
            "row": [7, 3, 9, 4],
            "source": ["a", "b", "a", "b"],
            "score": [0.1, 0.2, 0.3, 0.4],
            "selection": ["selected", "not selected", "selected", "not selected"],
            "preview": list("pqrs"),
        }
    )
    targets = pd.DataFrame({"x": [5.0, 6], "y": [5.0, 6], "group": ["t1", "t2"], "preview": ["u", "v"]})
    fig = charts.overlap_map(candidates, targets, "source", "map", ["row", "source", "score", "selection", "preview"])
    rows = charts.point_rows(fig)
    assert [list(r) for r in rows] == [[7, 9], [3, 4], [-1], [-1]]  # source a, source b, target t1, target t2
    echoed = [
        {"curve_number": 0, "point_index": 1, "customdata": [9]},
        {"curve_number": 1, "point_number": 0, "point_index": 0},  # no customdata at all
        {"curve_number": 2, "point_index": 0, "customdata": {"0": -1}},  # a target, as a typed array echoes
        {"curve_number": 3, "point_index": 5},
        {"curve_number": 9, "point_index": 0},
        {"x": 1},
    ]  # unknown
    assert chosen_rows(echoed, rows) == [3, 9]
    # Chosen rows (a reload of `box=`) are drawn selected; with none, no trace carries a selection.
    fig = charts.overlap_map(candidates, targets, "source", "map", ["row"], chosen=[9, 4])
    assert [list(t.selectedpoints) if t.selectedpoints is not None else None for t in fig.data] == [
        [1],
        [1],
        None,
        None,
    ]
    assert all(t.selectedpoints is None for t in charts.overlap_map(candidates, targets, "score", "m", []).data)


def test_clear_that_filter_clears_the_banner_at_once(demo):
    at = open_page("map")
    at.session_state["map_filter"] = [0, 1, 2]
    at.run()
    assert any("3 records chosen here" in c.value for c in at.caption)
    at.button(key="map_clear").click().run()
    check(at)
    assert not any("chosen here" in c.value for c in at.caption)  # gone in the same rerun, not the next
    assert not any("chosen on the map" in c.proto.spec for c in at.get("plotly_chart"))


def test_sidebar_scoring_summary_follows_the_settings_at_once(demo):
    at = open_page("select")
    assert any("**Scoring** overlap" in c.value for c in at.sidebar.caption)
    at.radio(key="select_method").set_value("jaccard").run()
    check(at)
    assert any("**Scoring** jaccard" in c.value for c in at.sidebar.caption)  # not one interaction behind
    at.selectbox(key="select_merge").set_value("intersection").run()
    assert any("merge intersection" in c.value for c in at.sidebar.caption)


def _jsonl(path: Path, n: int) -> Path:
    path.write_text(
        "".join(
            json.dumps({"instruction": f"Add {i} and {i + 1}.", "input": "", "output": f"{2 * i + 1}"}) + "\n"
            for i in range(n)
        )
    )
    return path


def test_changing_the_pool_forgets_the_old_pools_rows(demo, tmp_path):
    """Row numbers and map choices of the demo pool (120 records) must not reach a 5-record pool, whose
    'top' cut must also start within its size."""
    at = open_page("samples")
    at.number_input(key="samples_row").set_value(100).run()
    at.session_state["map_filter"] = [100, 110]
    at.run()
    check(at)
    assert at.subheader[0].value.startswith("Record 100")
    at.text_input(key="sb_pool").set_value(str(_jsonl(tmp_path / "five.jsonl", 5)))
    at.button(key="FormSubmitter:sb_form-Load").click().run()
    check(at)
    assert not at.error, [e.value for e in at.error]
    assert len(at.dataframe[0].value) == 5 and at.number_input(key="samples_row").value < 5
    assert not any("chosen on the map" in c.label for c in at.checkbox)
    at.switch_page("pages/neurons.py").run()
    check(at)
    assert "chosen on the map" not in [m.label for m in at.metric]
    at.switch_page("pages/map.py").run()
    check(at)
    assert not any("chosen here" in c.value for c in at.caption)
    at.switch_page("pages/select.py").run()
    at.radio(key="select_cut").set_value("top").run()
    check(at)
    assert at.number_input(key="select_top").value <= 5
    assert {m.label: m.value for m in at.metric}["Selected records"] != "0"


def test_a_two_record_target_loads_on_the_data_page(demo, tmp_path):
    at = open_page("data")
    at.text_area(key="sb_targets").set_value(f"gsm8k\n{_jsonl(tmp_path / 'two.jsonl', 2)}")
    at.button(key="FormSubmitter:sb_form-Load").click().run()
    check(at)
    assert {m.label: m.value for m in at.metric}["Target sets"] == "2"
    at.selectbox(key="data_target").set_value("two")  # in a form: takes effect when it is submitted
    at.text_input(key="data_name").set_value("two-both")
    at.button(key="FormSubmitter:data_build-Build feature").click().run()
    check(at)
    assert any("all 2" in c.value for c in at.caption)
    assert any("Built two-both from 2 samples" in s.value for s in at.success), [e.value for e in at.error]


def test_a_download_clicked_during_a_rerun_still_gets_its_file(demo, monkeypatch):
    """One media manager for every run, as a server has: the files the page offered before a rerun must
    still be served after it (a click can arrive while the rerun runs). A file made on click (a callable)
    was revoked by the rerun: MediaFileStorageError in the log, nothing for the user."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import app_test

    manager = MediaFileManager(MemoryMediaFileStorage("/mock/media"))
    monkeypatch.setattr(app_test, "MediaFileManager", lambda storage: manager)
    at = open_page("select")
    if any(b.key == "select_prepare_scores" for b in at.button):  # the scores file is made on request
        at.button(key="select_prepare_scores").click().run()
    offered = [b.proto for b in at.download_button]
    assert [b.label for b in offered] == ["Download the selection (JSONL)", "Download all scores (JSONL)"]
    at.slider(key="select_ratio").set_value(0.3).run()  # a rerun that changes the selection
    check(at)
    for proto in offered:
        if proto.deferred_file_id:
            manager.execute_deferred(proto.deferred_file_id)
        else:
            assert manager.read_file(Path(proto.url).stem) is not None, proto.label


@pytest.mark.unit
def test_signed_values_are_drawn_with_their_sign():
    """Issue 25: centred cosines in [-1, 1] were progress bars (−0.5 a quarter full, its sign unseen)."""
    import pandas as pd

    from studio.shared_view import signed_cells, signed_colour

    assert "40,80,220" in signed_colour(-0.5) and "220,40,40" in signed_colour(0.5)  # blue below 0, red above
    assert signed_colour(float("nan")) == "" and signed_colour(-0.9) > signed_colour(-0.1)  # stronger further out
    html = signed_cells(pd.DataFrame({"layer": [0, 1], "cosine": [-0.5, 0.25]}), ["cosine"]).to_html()
    assert "-0.50" in html and "+0.25" in html


def _link(at: AppTest, title: str) -> dict[str, str]:
    """The query parameters of the sidebar's link to the page titled `title`."""
    from urllib.parse import parse_qsl

    return dict(parse_qsl(next(p for p in at.sidebar.page_link if p.proto.label == title).proto.query_string))


def test_sidebar_links_keep_each_pages_choices_until_the_data_or_settings_change(demo, tmp_path, monkeypatch):
    """Issue 25: a page reopened from the sidebar shows its own choices as it was left; a score range is
    dropped once the scores' settings change, and every choice once the targets change (its names may not
    exist any more), but not the choice of a page that reads no pool (Outcomes' run)."""
    monkeypatch.setenv("NAIT_EVAL_DIR", str(tmp_path / "runs"))  # none: Outcomes lists the shipped runs
    at = open_page("samples")
    at.text_input(key="samples_query").set_value("the").run()
    low, high = at.slider(key="samples_score").value
    at.slider(key="samples_score").set_value((low + (high - low) / 4, high)).run()
    check(at)
    at.switch_page("pages/neurons.py").run()
    check(at)
    assert _link(at, "Sample explorer")["q"] == "the" and "score" in _link(at, "Sample explorer")
    assert "q" not in _link(at, "Neuron explorer")  # each page's own choices only
    at.switch_page("pages/select.py").run()
    at.selectbox(key="select_merge").set_value("mean-z").run()
    check(at)
    kept = _link(at, "Sample explorer")
    assert kept["q"] == "the" and kept["merge"] == "mean-z" and "score" not in kept, kept
    at.switch_page("pages/outcomes.py").run()
    run = at.selectbox(key="outcomes_run")
    run.select_index(1 if run.index != 1 else 2).run()
    check(at)
    chosen = _link(at, "Outcomes")["run"]
    at.text_area(key="sb_targets").set_value("\n".join(TARGETS[:2]))
    at.button(key="FormSubmitter:sb_form-Load").click().run()
    check(at)
    assert not at.error, [e.value for e in at.error]
    assert "q" not in _link(at, "Sample explorer"), _link(at, "Sample explorer")
    assert _link(at, "Outcomes")["run"] == chosen


def test_neuron_densities_in_rows_of_whole_labels_and_transfer_cosines_signed(demo):
    """Issue 25's walk: six density metrics in one row cut "Density: target humaneval-n16-s0" to "Density:
    targ…", and Transfer drew its signed cosines as progress bars."""
    from studio.neurons_page import METRICS_PER_ROW
    from studio.shared_view import COSINE

    at = open_page("neurons")
    groups = ["candidates", "selected", *(f"{t}-n{TARGET_SIZE}-s0" for t in TARGETS)]
    assert [m.label for m in at.main.metric] == groups  # each group's own name, nothing before it

    def rows(node):  # each set of sibling columns that holds a metric: one row of metrics on the page
        kids = list(getattr(node, "children", {}).values())
        columns = [k for k in kids if getattr(k, "type", None) == "column"]
        if any(c.get("metric") for c in columns):
            yield columns
        for kid in kids:
            yield from rows(kid)

    widths = [len(row) for row in rows(at.main)]
    assert widths and max(widths) <= METRICS_PER_ROW < len(groups), widths
    at.switch_page("pages/transfer.py").run()
    check(at)
    layers = next(d for d in at.dataframe if COSINE in d.value.columns)
    config = json.loads(layers.proto.columns or "{}")
    assert "progress" not in json.dumps(config.get(COSINE, {})).lower(), config
    assert "progress" in json.dumps(config).lower()  # the overlap column, a share in [0, 1], stays a bar
