"""`nait app`: the Streamlit app, from the checkout or the installed wheel."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from ..datasets import DEMO_RECORDS


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


# Streamlit options `nait app` sets unless the user gives them (flag or STREAMLIT_* variable): loopback only
# (anyone on the network could otherwise use the app), no usage statistics, no Deploy button, no file
# watcher (on a fresh clone it spent minutes watching .venv/), and no full garbage collection after every
# script run (Streamlit's default: with torch, transformers and the stores on the heap it added 0.1-0.25 s to
# each warm interaction on 2 cores, 1.2-1.5x; Python's own collector still runs; docs/benchmarks.md).
DEFAULT_OPTIONS = {
    "server.address": "127.0.0.1",
    "browser.gatherUsageStats": "false",
    "client.toolbarMode": "minimal",
    "server.fileWatcherType": "none",
    "runner.postScriptGC": "false",
}


# Without an accelerator the first start is mostly forward passes: the whole demo (1,000 records and three
# 64-record targets, 240,000 tokens) takes 11 minutes at ~360 tok/s on 2 cores, after a 3-minute install.
# There `nait app` opens a smaller demo (about 94,000 tokens) unless the user sized it (docs/benchmarks.md).
CPU_DEMO = {"NAIT_DEMO_SIZE": "400", "NAIT_TARGET_SIZE": "32"}


def has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available() or torch.backends.mps.is_available()


def first_start_env(environ, accelerator=has_accelerator) -> dict[str, str]:
    """The demo's size for this machine: CPU_DEMO on a CPU-only one, unless either variable is set (then
    torch is not imported just to ask: it costs seconds of every start)."""
    return {} if any(k in environ for k in CPU_DEMO) or accelerator() else dict(CPU_DEMO)


def env_name(option: str) -> str:
    """The variable Streamlit reads for an option: server.fileWatcherType -> STREAMLIT_SERVER_FILE_WATCHER_TYPE."""
    return "STREAMLIT_" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", option.replace(".", "_")).upper()


def streamlit_options(user_args: list[str], environ=os.environ) -> list[str]:
    """Our DEFAULT_OPTIONS as flags, less those the user set, then the user's own options."""
    given = {a[2:].split("=", 1)[0] for a in user_args if a.startswith("--")}
    ours = [
        item
        for option, value in DEFAULT_OPTIONS.items()
        if option not in given and env_name(option) not in environ
        for item in (f"--{option}", value)
    ]
    return [*ours, *user_args]


def cmd_app(args):
    """`streamlit run app.py [streamlit options]` with this Python, in the current folder (stores and runs/
    are found relative to it, as with `make app`); the data root and read-only mode reach the app as
    NAIT_DATA_ROOT and NAIT_READ_ONLY (studio/guard.py)."""
    import subprocess
    from importlib.util import find_spec

    if find_spec("streamlit") is None:
        raise ValueError("nait app needs the app's dependencies: pip install 'nait-studio[app]'")
    if args.data_root is not None:  # else NAIT_DATA_ROOT, or the current folder
        root = Path(args.data_root).expanduser()
        if not root.is_dir():
            raise ValueError(f"--data-root {args.data_root}: no such folder; give the folder the app may use")
        os.environ["NAIT_DATA_ROOT"] = str(root.resolve())
    if args.read_only:
        os.environ["NAIT_READ_ONLY"] = "1"
    demo = first_start_env(os.environ)
    if demo:
        os.environ.update(demo)
        print(
            f"nait app: no GPU here, so the demo opens at {demo['NAIT_DEMO_SIZE']} of its {DEMO_RECORDS:,} records with "
            f"{demo['NAIT_TARGET_SIZE']}-record targets (a first start of about 5 minutes on 2 cores); "
            "NAIT_DEMO_SIZE=1000 NAIT_TARGET_SIZE=64 nait app opens the whole demo.",
            file=sys.stderr,
        )
    options = streamlit_options(args.streamlit_args)
    command = [sys.executable, "-m", "streamlit", "run", str(app_script()), *options]
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
        "--server.headless true). It listens on 127.0.0.1 only unless you pass --server.address "
        "(e.g. 0.0.0.0 for a team server: then add --read-only and a --data-root), and sets "
        + ", ".join(f"--{o} {v}" for o, v in DEFAULT_OPTIONS.items() if o != "server.address")
        + " unless you pass them. The app reads and writes stores under ./cached_features "
        "(NAIT_STORE_DIR changes that) and nait eval results under ./runs (NAIT_EVAL_DIR). "
        "NAIT_SKETCH=K opens the pool compact, as `nait capture --sketch K` stores it (with NAIT_EXACT_SAMPLE "
        "and NAIT_REDUCTIONS, e.g. mean,last-first; the sidebar sets them too).",
        epilog="example: nait app --server.port 8502 --server.headless true; a team server: "
        "nait app --server.address 0.0.0.0 --data-root /srv/data --read-only",
    )
    p.add_argument(
        "--data-root",
        metavar="DIR",
        help="every file or folder typed into the app (model, pool, targets, Outcomes folder, export paths) "
        "must lie inside DIR, symlinks resolved (default: NAIT_DATA_ROOT, else the current folder); uploads are kept in the store folder",
    )
    p.add_argument(
        "--read-only",
        action="store_true",
        help="no export form and no uploads: visitors write nothing but the stores the app captures",
    )
    p.set_defaults(func=cmd_app)
