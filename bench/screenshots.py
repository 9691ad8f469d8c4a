"""Screenshots of every main page of the app, taken in headless Chromium (the README shows them).

    .venv/bin/python bench/screenshots.py                       # the bundled demo, into docs/screenshots/
    NAIT_DEMO_SIZE=120 NAIT_TARGET_SIZE=16 NAIT_STORE_DIR=/tmp/s .venv/bin/python bench/screenshots.py --out /tmp/shots

Starts `streamlit run app.py` headless on a free port (the app captures the demo first if it is not
cached: minutes), opens each page, waits until the script has finished, and saves one PNG per page.
Outcomes shows docs/results/gsm8k (the main run docs/results.md reports) unless NAIT_EVAL_DIR says otherwise.
`serve`, `browser` and `shoot` live in nait_testing/browser.py, shared with the end-to-end tests.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's code and its test helpers, whatever is installed

from nait_testing.browser import CHROMIUM, browser, serve, shoot

RESULTS = ROOT / "docs" / "results" / "gsm8k"  # the main `nait eval` run of docs/results.md, shown on Outcomes


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
