"""Issue 25, the map's scale: a pool above the old 3,000-point cap drawn in full, light on each rerun, and the
chosen records downloaded as the export writes them. The Overlap map page under AppTest on a synthetic pool of
real stores (no model: the page never loads one). Slow: UMAP of 6,000 points (and numba's compilation)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from nait_testing.app import check, downloads

pytestmark = pytest.mark.slow

N = 6_000  # above the old cap (3,000) and above the hover's text limit (charts.HOVER_TEXT_MAX)


def map_app(root: str, n: int, fitted: int | None = None) -> None:
    """The AppTest script: a Studio on a synthetic pool of `n` records and two targets, then the Overlap map;
    with `fitted`, UMAP is fitted on that many pool samples (a pool beyond its dots, as 52,000 of millions)."""
    from pathlib import Path

    import streamlit as st

    from nait_core import activation_map

    if fitted:
        activation_map.MAP_MAX_POOL = fitted

    from nait_core.capture import CaptureReport
    from nait_core.data import Dataset, Record
    from nait_core.features import build_feature
    from nait_core.models import LazyModel
    from nait_testing.stores import synthetic_store
    from studio import map_page
    from studio.session import Config, Studio, show

    @st.cache_resource
    def build(root: str, n: int) -> Studio:
        def records(name, size, sources):
            return Dataset(
                name,
                [
                    Record(
                        {"instruction": f"{name} task {i}", "output": f"answer {i}"}
                        | ({"rating": float("nan")} if i == 17 else {}),
                        f"{name}:{i + 1}",
                        sources[i % len(sources)],
                        [{"role": "user", "content": f"{name} task {i}"}, {"role": "assistant", "content": "a"}],
                    )
                    for i in range(size)
                ],
            )

        def store(name, size, seed, shift):
            made = synthetic_store(Path(root) / name, n=size, layers=2, neurons=16, shard_size=1000, seed=seed,
                                   shift=shift, rank=4)  # fmt: skip
            return CaptureReport(made[0], reused=True, truncated=0)

        pool = store("pool", n, 0, 0.0)
        targets = [store(f"t{g}", 40, 10 + g, 1.0 + g) for g in range(2)]
        features = [build_feature(r.store, f"t{g}", reductions=("mean",)) for g, r in enumerate(targets)]

        def no_weights(name, **_):
            raise AssertionError("the map page loaded the model")

        return Studio(
            Config(model="m", pool="synthetic", targets=("t0", "t1"), target_size=0, root=root),
            LazyModel("m", loader=no_weights),
            records("synthetic", n, ["math", "code"]),
            pool,
            [records(f"t{g}", 40, [f"t{g}"]) for g in range(2)],
            targets,
            features,
        )

    st.session_state["studio"] = build(root, n)
    show(map_page.render)


def rows_of(trace: dict) -> list[int]:
    """A trace's customdata as sent: a typed array (base64) of pool rows."""
    data = trace["customdata"]
    return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()


def test_a_pool_above_the_old_cap_is_drawn_in_full_light_and_its_choice_downloads(tmp_path, monkeypatch):
    """Every candidate of a 6,000-record pool on the map (it drew a 3,000 sample), each dot sent as float32
    x, y and an int32 row (no hover text per point: it was 10 MB at 52,000); a box's records download as the
    export writes them, in input order, with the value JSON cannot hold said, not silently changed."""
    offered = downloads(monkeypatch)
    at = AppTest.from_function(map_app, args=(str(tmp_path), N), default_timeout=600)
    at.run()
    check(at)
    assert any(f"Every one of the {N:,} candidates is drawn" in c.value for c in at.caption)
    chart = at.get("plotly_chart")[0].proto.spec
    spec = json.loads(chart)
    dots = [t for t in spec["data"] if t["type"] == "scattergl"]
    assert sorted(r for t in dots for r in rows_of(t)) == list(range(N))
    assert all("text" not in t and t["x"]["dtype"] == "f4" for t in dots)
    assert len(chart) < 40 * N, f"{len(chart):,} bytes for {N:,} points"

    at.session_state["map_box"] = [4999, 17, 5]  # what a box or lasso leaves
    at.run()
    check(at)
    assert "**3 candidates chosen**" in at.markdown[0].value + " ".join(m.value for m in at.markdown)
    ((name, data),) = [(k, v) for k, v in offered.items() if k.endswith("-chosen.jsonl")]
    assert name == "synthetic-map-3-chosen.jsonl"
    lines = data.decode().splitlines()
    assert [json.loads(line)["instruction"] for line in lines] == [f"synthetic task {i}" for i in (5, 17, 4999)]
    assert json.loads(lines[1])["rating"] is None  # NaN: JSON cannot hold it, and the page says so
    assert any("1 exported values changed because JSON cannot hold them" in w.value for w in at.warning)


