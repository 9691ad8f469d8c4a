"""End to end in headless Chromium: the explanation views through real clicks and real links.

A click on a neuron id in the Sample explorer opens that neuron's card on the Neuron explorer; picking a row
of the same table opens the card in place; a URL with a neuron id opens it; settings in the URL survive a
reload. Skipped when /usr/bin/chromium is missing, unless NAIT_REQUIRE_BROWSER=1 (then it fails).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from screenshots import CHROMIUM, browser, serve, wait_idle  # noqa: E402
from test_app import demo  # noqa: E402,F401  (the small demo fixture)

pytestmark = pytest.mark.slow

if not Path(CHROMIUM).exists() and os.environ.get("NAIT_REQUIRE_BROWSER") != "1":
    pytest.skip(f"{CHROMIUM} not installed (make browser); NAIT_REQUIRE_BROWSER=1 makes this a failure",
                allow_module_level=True)

ROW_HEIGHT = 35  # st.dataframe's default row (and header) height in pixels


def cell(page, table, row: int, x: float):
    """Page coordinates of a data row's cell in a glide-data-grid table (rows drawn on a canvas)."""
    box = table.bounding_box()
    return box["x"] + x, box["y"] + ROW_HEIGHT * (row + 1.5)


def test_neuron_links_and_cards_in_a_browser(demo):
    with serve(timeout=180) as url, browser() as page:
        page.goto(f"{url}/samples?row=7")
        wait_idle(page)
        assert page.get_by_label("Pool row").input_value() == "7"
        table = page.locator('[data-testid="stDataFrame"]').nth(1)  # the record's contrastive neurons
        table.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        # Pick the first row (its row marker, left of the neuron id): the card opens in place.
        page.mouse.click(*cell(page, table, 0, 12))
        heading = page.get_by_text("Neuron card: ", exact=False).first
        heading.wait_for(timeout=300_000)
        wait_idle(page)
        neuron = page.get_by_label("Neuron card").input_value()
        assert neuron.startswith("L") and f"neuron={neuron}" in page.url
        # Click the neuron id itself: the Neuron explorer opens on it (a new tab, as links in tables do).
        with page.context.expect_page(timeout=60_000) as opened:
            page.mouse.click(*cell(page, table, 0, 70))
        other = opened.value
        wait_idle(other)
        assert "/neurons?neuron=" in other.url
        other.get_by_text(f"Neuron card: {other.url.split('neuron=')[1]}").wait_for(timeout=300_000)

        # A link with a neuron id opens it, with its live top records; a reload keeps it.
        page.goto(f"{url}/neurons?neuron=L5.N10")
        wait_idle(page)
        page.get_by_text("Neuron card: L5.N10").wait_for(timeout=300_000)
        assert page.get_by_role("heading", name="Neuron L5.N10").count() == 1
        page.reload()
        wait_idle(page)
        page.get_by_text("Neuron card: L5.N10").wait_for(timeout=300_000)

        # Settings in the URL: the Select page restores them, and its note explains the share.
        page.goto(f"{url}/select?ratio=0.3&merge=intersection")
        wait_idle(page)
        assert float(page.get_by_role("slider", name="Ratio kept per target").input_value()) == pytest.approx(0.3)
        page.get_by_text("Why this share: intersection of 3 targets at 30% each").wait_for(timeout=60_000)
