"""End to end: `streamlit run app.py` for real, driven in headless Debian Chromium through Playwright.

Open the app, change the ratio on Select & export, download and write the selection, and check both files
against `nait select` with the same settings; then open every main page and screenshot it. On the Overlap
map, drag a box and a lasso over target points and candidates with the mouse, and follow the chosen records
to the Sample and Neuron explorers; then reload, and load another pool (no stale rows). Skipped when
/usr/bin/chromium is missing, unless NAIT_REQUIRE_BROWSER=1 (then it fails).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from nait_testing.browser import CHROMIUM, PAGES, browser, serve, shoot, wait_idle
from nait_testing.demo import TARGET_SIZE, nait_select

pytestmark = pytest.mark.slow

if not Path(CHROMIUM).exists() and os.environ.get("NAIT_REQUIRE_BROWSER") != "1":
    pytest.skip(
        f"{CHROMIUM} not installed (make browser); NAIT_REQUIRE_BROWSER=1 makes this a failure", allow_module_level=True
    )


def test_change_ratio_and_export_in_a_browser(demo, tmp_path):
    expected = nait_select(demo, tmp_path / "cli.jsonl", "--ratio", "0.2")
    with serve({"NAIT_DATA_ROOT": str(tmp_path)}, timeout=180) as url, browser() as page:
        page.goto(f"{url}/select")
        wait_idle(page)
        count = page.locator('[data-testid="stMetric"]', has_text="Selected records").locator(
            '[data-testid="stMetricValue"]'
        )
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


# ---------------------------------------------------------------- the Overlap map, driven with the mouse

# Every point of the map's first chart in viewport pixels: per trace, whether it is a target trace, the
# points' pixel positions and (candidates) their pool rows, read from plotly.js's own figure.
POINTS_JS = """(gd) => {
  const L = gd._fullLayout, xa = L.xaxis, ya = L.yaxis, box = gd.getBoundingClientRect();
  return gd._fullData.filter(t => t.type !== "heatmap").map(t => ({
    target: (t.name || "").startsWith("target "),
    xs: Array.from(t.x, v => box.left + L._size.l + xa.l2p(v)),
    ys: Array.from(t.y, v => box.top + L._size.t + ya.l2p(v)),
  }));
}"""
PLOT_AREA_JS = """(gd) => { const L = gd._fullLayout, box = gd.getBoundingClientRect();
  return [box.left + L._size.l, box.top + L._size.t, L._size.w, L._size.h]; }"""


def inside(polygon, x, y) -> bool:
    """Ray casting: is (x, y) inside the polygon [(x, y), ...]?"""
    hit = False
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def shrink(polygon, by: float):
    """The polygon scaled about its centre so each vertex moves `by` pixels (negative: grows)."""
    cx, cy = sum(p[0] for p in polygon) / len(polygon), sum(p[1] for p in polygon) / len(polygon)
    out = []
    for x, y in polygon:
        d = ((x - cx) ** 2 + (y - cy) ** 2) ** 0.5 or 1.0
        out.append((x - (x - cx) * by / d, y - (y - cy) * by / d))
    return out


def drag_area(page, shape: str) -> tuple[list, int, int, int]:
    """A box or lasso polygon around the first target set's centre that holds target points and some, not
    all, candidates; returns (polygon, candidates surely inside, candidates perhaps inside, targets inside)."""
    chart = page.locator(".js-plotly-plot").first
    chart.scroll_into_view_if_needed()
    traces = chart.evaluate(POINTS_JS)
    left, top, width, height = chart.evaluate(PLOT_AREA_JS)
    target = next(t for t in traces if t["target"])
    cx, cy = sum(target["xs"]) / len(target["xs"]), sum(target["ys"]) / len(target["ys"])
    cx, cy = min(max(cx, left + 0.2 * width), left + 0.8 * width), min(max(cy, top + 0.2 * height), top + 0.8 * height)
    candidates = [(x, y) for t in traces if not t["target"] for x, y in zip(t["xs"], t["ys"])]
    targets = [(x, y) for t in traces if t["target"] for x, y in zip(t["xs"], t["ys"])]
    for share in (0.15, 0.2, 0.25, 0.3, 0.35):
        rx, ry = share * width, share * height
        if shape == "box":
            polygon = [(cx - rx, cy - ry), (cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry)]
        else:  # an irregular hexagon, not a rectangle
            polygon = [
                (cx - rx, cy),
                (cx - rx / 2, cy - ry),
                (cx + rx / 2, cy - ry * 0.8),
                (cx + rx, cy),
                (cx + rx / 2, cy + ry),
                (cx - rx / 2, cy + ry * 0.9),
            ]
        sure = sum(inside(shrink(polygon, 4), x, y) for x, y in candidates)
        maybe = sum(inside(shrink(polygon, -4), x, y) for x, y in candidates)
        hit = sum(inside(polygon, x, y) for x, y in targets)
        if hit and 0 < sure and maybe < len(candidates):
            return polygon, sure, maybe, hit
    raise AssertionError("no area around the targets holds both targets and some candidates")


def drag(page, shape: str, polygon) -> None:
    """Switch the modebar to box or lasso selection and drag the polygon with the mouse."""
    chart = page.locator(".js-plotly-plot").first
    chart.hover()
    chart.locator(f'.modebar-btn[data-title="{"Box Select" if shape == "box" else "Lasso Select"}"]').click()
    if shape == "box":
        (x0, y0), _, (x1, y1), _ = polygon
        path = [(x0, y0), (x1, y1)]
    else:
        path = polygon + polygon[:1]
    page.mouse.move(*path[0])
    page.mouse.down()
    for x, y in path[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def no_exception(page) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert not errors.count(), errors.first.inner_text()[:3000]


def go_to(page, title: str) -> None:
    """Open a page through the sidebar's navigation (same session, unlike page.goto)."""
    page.locator('[data-testid="stSidebar"]').get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
    wait_idle(page)
    no_exception(page)