@pytest.mark.unit
def test_beyond_52000_a_seeded_sample_are_dots_and_every_candidate_is_on_the_map():
    """A 1M exact pool: UMAP is fitted on a seeded 52,000 (its fit is the limit here, not drawing), drawn as
    dots; the page says plainly that all 1M are on the map, the rest as density, and that a box takes all."""
    from types import SimpleNamespace

    from nait_core import activation_map
    from studio.map_page import scale_note

    rows = activation_map.map_sample(1_000_000)
    assert len(rows) == activation_map.MAP_MAX_POOL == 52_000 and (rows == activation_map.map_sample(1_000_000)).all()
    note = scale_note(SimpleNamespace(compact=False, pool=range(1_000_000)), len(rows), 1_000_000)
    assert "Every one of the 1,000,000 candidates is on the map: a seeded random 52,000 as dots" in note
    assert "the other 948,000 placed on that fit by UMAP's transform" in note
    assert "A box or lasso chooses every candidate inside it, dots and density alike" in note


FITTED = 1_500  # the dots of the dense map below: UMAP fitted on these, the other 4,500 placed by its transform


def test_beyond_the_dots_every_candidate_is_on_the_map_and_an_area_chooses_them_all(tmp_path, monkeypatch):
    """A pool larger than the dots UMAP is fitted on: every candidate is on the map (the dots plus a density of
    all of them), an area drawn there chooses every candidate inside it, dotted or not, keeps it in the URL as a
    few numbers, shows it drawn again on a reload (`layout.selections`), and downloads exactly those records."""
    from nait_core import activation_map
    from studio.map_page import Area

    monkeypatch.setattr(activation_map, "MAP_MAX_POOL", FITTED)  # the AppTest script runs in this process
    offered = downloads(monkeypatch)
    at = AppTest.from_function(map_app, args=(str(tmp_path), N, FITTED), default_timeout=600)
    at.run()
    check(at)
    assert any(
        f"Every one of the {N:,} candidates is on the map: a seeded random {FITTED:,} as dots" in i.value
        for i in at.info
    )
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    (cells,) = [t for t in spec["data"] if t["type"] == "heatmap"]
    counts = np.array(cells["customdata"])
    assert counts.sum() == N  # every candidate counted in the density
    dots = [t for t in spec["data"] if t["type"] == "scattergl"]
    assert sorted(r for t in dots for r in rows_of(t)) == activation_map.map_sample(N, FITTED).tolist()

    studio = at.session_state["studio"]
    coords = activation_map.map_coordinates(studio.neuron_store, studio.target_stores)  # read back from the cache
    pool = coords[coords["group"] < 0]
    x0, x1 = np.quantile(pool["x"], [0.2, 0.6])
    y0, y1 = np.quantile(pool["y"], [0.2, 0.6])
    area = Area(boxes=((float(f"{x0:.6g}"), float(f"{x1:.6g}"), float(f"{y1:.6g}"), float(f"{y0:.6g}")),))
    inside = pool[pool["x"].between(*sorted(area.boxes[0][:2])) & pool["y"].between(*sorted(area.boxes[0][2:]))]
    expected = sorted(inside["index"])
    assert 0 < len(expected) < N and not inside["drawn"].all()  # the area holds undrawn candidates too
    at.session_state["map_area"] = area  # what a box drawn in the browser leaves
    at.run()
    check(at)
    assert any(f"**{len(expected):,} candidates chosen**" in m.value for m in at.markdown)
    assert at.query_params["area"] == area.text() and Area.parse(area.text()) == area
    ((name, data),) = [(k, v) for k, v in offered.items() if k.endswith("-chosen.jsonl")]
    assert name == f"synthetic-map-{len(expected)}-chosen.jsonl"
    got = [int(json.loads(line)["instruction"].split()[-1]) for line in data.decode().splitlines()]
    assert got == expected

    at.radio(key="map_color").set_value("source").run()  # another chart: the area still chosen and drawn
    check(at)
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["selections"][0]["x0"] == area.boxes[0][0]
    other = Area(boxes=((area.boxes[0][0], area.boxes[0][1], area.boxes[0][2], float(f"{y1 + 1:.6g}")),))
    at.session_state["map_area"] = other  # a new box drawn on that chart
    at.run()
    at.radio(key="map_color").set_value("score").run()  # back to the first colouring: its chart shows the new box
    check(at)
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["selections"][0]["y1"] == other.boxes[0][3]
    at.session_state["map_area"] = area
    at.run()

    at.multiselect(key="map_sources").select("math").run()  # linked: the filter narrows the map and the choice
    check(at)
    maths = [r for r in expected if r % 2 == 0]  # the synthetic records alternate math, code
    assert any(f"**{len(maths):,} candidates chosen**" in m.value for m in at.markdown)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    (cells,) = [t for t in spec["data"] if t["type"] == "heatmap"]
    assert np.array(cells["customdata"]).sum() == N // 2 and at.query_params["sources"] == "math"
    assert spec["layout"]["selections"][0]["x0"] == area.boxes[0][0]  # the area stays drawn on the new chart
    at.radio(key="map_status").set_value("selected").run()
    check(at)
    table = next(d.value for d in at.dataframe if "selection" in d.value.columns)
    cells = next(t for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"] if t["type"] == "heatmap")
    assert 0 < np.array(cells["customdata"]).sum() < N // 2 and at.query_params["status"] == "selected"
    assert set(table["selection"]) <= {"selected"} and set(table["source"]) <= {"math"}

    again = AppTest.from_function(map_app, args=(str(tmp_path), N, FITTED), default_timeout=600)
    again.query_params["area"] = area.text()  # a reload of the link
    again.run()
    check(again)
    assert any(f"**{len(expected):,} candidates chosen**" in m.value for m in again.markdown)
    layout = json.loads(again.get("plotly_chart")[0].proto.spec)["layout"]
    assert layout["selections"] == [dict(type="rect", xref="x", yref="y", x0=area.boxes[0][0], x1=area.boxes[0][1],
                                         y0=area.boxes[0][2], y1=area.boxes[0][3])]  # fmt: skip

    again.button(key="map_clear_area").click().run()  # a restored area cleared (a double-click cannot)
    check(again)
    assert "area" not in again.query_params and not any("candidates chosen" in m.value for m in again.markdown)
    assert "selections" not in json.loads(again.get("plotly_chart")[0].proto.spec)["layout"]

    bad = AppTest.from_function(map_app, args=(str(tmp_path), N, FITTED), default_timeout=600)
    bad.query_params["area"] = "b1,2,3~x4"
    bad.run()
    check(bad)
    assert any("Ignoring area='b1,2,3~x4' in the link: 'b1,2,3' is not a box" in w.value for w in bad.warning)
    assert not any("candidates chosen" in m.value for m in bad.markdown)


@pytest.mark.unit
def test_an_area_from_the_browser_keeps_only_finite_boxes_and_polygons_at_six_digits():
    """What the browser sends is data, never trusted: non-numbers, NaN, too few corners are left out; what is
    kept is rounded as the URL keeps it, so a reload chooses exactly the same records."""
    from studio.map_page import Area

    selection = {
        "box": [
            {"x": [0.1234567, 2], "y": [3, 4]},
            {"x": ["1", 2], "y": [3, 4]},
            {"x": [1, float("nan")], "y": [0, 1]},
        ],
        "lasso": [{"x": [0, 1, 1], "y": [0, 0, 1]}, {"x": [0, 1], "y": [0, 1]}, {"x": [True, 1, 2], "y": [0, 1, 2]}],
    }
    area = Area.from_event(selection)
    assert area == Area(boxes=((0.123457, 2.0, 3.0, 4.0),), lassos=(((0.0, 0.0), (1.0, 0.0), (1.0, 1.0)),))
    assert area.text() == "b0.123457,2,3,4~l0,0,1,0,1,1" and Area.parse(area.text()) == area
    assert not Area.from_event({}) and Area.from_event({}).text() is None
    for bad in ("b1,2,3", "l0,0,1,1", "bnan,1,2,3", "q1,2,3,4", "b1,2,3,x", "l" + ",".join(["1"] * 602)):
        with pytest.raises(ValueError):
            Area.parse(bad)
    with pytest.raises(ValueError, match="longer than the 8,000 characters"):
        Area.parse("b1,2,3,4~" * 1000)
    odd = {"box": ["x", {"x": [10**400, 1], "y": [0, 1]}], "lasso": [None]}  # not dicts; an int too large for a float
    assert not Area.from_event(odd)
    circle = np.linspace(0, 2 * np.pi, 3000, endpoint=False)
    big = Area.from_event({"lasso": [{"x": np.cos(circle).tolist(), "y": np.sin(circle).tolist()}]})
    assert big.drawn_corners == 3000 and len(big.lassos[0]) == 300 and Area.parse(big.text()) == big


@pytest.mark.unit
def test_rows_in_a_link_are_ranges_and_too_many_are_left_out_without_writing_them():
    from studio import urlstate

    assert urlstate.rows_text([9, 3, 5, 4, 4]) == "3-5.9" and urlstate.rows_text([]) is None
    assert urlstate.rows_from("3-5.9", 10) == [3, 4, 5, 9]
    assert urlstate.link_rows(np.arange(1_000_000)) == "0-999999"
    assert urlstate.link_rows(np.arange(0, 2_000_000, 2)) is None  # a million runs: too long for a link
    assert urlstate.link_rows(list(range(0, 4000, 2))) is None and urlstate.link_rows([1, 7]) == "1.7"
