"""End to end: `streamlit run app.py` for real, driven in headless Debian Chromium through Playwright.

Open the app, change the ratio on Select & export, download and write the selection, and check both files
against `nait select` with the same settings; then open every main page and screenshot it. Skipped when
/usr/bin/chromium is missing, unless NAIT_REQUIRE_BROWSER=1 (then it fails).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from screenshots import CHROMIUM, PAGES, browser, serve, shoot, wait_idle  # noqa: E402
from test_app import demo, nait_select  # noqa: E402,F401  (the small demo fixture)

pytestmark = pytest.mark.slow

if not Path(CHROMIUM).exists() and os.environ.get("NAIT_REQUIRE_BROWSER") != "1":
    pytest.skip(f"{CHROMIUM} not installed (make browser); NAIT_REQUIRE_BROWSER=1 makes this a failure",
                allow_module_level=True)


def test_change_ratio_and_export_in_a_browser(demo, tmp_path):
    expected = nait_select(demo, tmp_path / "cli.jsonl", "--ratio", "0.2")
    with serve(timeout=180) as url, browser() as page:
        page.goto(f"{url}/select")
        wait_idle(page)
        count = page.locator('[data-testid="stMetric"]', has_text="Selected records").locator('[data-testid="stMetricValue"]')
        before = int(count.inner_text().replace(",", ""))
        slider = page.get_by_role("slider", name="Ratio kept per target")
        for _ in range(40):  # 0.10 -> 0.20, one step of 0.01 per key, letting each rerun finish
            value = float(slider.input_value())
            if round(value, 2) == 0.2:
                break
            slider.focus()
            slider.press("ArrowRight" if value < 0.2 else "ArrowLeft")
            page.wait_for_timeout(300)
            page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
        expect(slider).to_have_value("0.2")
        after = expected.count(b"\n")
        expect(count).to_have_text(f"{after:,}", timeout=60_000)  # the page has caught up with the last key
        wait_idle(page)
        assert after > before

        with page.expect_download() as download:
            page.get_by_role("button", name="Download the selection (JSONL)").click()
        download.value.save_as(tmp_path / "downloaded.jsonl")
        page.get_by_label("…or write it to a path").fill(str(tmp_path / "written.jsonl"))
        page.get_by_role("button", name="Write", exact=True).click()
        page.get_by_text("Wrote").wait_for(timeout=60_000)
        assert (tmp_path / "written.jsonl").read_bytes() == expected
        assert (tmp_path / "downloaded.jsonl").read_bytes() == expected

        shots = shoot(page, url, tmp_path / "shots")  # every main page renders in a real browser
        assert [f.stem for f in shots] == list(PAGES) and all(f.stat().st_size > 10_000 for f in shots)