def choose_on_map(page, shape: str) -> int:
    """Select with the box or lasso over targets and candidates; press "Use these"; return the count."""
    polygon, sure, maybe, hit = drag_area(page, shape)
    drag(page, shape, polygon)
    page.wait_for_timeout(1000)
    wait_idle(page)
    no_exception(page)  # the selection held target points: today's main crashes here (KeyError: 0)
    chosen = page.get_by_text("candidates chosen", exact=False)
    chosen.first.wait_for(timeout=120_000)
    count = int(chosen.first.inner_text().split()[0].replace(",", ""))
    assert hit and sure <= count <= maybe, (shape, sure, count, maybe)
    page.get_by_role("button", name=f"Use these {count:,} records on the other pages").click()
    page.wait_for_timeout(1000)
    wait_idle(page)
    no_exception(page)
    page.get_by_text(f"{count:,} records chosen here").wait_for(timeout=60_000)
    return count


def selected_on_chart(page) -> int:
    """Points drawn selected (Plotly's selectedpoints) over every chart of the page."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.js-plotly-plot')]
            .flatMap(plot => plot.data || []).reduce((n, trace) => n + (trace.selectedpoints || []).length, 0)"""
    )


def check_filter(page, count: int, pool_size: int) -> None:
    """The Sample explorer lists just the chosen records; the Neuron explorer has their group."""
    go_to(page, "Sample explorer")
    box = page.get_by_role("checkbox", name=f"Only the {count:,} points chosen on the map")
    assert box.is_checked()
    page.get_by_text(f"{count:,} of {pool_size:,} records match").first.wait_for(timeout=60_000)
    go_to(page, "Neuron explorer")
    assert page.locator('[data-testid="stMetric"]', has_text="chosen on the map").count() == 1


def test_box_and_lasso_on_the_map_then_reload_and_a_new_pool(demo, tmp_path):
    pool = tmp_path / "five.jsonl"
    pool.write_text(
        "".join(f'{{"instruction": "Add {i} and {i + 1}.", "input": "", "output": "{2 * i + 1}"}}\n' for i in range(5))
    )
    with serve({"NAIT_DATA_ROOT": str(tmp_path)}, timeout=180) as url, browser(height=1400) as page:
        page.set_default_timeout(120_000)
        page.goto(f"{url}/map")
        wait_idle(page)
        no_exception(page)
        for shape in ("box", "lasso"):
            count = choose_on_map(page, shape)
            check_filter(page, count, 120)
            go_to(page, "Overlap map")
            page.get_by_text(f"{count:,} records chosen here").wait_for(timeout=60_000)

        # A reload starts a new session: the URL brings the chosen records back (`chosen=`), nothing else does.
        assert "chosen=" in page.url
        page.reload()
        wait_idle(page)
        no_exception(page)
        page.get_by_text(f"{count:,} records chosen here").wait_for(timeout=60_000)
        # A link with a box shows it drawn, its dots selected (issue 25: it showed none), and a new box drawn
        # over them replaces it.
        page.goto(f"{url}/map?box=0-5")
        wait_idle(page)
        page.get_by_text("6 candidates chosen").wait_for(timeout=60_000)
        assert selected_on_chart(page) == 6
        choose_on_map(page, "box")
        page.goto(f"{url}/map")
        wait_idle(page)
        no_exception(page)
        page.get_by_role("heading", name="Overlap map").first.wait_for()
        assert not page.get_by_text("records chosen here").count()
        count = choose_on_map(page, "box")

        # A new pool (5 records): no stale rows or map choices anywhere.
        page.get_by_text("Model and data").click()
        wait_idle(page)
        page.get_by_role("textbox", name="Candidate pool", exact=True).fill(str(pool))
        page.get_by_role("button", name="Load", exact=True).click()
        page.wait_for_timeout(1000)
        wait_idle(page)
        no_exception(page)
        try:  # one full suite run (not reproduced alone or with the app tests) kept the old pool for 10 minutes
            page.locator('[data-testid="stSidebar"]').get_by_text("5 records").wait_for(timeout=300_000)
        except Exception as error:
            raise AssertionError(
                f"the new pool did not load; the page says:\n{page.inner_text('body')[:3000]}"
            ) from error
        page.get_by_text("records chosen here").wait_for(state="detached", timeout=60_000)
        go_to(page, "Sample explorer")
        assert not page.get_by_role("checkbox", name="chosen on the map").count()
        page.get_by_text("5 of 5 records match").first.wait_for()
        go_to(page, "Neuron explorer")
        assert not page.locator('[data-testid="stMetric"]', has_text="chosen on the map").count()
        go_to(page, "Overlap map")
        assert not page.get_by_text("records chosen here").count()


