"""Screenshots of every main page of the app, taken in headless Chromium (the README shows them).

    .venv/bin/python bench/screenshots.py                       # the bundled demo, into docs/screenshots/
    NAIT_DEMO_SIZE=120 NAIT_TARGET_SIZE=16 NAIT_STORE_DIR=/tmp/s .venv/bin/python bench/screenshots.py --out /tmp/shots

Starts `streamlit run app.py` headless on a free port (the app captures the demo first if it is not
cached: minutes), opens each page, waits until the script has finished, and saves one PNG per page.
Outcomes shows docs/results/gsm8k (the main run docs/results.md reports) unless NAIT_EVAL_DIR says otherwise.
`serve`, `browser` and `wait_idle` are shared with the end-to-end test (tests/test_e2e_browser.py).
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
PAGES = {"data": "", "samples": "samples", "neurons": "neurons", "map": "map", "select": "select", "transfer": "transfer",
         "outcomes": "outcomes"}
RESULTS = ROOT / "docs" / "results" / "gsm8k"  # the main `nait eval` run of docs/results.md, shown on Outcomes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(env: dict | None = None, timeout: float = 120):
    """`streamlit run app.py` headless on a free port; yields its base URL, stops it on exit."""
    port = free_port()
    log = open(os.environ.get("NAIT_APP_LOG", os.devnull), "w")
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/streamlit"), "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start (exit code {process.poll()})") from None
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@contextmanager
def browser(width: int = 1400, height: int = 1800):
    """A page of headless Debian Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium.new_page(viewport={"width": width, "height": height}, accept_downloads=True)
        finally:
            chromium.close()


def wait_idle(page, timeout_ms: float = 600_000) -> None:
    """Wait until the app's script has finished running (and the page has drawn its title)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)
    page.wait_for_selector("h1", timeout=timeout_ms)
    page.wait_for_timeout(1500)  # charts draw after the script ends
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)


def shoot(page, url: str, out: Path) -> list[Path]:
    """One PNG per main page under `out`; fails if a page shows an exception."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, path in PAGES.items():
        page.goto(f"{url}/{path}")
        wait_idle(page)
        if page.locator('[data-testid="stException"]').count():
            raise RuntimeError(f"the {name} page shows an exception: {page.locator('[data-testid=stException]').first.inner_text()[:2000]}")
        files.append(out / f"{name}.png")
        page.screenshot(path=str(files[-1]))
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} not found: install Debian's chromium (make browser)", file=sys.stderr)
        return 1
    with serve({"NAIT_EVAL_DIR": os.environ.get("NAIT_EVAL_DIR", str(RESULTS))}) as url, browser() as page:
        for file in shoot(page, url, args.out):
            print(file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
