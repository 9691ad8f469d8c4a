"""What the app may touch for a visitor (README, Security model): every path typed into it (the sidebar's model,
pool and targets, the Outcomes folder, the export form) must lie inside the data root (`nait app --data-root
DIR`, NAIT_DATA_ROOT; default the working folder) or, for reads, the app's uploads folder and the shipped
results; `hf:` takes hub ids only. The app reads its own stores itself: they are no visitor's path.
The export form writes .jsonl files only, in no hidden folder and not among the stores; `nait app --read-only`
(NAIT_READ_ONLY=1) offers no export form and no uploads.
"""

from __future__ import annotations

import os
from pathlib import Path

from nait_core.datasets import is_builtin
from nait_core.models import BUNDLED_MODEL
from nait_core.paths import OutsideRoot, inside
from nait_core.sources import is_hub, parse_hub

DATA_ROOT_ENV = "NAIT_DATA_ROOT"
READ_ONLY_ENV = "NAIT_READ_ONLY"


def data_root() -> Path:
    return Path(os.environ.get(DATA_ROOT_ENV) or ".").resolve()


def read_only() -> bool:
    return os.environ.get(READ_ONLY_ENV, "") not in ("", "0")


def uploads(store_root) -> Path:
    """Where the sidebar keeps uploaded files (named by content)."""
    return Path(store_root) / "uploads"


def check_data(spec: str, what: str, store_root) -> None:
    """A pool or target: a built-in name, a hub id, or a path inside the data root or the uploads."""
    if is_hub(spec):
        parse_hub(spec)  # refuses anything but a hub id
    elif not (is_builtin(spec) and not Path(spec).exists()):  # a file of that name wins, as load_data reads it
        inside(spec, [data_root(), uploads(store_root)], what)


def check_model(spec: str) -> None:
    """The bundled model, a hub id, or a model folder / .gguf file inside the data root."""
    path = Path(spec).expanduser()  # as models.resolve_model_source reads it
    if spec != BUNDLED_MODEL and (path.suffix == ".gguf" or path.exists() or spec.startswith(("/", ".", "~"))):
        inside(path, [data_root()], "the model")


def check_config(config) -> None:
    """Every path a sidebar setup names; raises OutsideRoot (a ValueError) or DataError before anything is read."""
    check_model(config.model)
    check_data(config.pool, "the pool", config.root)
    for target in config.targets:
        check_data(target, "the target", config.root)


def check_output(path: str, what: str, store_root) -> Path:
    """A file the export form writes: a .jsonl file inside the data root, in no hidden folder (.git, .venv)
    and not among the app's stores: a visitor's records never land in a config, a start-up or a code file."""
    resolved = inside(path, [data_root()], what)
    store = Path(store_root).resolve()
    if resolved.is_relative_to(store):
        raise OutsideRoot(f"{what} {path} is inside the app's store folder {store}: choose a path outside it")
    if any(part.startswith(".") for part in resolved.relative_to(data_root()).parts):
        raise ValueError(f"{what} {path} is a hidden file or in a hidden folder: choose a path without one")
    if resolved.suffix.lower() != ".jsonl":
        raise ValueError(f"{what} {path} does not end in .jsonl: the app writes JSONL files only")
    return resolved


def check_folder(path, what: str, *also) -> Path:
    """A folder the app lists and reads: inside the data root or one of `also` (e.g. the shipped results)."""
    return inside(path, [data_root(), *also], what)
