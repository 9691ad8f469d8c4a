"""The first start of a fresh clone, as a newcomer meets it: `git clone`, `make app`, and the wait until the first
page is usable in a real browser (headless Chromium), with what the progress view said along the way.

    .venv/bin/python bench/first_start.py                      # clones this checkout's HEAD into a temporary folder
    .venv/bin/python bench/first_start.py --keep /tmp/fresh    # keep the clone (its .venv and stores) afterwards

Prints, each measured in this one run: the clone, `make install` (the virtual environment; pip's own download
cache in ~/.cache/pip is whatever this machine has, so a machine that never downloaded the wheels spends longer),
the time until `make app` serves, and the time until the Data & model page is drawn with no first-start view left.
The model is dequantised afresh (NAIT_CACHE in the clone's parent).
Every 10 s it records the progress view's first line (records, tokens, tok/s, ETA) and the machine's load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nait_testing.browser import browser, free_port, wait_until_serving  # noqa: E402

PROGRESS = "First start:"


def timed(label: str, command: list[str], cwd: Path) -> float:
    start = time.monotonic()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - start
    print(f"{label}: {seconds:,.0f} s", flush=True)
    return seconds


def first_usable(clone: Path, port: int, log: Path, timeout: float) -> tuple[float, float, list[str]]:
    """(seconds until `make app` serves, seconds until the first page is usable, progress lines seen)."""
    start = time.monotonic()
    seen = []
    with open(log, "w") as out:
        app = subprocess.Popen(
            ["make", "app", f"ARGS=--server.headless true --server.port {port}"],
            cwd=clone,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "NAIT_CACHE": str(clone.parent / "nait-cache")},  # dequantise the model afresh too
        )
        try:
            wait_until_serving(app, port, timeout)
            serving = time.monotonic() - start
            with browser() as page:
                page.goto(f"http://127.0.0.1:{port}/", timeout=timeout * 1000)
                while time.monotonic() - start < timeout:
                    text = page.locator('[data-testid="stMain"]').inner_text(timeout=60_000)
                    running = page.locator('[data-testid="stApp"][data-test-script-state="running"]').count()
                    if PROGRESS in text:
                        line = text[text.index(PROGRESS) :].splitlines()[0]
                        seen.append(f"{time.monotonic() - start:6.0f} s  load {os.getloadavg()[0]:.1f}  {line[:160]}")
                    elif not running and page.locator("h1").count():
                        if page.locator('[data-testid="stException"]').count():
                            raise RuntimeError("the first page shows an exception")
                        return serving, time.monotonic() - start, seen
                    page.wait_for_timeout(10_000)
            raise TimeoutError(f"no usable page after {timeout:.0f} s; see {log}")
        finally:
            os.killpg(app.pid, 15)
            app.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="clone into this (new) folder and keep it")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for a usable page")
    args = parser.parse_args()
    clone = args.keep or Path(tempfile.mkdtemp(prefix="nait-fresh-")) / "nait"
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    print(f"clone of {ROOT} at {head.strip()} into {clone}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    clone_s = timed("git clone", ["git", "clone", "--quiet", str(ROOT), str(clone)], ROOT)
    install_s = timed("make install", ["make", "install"], clone)
    serving, usable, seen = first_usable(clone, free_port(), clone / "first-start.log", args.timeout)
    print(*seen, sep="\n")
    print(f"make app: serving after {serving:,.0f} s, first page usable after {usable:,.0f} s")
    total = clone_s + install_s + usable
    print(
        f"fresh clone to a usable page: {total / 60:.1f} min (clone {clone_s:.0f} s, install {install_s:.0f} s, "
        f"first start {usable:.0f} s); load at the end {os.getloadavg()[0]:.1f}"
    )
    if not args.keep:
        shutil.rmtree(clone.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