# ---------------------------------------------------------------- safe when shared (issue 21)


def test_bad_links_and_outside_paths_are_refused_in_a_browser(demo, tmp_path):
    """`nait app --data-root R`: a link with a bad merge opens with a note, not a broken session; a pool, an
    export path and a results folder outside R are refused on the page, naming the path and R; no traceback."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    secret = outside / "secret.jsonl"
    secret.write_text('{"instruction": "the password", "output": "hunter2"}\n')
    with serve(timeout=180, args=["--data-root", str(root)]) as url, browser(height=1400) as page:
        page.set_default_timeout(120_000)
        page.goto(f"{url}/select?merge=bogus")
        wait_idle(page)
        no_exception(page)
        page.get_by_text("Ignoring the scoring settings in the link").wait_for()
        page.get_by_role("heading", name="Select & export").first.wait_for()

        page.get_by_label("…or write it to a path").fill(str(outside / "chosen.jsonl"))
        page.get_by_role("button", name="Write", exact=True).click()
        page.get_by_text(f"is outside the data root {root}").first.wait_for()
        wait_idle(page)  # the rerun the form started has ended: the sidebar's own submit is not lost in it
        no_exception(page)
        assert not (outside / "chosen.jsonl").exists()

        page.get_by_text("Model and data").click()
        page.get_by_role("textbox", name="Candidate pool", exact=True).fill(str(secret))
        page.get_by_role("button", name="Load", exact=True).click()
        wait_idle(page)
        try:
            page.get_by_text(f"the pool {secret} is outside the data root {root}").first.wait_for(timeout=300_000)
        except Exception as error:
            raise AssertionError(f"no refusal; the page says:\n{page.inner_text('body')[:3000]}") from error
        no_exception(page)
        assert "hunter2" not in page.inner_text("body")

        page.goto(f"{url}/outcomes")
        wait_idle(page)
        box = page.get_by_role("textbox", name="Results folder")
        box.fill(str(outside))
        box.press("Enter")
        page.get_by_text(f"Not read: the results folder {outside} is outside the data root {root}").wait_for()
        no_exception(page)


# ---------------------------------------------------------------- Back and Forward (issue 25)


def selected_count(page) -> int:
    count = page.locator('[data-testid="stMetric"]', has_text="Selected records").locator(
        '[data-testid="stMetricValue"]'
    )
    return int(count.inner_text().replace(",", ""))


def downloaded(page, path: Path) -> bytes:
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the selection (JSONL)").click()
    download.value.save_as(path)
    return path.read_bytes()


def settle(page) -> None:
    page.wait_for_timeout(500)
    wait_idle(page)
    no_exception(page)


def test_back_and_forward_restore_the_controls_the_count_and_the_export(demo, tmp_path):
    """Issue 25: after Back the URL and the export said top=10 while the box still showed 50 (and the method
    radio still showed jaccard): now the controls, the count and the downloaded file follow the URL, one
    history entry per change."""
    top10 = nait_select(demo, tmp_path / "top10.jsonl", "--top", "10")
    top50 = nait_select(demo, tmp_path / "top50.jsonl", "--top", "50")
    ratio = nait_select(demo, tmp_path / "ratio.jsonl", "--ratio", "0.2")
    with serve({"NAIT_DATA_ROOT": str(tmp_path)}, timeout=180) as url, browser(height=1400) as page:
        page.set_default_timeout(120_000)
        page.goto(f"{url}/select?top=10")
        wait_idle(page)
        box = page.get_by_label("Records kept per target")
        assert box.input_value() == "10" and selected_count(page) == top10.count(b"\n")
        entries = page.evaluate("history.length")
        box.fill("50")
        box.press("Enter")
        settle(page)
        assert page.url.endswith("top=50") and selected_count(page) == top50.count(b"\n")
        assert page.evaluate("history.length") == entries + 1  # one entry per change
        page.go_back()
        settle(page)
        assert page.url.endswith("top=10") and box.input_value() == "10"
        assert selected_count(page) == top10.count(b"\n") and downloaded(page, tmp_path / "back.jsonl") == top10
        page.go_forward()
        settle(page)
        assert page.url.endswith("top=50") and box.input_value() == "50"
        assert selected_count(page) == top50.count(b"\n") and downloaded(page, tmp_path / "fwd.jsonl") == top50

        page.goto(f"{url}/select?ratio=0.2")
        wait_idle(page)
        page.get_by_text("jaccard", exact=True).first.click()
        settle(page)
        assert "method=jaccard" in page.url and page.get_by_role("radio", name="jaccard", exact=True).is_checked()
        page.go_back()
        settle(page)
        assert "method" not in page.url and page.get_by_role("radio", name="overlap", exact=True).is_checked()
        assert selected_count(page) == ratio.count(b"\n") and downloaded(page, tmp_path / "ratio-back.jsonl") == ratio
        page.go_forward()
        settle(page)
        assert page.get_by_role("radio", name="jaccard", exact=True).is_checked()
        # Every other page's controls, the same way: test_back_and_forward_after_each_kind_of_change_on_every_page


def fill(page, label: str, text: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Enter")


# ---------------------------------------------------------------- Back and Forward on every page (issue 25)

# What a page shows and how its controls are set: every input's value or check in the main area, the
# selectboxes' and multiselects' shown choices, the headings and the metrics.
SNAPSHOT_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const inputs = Array.from(main.querySelectorAll('input, textarea'),
    el => (el.type === 'radio' || el.type === 'checkbox') ? `${el.type}:${el.checked}` : `${el.type}:${el.value}`);
  const texts = sel => Array.from(main.querySelectorAll(sel), el => el.innerText.trim());
  return {inputs, choices: texts('[data-testid="stSelectbox"], [data-testid="stMultiSelect"]'),
          headings: texts('h1, h2, h3, h4'), metrics: texts('[data-testid="stMetric"]')};
}"""


