"""Issue 25, the map's scale in a real browser: a 6,000-point map (above the old 3,000 cap) served by
`streamlit run` on the synthetic pool of test_app_map_scale, a box dragged with the mouse in headless Debian
Chromium, and the chosen records downloaded. Skipped when /usr/bin/chromium is missing, unless
NAIT_REQUIRE_BROWSER=1 (then it fails)."""

from __future__ import annotations

import json
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_app_map_scale import N
from test_e2e_browser import drag, drag_area, inside, no_exception, shrink

from nait_testing.browser import CHROMIUM, ROOT, browser, free_port, wait_idle, wait_until_serving

pytestmark = pytest.mark.slow

if not Path(CHROMIUM).exists() and os.environ.get("NAIT_REQUIRE_BROWSER") != "1":
    pytest.skip(
        f"{CHROMIUM} not installed (make browser); NAIT_REQUIRE_BROWSER=1 makes this a failure", allow_module_level=True
    )

SCRIPT = """import sys
sys.path[:0] = [{root!r}, {tests!r}]
from test_app_map_scale import map_app
map_app({data!r}, {n}, {fitted})
"""


@contextmanager
def serving(tmp_path, fitted=None):
    """`streamlit run` of the synthetic map app (UMAP fitted on `fitted` pool samples: a pool beyond its dots);
    yields its URL."""
    script = tmp_path / "map_app.py"
    data = str(tmp_path / "data")
    script.write_text(SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"), data=data, n=N, fitted=fitted))
    port = free_port()
    args = ["--server.headless", "true", "--server.port", str(port), "--server.fileWatcherType", "none"]
    with open(tmp_path / "app.log", "w") as log:
        process = subprocess.Popen(
            [str(ROOT / ".venv/bin/python"), "-m", "streamlit", "run", str(script), *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_serving(process, port)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)


def drag_and_download(page, shape: str, polygon) -> tuple[int, list[str]]:
    """Drag the box or lasso; (the count of candidates chosen the page shows, the downloaded file's lines)."""
    drag(page, shape, polygon)
    page.wait_for_timeout(1000)
    wait_idle(page)
    no_exception(page)
    chosen = page.get_by_text("candidates chosen", exact=False).first
    chosen.wait_for()
    count = int(chosen.inner_text().split()[0].replace(",", ""))
    with page.expect_download() as download:
        page.get_by_role("button", name=f"Download these {count:,} records (JSONL)").click()
    return count, Path(download.value.path()).read_text().splitlines()


TO_PIXELS_JS = """(gd, points) => { const L = gd._fullLayout, box = gd.getBoundingClientRect();
  return points.map(([x, y]) => [box.left + L._size.l + L.xaxis.l2p(x), box.top + L._size.t + L.yaxis.l2p(y)]); }"""


def test_a_lasso_on_a_map_beyond_its_dots_chooses_every_record_inside_and_survives_a_reload(tmp_path):
    """A 6,000-record pool whose map has 1,500 dots and the density of all: a lasso dragged with the mouse
    chooses every candidate inside it (those without a dot too: the count lies between what a polygon 4 px
    smaller and 4 px larger holds of all 6,000, and above the dots inside); the file holds those records; a
    reload of the page's URL shows the same lasso drawn and the same count."""
    from test_app_map_scale import FITTED

    from nait_core import activation_map
    from nait_core.store import Store

    with serving(tmp_path, FITTED) as url, browser(height=1400) as page:
        page.set_default_timeout(600_000)
        page.goto(url)
        page.get_by_text(f"Every one of the {N:,} candidates is on the map", exact=False).wait_for()
        wait_idle(page)
        no_exception(page)
        polygon, _, dots_maybe, _ = drag_area(page, "lasso")
        pool = Store.open(tmp_path / "data" / "pool")
        targets = [Store.open(tmp_path / "data" / f"t{g}") for g in range(2)]
        coords = activation_map.map_coordinates(pool, targets, max_points=FITTED)  # the page's map, read back
        placed = coords[coords["group"] < 0]
        chart = page.locator(".js-plotly-plot").first
        pixels = chart.evaluate(TO_PIXELS_JS, placed[["x", "y"]].to_numpy().tolist())
        sure = sum(inside(shrink(polygon, 4), x, y) for x, y in pixels)
        maybe = sum(inside(shrink(polygon, -4), x, y) for x, y in pixels)
        count, lines = drag_and_download(page, "lasso", polygon)
        assert sure <= count <= maybe and count > dots_maybe, (sure, count, maybe, dots_maybe)
        assert "area=l" in page.url
        page.reload()
        wait_idle(page)
        no_exception(page)
        again = page.get_by_text("candidates chosen", exact=False).first
        again.wait_for()
        assert again.inner_text().split()[0] == f"{count:,}"
        shown = page.locator(".js-plotly-plot").first.evaluate("gd => gd._fullLayout.selections.map(s => s.type)")
        assert shown == ["path"]  # the lasso drawn again
    rows = [int(json.loads(line)["instruction"].split()[-1]) for line in lines]
    assert len(rows) == count and rows == sorted(rows)
    assert not set(rows) <= set(placed[placed["drawn"]]["index"])  # records without a dot among them


def test_a_box_on_a_many_point_map_chooses_and_downloads_in_a_browser(tmp_path):
    with serving(tmp_path) as url, browser(height=1400) as page:
        page.set_default_timeout(600_000)  # the first open computes the map (UMAP of 6,080 points)
        page.goto(url)
        page.get_by_text(f"Every one of the {N:,} candidates is drawn").wait_for()
        wait_idle(page)
        no_exception(page)
        polygon, sure, maybe, _ = drag_area(page, "box")
        count, lines = drag_and_download(page, "box", polygon)
        assert sure <= count <= maybe, (sure, count, maybe)
    rows = [int(json.loads(line)["instruction"].split()[-1]) for line in lines]
    assert len(rows) == count and rows == sorted(rows)  # the chosen records, in input order
