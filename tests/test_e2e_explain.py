"""End to end in headless Chromium: the explanation views through real clicks and real links.

In the Sample explorer, a click on a row of the record's neurons opens that neuron's card in place, and a
click on the card's neuron id opens the Neuron explorer on it; a URL with a neuron id opens its card and
survives a reload; settings in the URL restore the Select page; back and forward restore the views. Skipped when /usr/bin/chromium is missing, unless NAIT_REQUIRE_BROWSER=1 (then it fails).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nait_testing.browser import CHROMIUM, browser, serve, wait_idle

pytestmark = pytest.mark.slow

if not Path(CHROMIUM).exists() and os.environ.get("NAIT_REQUIRE_BROWSER") != "1":
    pytest.skip(
        f"{CHROMIUM} not installed (make browser); NAIT_REQUIRE_BROWSER=1 makes this a failure", allow_module_level=True
    )

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
        table = page.locator('[data-testid="stDataFrame"]').nth(2)  # after the pool and "what makes its score"
        table.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        # Pick the first row (its row marker, left of the neuron id): the card opens in place.
        page.mouse.click(*cell(page, table, 0, 12))
        heading = page.get_by_text("Neuron card: ", exact=False).first
        heading.wait_for(timeout=300_000)
        wait_idle(page)
        neuron = page.get_by_role("textbox", name="Neuron card").input_value()
        assert neuron.startswith("L") and f"neuron={neuron}" in page.url
        # The card's neuron id is a link: clicking it opens the Neuron explorer on that neuron (in this tab
        # or a new one, as the browser treats the link).
        link = page.get_by_role("link", name=neuron, exact=True).first
        assert link.get_attribute("href").endswith(f"neurons?neuron={neuron}")
        before = len(page.context.pages)
        link.click()
        for _ in range(120):
            if len(page.context.pages) > before or "/neurons" in page.url:
                break
            page.wait_for_timeout(500)
        other = page.context.pages[-1] if len(page.context.pages) > before else page
        wait_idle(other)
        assert f"/neurons?neuron={neuron}" in other.url
        other.get_by_text(f"Neuron card: {neuron}").wait_for(timeout=300_000)

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

        # Back: the browser's back button returns to the neuron the user was on, card and all.
        page.go_back()
        wait_idle(page)
        assert "/neurons?neuron=L5.N10" in page.url
        page.get_by_text("Neuron card: L5.N10").wait_for(timeout=300_000)
        page.go_forward()
        wait_idle(page)
        assert float(page.get_by_role("slider", name="Ratio kept per target").input_value()) == pytest.approx(0.3)
