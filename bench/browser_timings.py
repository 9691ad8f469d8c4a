"""Browser timings of the app (issue 25): `nait app` on an existing demo store, driven in headless Chromium.

For each page: its first open in a fresh app process (caches cold except the stores on disk) and warm (the
median of 3 reloads); then the typical interactions of issue 25 in one session, 4 rounds (the first with
their caches cold, then warm), side by side with the same in a server that runs Streamlit's full garbage
collection after every script run (its default, which `nait app` turns off). Each time runs from the action to
the end of the last script run it started (the page's own script state, polled every 10 ms in the page), with
the page's title drawn. Prints Markdown tables and the machine's load average at the start and the end.

    .venv/bin/python bench/browser_timings.py --store /tmp/e2e-store   # a folder `nait select` filled
    .venv/bin/python bench/browser_timings.py --store /tmp/fresh/cached_features --demo-size 400 --target-size 32
                                                      # the stores a CPU first start made (bench/first_start.py --keep)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nait_testing.browser import PAGES, browser, serve  # noqa: E402
from nait_testing.demo import DEMO_SIZE, TARGET_SIZE, TARGETS  # noqa: E402

TIMEOUT_MS = 900_000
# Polled in the page every 10 ms: each change of the app's script state with its time (Date.now()). Waiting for a
# "running" selector instead missed runs shorter than the poll and then sat out its whole timeout (3 s).
STATES = """
window.__naitStates = [];
let last = null;
setInterval(() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const state = app && app.getAttribute("data-test-script-state");
  if (state !== last) { last = state; window.__naitStates.push([Date.now(), state]); }
}, 10);
"""
QUIET_MS = 500  # a run counts as over when no other starts within this (a page may rerun itself)
NO_RUN_S = 60  # an action that starts no script run within this is reported, not waited on for TIMEOUT_MS


class Timing(NamedTuple):
    seconds: float  # from the action to the end of the last script run it started
    runs: int  # script runs it started
    running: float  # seconds the page showed a script running (the server's share; the rest is the browser's)


def settled(page, start_ms: float) -> Timing:
    """From `start_ms` (the page's clock) until the last script run it started has stopped, with the title
    drawn and no rerun following within QUIET_MS."""
    began, deadline = time.monotonic(), time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        states = [(t, s) for t, s in page.evaluate("window.__naitStates || []") if t >= start_ms]
        ran = any(s == "running" for _, s in states)
        if not ran and time.monotonic() - began > NO_RUN_S:  # (seen once: a followed link that started no run)
            raise TimeoutError(f"{page.url}: no script run started within {NO_RUN_S} s")
        if ran and states[-1][1] == "notRunning" and page.evaluate("Date.now()") - states[-1][0] > QUIET_MS:
            if page.locator("h1").count():
                if page.locator('[data-testid="stException"]').count():
                    raise RuntimeError(f"{page.url} shows an exception")
                spans = [b[0] - a[0] for a, b in zip(states, states[1:]) if a[1] == "running"]
                return Timing((states[-1][0] - start_ms) / 1000, len(spans), sum(spans) / 1000)
        page.wait_for_timeout(50)
    raise TimeoutError(f"{page.url}: no finished run after {TIMEOUT_MS / 1000:.0f} s")


def goto(page, url: str) -> Timing:
    start = page.evaluate("Date.now()")
    page.goto(url, timeout=TIMEOUT_MS)
    return settled(page, start)


def follow(page, url: str) -> Timing:
    """An in-app link followed as the browser's history does (pushState, popstate): the session stays warm."""
    start = page.evaluate("Date.now()")
    page.evaluate("u => { history.pushState({}, '', u); dispatchEvent(new PopStateEvent('popstate')) }", url)
    return settled(page, start)


ROUNDS = 4  # the first round is each interaction's first in the session (its caches cold); then 3 warm


def interactions(env: dict, target_size: str, extra: list[str]) -> dict[str, list[Timing]]:
    """The typical interactions of issue 25 in one session of one server (`nait app` with `extra` options),
    each ROUNDS times: label -> its timings, round by round."""
    target = f"{TARGETS[1]}-n{target_size}-s0"
    times: dict[str, list[Timing]] = {}
    with serve(env, timeout=600, args=extra) as url, browser() as page:
        page.add_init_script(STATES)
        for path in ("samples", "select", "map", "neurons"):  # an interaction is not a page's first open
            goto(page, f"{url}/{path}")
        steps = {  # each URL differs from the one before it, in every round
            "Neuron explorer: switch feature": f"neurons?feature={target}",
            "Neuron explorer: the L12.N345 box": "neurons?neuron=L12.N345",
            "Neuron explorer: another neuron": "neurons?neuron=L5.N10",
            "Sample explorer: q0.9 threshold link": "samples?threshold=q0.9",
            "Select & export: ratio 0.2": "select?ratio=0.2",
            "Select & export: method jaccard": "select?ratio=0.2&method=jaccard",
            "Overlap map: colour by source": "map?color=source",
            # the settings back to the defaults, so every round's Neuron and Sample explorer steps run under them
            "Select & export: back to overlap, ratio 0.1": "select?ratio=0.1",
        }
        for round_ in range(ROUNDS):
            for label, path in steps.items():
                timing = follow(page, f"{url}/{path}")
                times.setdefault(label, []).append(timing)
                print(
                    f"{extra or 'defaults'} round {round_}: {label}: {timing.seconds:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, type=Path, help="store folder with the demo captured")
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated pages to time")
    parser.add_argument("--demo-size", default=DEMO_SIZE, help="the demo the store holds (NAIT_DEMO_SIZE)")
    parser.add_argument("--target-size", default=TARGET_SIZE, help="its targets' size (NAIT_TARGET_SIZE)")
    args = parser.parse_args()
    env = {"NAIT_STORE_DIR": str(args.store), "NAIT_DEMO_SIZE": args.demo_size, "NAIT_TARGET_SIZE": args.target_size}
    load_start = os.getloadavg()
    rows = []  # (page, first Timing, warm seconds)
    for name in args.pages.split(","):
        path = PAGES[name]
        with serve(env, timeout=600) as url, browser() as page:
            page.add_init_script(STATES)
            first = goto(page, f"{url}/{path}")  # a fresh process: every cache but the stores cold
            warm = statistics.median(goto(page, f"{url}/{path}").seconds for _ in range(3))
        rows.append((name, first, warm))
        print(f"{name}: first {first.seconds:.1f} s, warm {warm:.1f} s", file=sys.stderr, flush=True)
    print("| page | first (s) | of it script running (s), runs | warm reload, median of 3 (s) |\n|---|---:|---:|---:|")
    for label, first, warm in rows:
        print(f"| {label} | {first.seconds:.1f} | {first.running:.1f}, {first.runs} | {warm:.1f} |")
    # The interactions twice, side by side: with nait app's options and with Streamlit's full garbage collection
    # after every script run put back (its default; nait app turns it off).
    variants = {"nait app": [], "postScriptGC": ["--runner.postScriptGC", "true"]}
    times = {name: interactions(env, args.target_size, extra) for name, extra in variants.items()}
    print(
        "\n| interaction | first (s) | warm, median of 3 (s) | of it script running (s) "
        "| warm with postScriptGC true (s) | ratio |\n|---|---:|---:|---:|---:|---:|"
    )
    for label, (first, *warm) in times["nait app"].items():
        gc_warm = statistics.median(t.seconds for t in times["postScriptGC"][label][1:])
        ours = statistics.median(t.seconds for t in warm)
        running = statistics.median(t.running for t in warm)
        print(f"| {label} | {first.seconds:.2f} | {ours:.2f} | {running:.2f} | {gc_warm:.2f} | {gc_warm / ours:.1f} |")
    load_end = os.getloadavg()
    print(
        f"\nLoad average (1, 5, 15 min): start {load_start[0]:.1f}, {load_start[1]:.1f}, {load_start[2]:.1f}; "
        f"end {load_end[0]:.1f}, {load_end[1]:.1f}, {load_end[2]:.1f} on {os.cpu_count()} CPUs."
    )


if __name__ == "__main__":
    main()
