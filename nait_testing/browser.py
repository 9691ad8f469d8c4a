"""The app served for real (`streamlit run app.py`) and driven in headless Debian Chromium through Playwright:
used by the end-to-end tests and by bench/screenshots.py."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PAGES = {
    "data": "",
    "samples": "samples",
    "neurons": "neurons",
    "map": "map",
    "select": "select",
    "transfer": "transfer",
    "outcomes": "outcomes",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(process, port: int, timeout: float = 120) -> None:
    """Return once the app `process` started answers its health check on 127.0.0.1:`port`; RuntimeError if it
    exits or `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"nait app did not start (exit code {process.poll()})")
        time.sleep(0.5)


@contextmanager
def serve(env: dict | None = None, timeout: float = 120, args=(), log: Path | None = None):
    """`nait app` (streamlit run app.py, on 127.0.0.1 by default) headless on a free port, with `args`; yields
    its base URL, stops it on exit. Its output goes to `log` (else NAIT_APP_LOG, else nowhere)."""
    port = free_port()
    with open(log or os.environ.get("NAIT_APP_LOG", os.devnull), "w") as log:
        process = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/python"),
                "-m",
                "nait_core",
                "app",
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                *args,
            ],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_serving(process, port, timeout)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)


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
        errors = page.locator('[data-testid="stException"]')
        if errors.count():
            raise RuntimeError(f"the {name} page shows an exception: {errors.first.inner_text()[:2000]}")
        files.append(out / f"{name}.png")
        page.screenshot(path=str(files[-1]))
    return files
