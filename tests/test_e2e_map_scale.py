"""Issue 25, the map's scale in a real browser: a 6,000-point map (above the old 3,000 cap) served by
`streamlit run` on the synthetic pool of test_app_map_scale, a box dragged with the mouse in headless Debian
Chromium, and the chosen records downloaded. Skipped when /usr/bin/chromium is missing, unless
NAIT_REQUIRE_BROWSER=1 (then it fails)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_app_map_scale import N
from test_e2e_browser import drag, drag_area, no_exception

from nait_testing.browser import CHROMIUM, ROOT, browser, free_port, wait_idle, wait_until_serving

pytestmark = pytest.mark.slow

if not Path(CHROMIUM).exists() and os.environ.get("NAIT_REQUIRE_BROWSER") != "1":
    pytest.skip(
        f"{CHROMIUM} not installed (make browser); NAIT_REQUIRE_BROWSER=1 makes this a failure", allow_module_level=True
    )

SCRIPT = """import sys
sys.path[:0] = [{root!r}, {tests!r}]
from test_app_map_scale import map_app
map_app({data!r}, {n})
"""


def test_a_box_on_a_many_point_map_chooses_and_downloads_in_a_browser(tmp_path):
    script = tmp_path / "map_app.py"
    script.write_text(SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"), data=str(tmp_path / "data"), n=N))
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
            with browser(height=1400) as page:
                page.set_default_timeout(600_000)  # the first open computes the map (UMAP of 6,080 points)
                page.goto(f"http://127.0.0.1:{port}")
                page.get_by_text(f"Every one of the {N:,} candidates is drawn").wait_for()
                wait_idle(page)
                no_exception(page)
                polygon, sure, maybe, _ = drag_area(page, "box")
                drag(page, "box", polygon)
                page.wait_for_timeout(1000)
                wait_idle(page)
                no_exception(page)
                chosen = page.get_by_text("candidates chosen", exact=False).first
                chosen.wait_for()
                count = int(chosen.inner_text().split()[0].replace(",", ""))
                assert sure <= count <= maybe, (sure, count, maybe)
                with page.expect_download() as download:
                    page.get_by_role("button", name=f"Download these {count:,} records (JSONL)").click()
                lines = Path(download.value.path()).read_text().splitlines()
        finally:
            process.terminate()
            process.wait(timeout=30)
    rows = [int(json.loads(line)["instruction"].split()[-1]) for line in lines]
    assert len(rows) == count and rows == sorted(rows)  # the chosen records, in input order
