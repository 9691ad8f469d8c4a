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


def map_app(root: str, n: int) -> None:
    """The AppTest script: a Studio on a synthetic pool of `n` records and two targets, then the Overlap map."""
    from pathlib import Path

    import streamlit as st

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
def test_beyond_52000_the_map_is_a_seeded_sample_and_the_page_says_so():
    """A 1M exact pool: the map places a seeded 52,000 (UMAP's fit is the limit here, not drawing) and says
    plainly that the rest are not on it."""
    from types import SimpleNamespace

    from nait_core import explore
    from studio.map_page import scale_note

    rows = explore.map_sample(1_000_000)
    assert len(rows) == explore.MAP_MAX_POOL == 52_000 and (rows == explore.map_sample(1_000_000)).all()
    note = scale_note(SimpleNamespace(compact=False, pool=range(1_000_000)), len(rows))
    assert "a seeded random sample of 52,000 of the 1,000,000 candidates" in note
    assert "The other 948,000 are not on the map, so a box or lasso chooses among the drawn ones only" in note
