"""`nait app`: the Streamlit app, from the checkout or the installed wheel."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def app_script() -> Path:
    """The app's entry file: the checkout's app.py when nait_core runs from a checkout, else the installed copy
    (the wheel ships app.py and pages/ as the `nait_app` folder)."""
    checkout = Path(__file__).resolve().parents[2] / "app.py"
    if checkout.is_file() and (checkout.parent / "pages").is_dir():
        return checkout
    from importlib.util import find_spec

    spec = find_spec("nait_app")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / "app.py").is_file():
            return Path(folder) / "app.py"
    raise ValueError("the app's files (app.py, pages/) are not installed; reinstall nait-studio")


def cmd_app(args):
    """`streamlit run app.py [streamlit options]` with this Python, in the current folder (stores and runs/
    are found relative to it, as with `make app`)."""
    import subprocess
    from importlib.util import find_spec

    if find_spec("streamlit") is None:
        raise ValueError("nait app needs the app's dependencies: pip install 'nait-studio[app]'")
    command = [sys.executable, "-m", "streamlit", "run", str(app_script()), *args.streamlit_args]
    if os.name == "posix":  # become streamlit: signals (Ctrl-C, a service manager's stop) reach it directly
        sys.stdout.flush(), sys.stderr.flush()
        os.execv(sys.executable, command)
    return subprocess.call(command)


def add_app_parser(sub) -> None:
    p = sub.add_parser(
        "app",
        help="open the Streamlit app (other options go to `streamlit run`)",
        description="Open NAIT Studio in the browser: `streamlit run app.py` on the installed app. "
        "Options not listed here go to `streamlit run` (e.g. --server.port 8502, "
        "--server.headless true). The app reads and writes stores under ./cached_features "
        "(NAIT_STORE_DIR changes that) and nait eval results under ./runs (NAIT_EVAL_DIR). "
        "NAIT_SKETCH=K opens the pool compact, as `nait capture --sketch K` stores it (with NAIT_EXACT_SAMPLE "
        "and NAIT_REDUCTIONS, e.g. mean,last-first; the sidebar sets them too).",
        epilog="example: nait app --server.port 8502 --server.headless true",
    )
    p.set_defaults(func=cmd_app)