def snapshot(page) -> dict:
    return {"url": page.url, **page.evaluate(SNAPSHOT_JS)}


def check_back_and_forward(page, what: str, change) -> None:
    """`change()` adds one history entry; Back shows the page and its controls as they were before it, and
    Forward as they were after it, as a reload of each URL would."""
    before, entries = stable(page), page.evaluate("history.length")
    change()
    after = stable(page)
    assert after["url"] != before["url"], f"{what}: the URL did not change"
    assert page.evaluate("history.length") == entries + 1, f"{what}: not one history entry"
    page.go_back()
    shows(page, before, f"{what}: Back")
    page.go_forward()
    shows(page, after, f"{what}: Forward")
    page.reload()  # ...and the URL alone, in a new session, shows the same
    shows(page, after, f"{what}: a reload")


def stable(page, timeout: float = 60) -> dict:
    """The page's `snapshot` once the same twice in a row (charts and late elements drawn)."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        settle(page)
        now = snapshot(page)
        if now == last or time.monotonic() > deadline:
            return now
        last = now


def shows(page, expected: dict, what: str, timeout: float = 60) -> None:
    """The page comes to show `expected` (a `snapshot`) once its reruns have drawn it."""
    deadline = time.monotonic() + timeout
    while True:
        settle(page)
        now = snapshot(page)
        if now == expected or time.monotonic() > deadline:
            break
    assert now == expected, what


def radio(page, group: str, option: str):
    return lambda: page.get_by_role("radiogroup", name=group).get_by_text(option, exact=True).click()


def choose(page, label: str, option: str):
    def pick():
        page.get_by_label(label, exact=True).click()
        page.get_by_role("option", name=option, exact=True).click()

    return pick


def nav(page, title: str):
    return lambda: page.locator('[data-testid="stSidebar"]').get_by_role("link", name=title, exact=True).click()


def test_back_and_forward_after_each_kind_of_change_on_every_page(demo, tmp_path):
    """Issue 25: some changes needed two Back presses (a page switch, then the page's own URL write), and the
    map's selection, the sample search and heatmap view, Transfer's top-neurons box, the Outcomes run and the
    Neuron explorer's feature and neuron were not in the URL (Data & model has no choice in it). Now each change
    is one history entry, and Back, Forward and a reload each show the controls and the page as the URL says."""
    log = tmp_path / "app.log"
    env = {"NAIT_DATA_ROOT": str(tmp_path), "NAIT_EVAL_DIR": str(tmp_path / "runs")}
    with serve(env, timeout=180, log=log) as url, browser(height=1400) as page:
        page.set_default_timeout(120_000)
        # Links that set widgets from the URL (they warned "created with a default value but also had its value
        # set via the Session State API" in the log: a widget given both)
        for link in ("neurons?neuron=L5.N10", f"transfer?targets=gsm8k-n{TARGET_SIZE}-s0,mmlu-n{TARGET_SIZE}-s0&k=20"):
            page.goto(f"{url}/{link}")
            settle(page)
        page.goto(f"{url}/?ratio=0.2")
        settle(page)
        check_back_and_forward(page, "page switch", nav(page, "Neuron explorer"))  # carries ratio=0.2
        assert "ratio=0.2" in page.url
        check_back_and_forward(page, "feature", choose(page, "Feature", f"humaneval-n{TARGET_SIZE}-s0"))
        check_back_and_forward(page, "any neuron", radio(page, "Neuron", "any neuron"))
        check_back_and_forward(page, "neuron id", lambda: fill(page, "Neuron id", "L12.N345"))
        assert page.get_by_role("heading", name="Neuron L12.N345").count()

        def layer_and_index():
            page.get_by_label("Layer", exact=True).fill("7")
            page.get_by_label("Index", exact=True).fill("8")
            page.get_by_role("button", name="Show", exact=True).click()

        check_back_and_forward(page, "layer and index", layer_and_index)
        assert page.get_by_role("heading", name="Neuron L7.N8").count()

        nav(page, "Sample explorer")()
        settle(page)
        check_back_and_forward(page, "search", lambda: fill(page, "Search text", "python"))
        check_back_and_forward(page, "heatmap view", radio(page, "Heatmap", "sample"))
        check_back_and_forward(page, "row", lambda: fill(page, "Pool row", "9"))

        nav(page, "Overlap map")()
        settle(page)
        check_back_and_forward(page, "colour", radio(page, "Colour candidates by", "source"))
        check_back_and_forward(page, "per layer", lambda: fill(page, "Top neurons per layer", "2"))
        polygon, *_ = drag_area(page, "box")
        check_back_and_forward(page, "box", lambda: drag(page, "box", polygon))
        assert "box=" in page.url and page.get_by_text("candidates chosen", exact=False).count()

        nav(page, "Transfer")()
        settle(page)
        check_back_and_forward(page, "top neurons", lambda: fill(page, "Top neurons per layer and target", "30"))
        check_back_and_forward(page, "shared neurons listed", lambda: fill(page, "Shared neurons listed", "12"))

        def one_target_fewer():  # Backspace in a multiselect removes its last choice
            page.get_by_label("Targets compared", exact=True).click()
            page.keyboard.press("Backspace")
            page.keyboard.press("Escape")

        check_back_and_forward(page, "targets compared", one_target_fewer)

        nav(page, "Outcomes")()  # the shipped runs (NAIT_EVAL_DIR is empty), opened on the most informative
        settle(page)
        check_back_and_forward(page, "run", choose(page, "Run", "peers-cpu-planted"))

        # A page reopened from the sidebar shows its own choices as it was left in this session (its link carries
        # them), in one history entry: they were reset to the page's defaults. (A reload is a new session.)
        nav(page, "Neuron explorer")()
        settle(page)
        radio(page, "Neuron", "any neuron")()
        settle(page)
        fill(page, "Neuron id", "L7.N8")
        settle(page)
        nav(page, "Sample explorer")()
        settle(page)
        fill(page, "Search text", "python")
        settle(page)
        fill(page, "Pool row", "9")
        left = stable(page)
        nav(page, "Transfer")()
        settle(page)
        entries = page.evaluate("history.length")
        nav(page, "Neuron explorer")()
        neurons = stable(page)
        assert page.get_by_role("heading", name="Neuron L7.N8").count(), neurons["headings"]
        assert page.evaluate("history.length") == entries + 1
        nav(page, "Sample explorer")()
        shows(page, left, "Sample explorer reopened from the sidebar")
    assert "Session State API" not in log.read_text(), log.read_text()[-3000:]
