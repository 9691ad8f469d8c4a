"""Atomic writes: a file or folder appears whole under its final name, or not at all.

Everything is written to a temporary name in the destination's own folder (so the final `os.replace` is
a rename on one file system), unique to the writer: process id, thread id and a random part, created
with `O_EXCL` so two writers can never share one, even in the same process (app sessions share a PID).
A temporary file or folder is removed when its writer fails or is interrupted; a reader sees the old
file or the new one, never a half-written one. What a killed writer leaves behind carries its process id
and host in its name, so a later run removes it once that writer is gone (`leftovers`, `remove_leftovers`).

    with atomic.replacing(path) as tmp:              # any writer that takes a path (np.save, save_file)
        np.save(tmp, array, allow_pickle=False)
    with atomic.open_for_writing(path, "w", encoding="utf-8") as f:
        f.write(text)
    atomic.write_bytes(path, data); atomic.write_text(path, text); atomic.write_json(path, obj, indent=1)
    with atomic.temp_folder(parent, name) as tmp:    # fill it, then os.replace(tmp, final) under your lock
        ...
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np

# This host, short: a shared folder (NFS) holds other hosts' temporaries, whose writers we cannot see.
HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_UNIQUE = r"(?P<pid>\d+)-\d+-[0-9a-f]{8}-(?P<host>[0-9a-f]{6})"
# `.tmp-<name>-<unique>` and `.trash-<name>-<unique>` folders, `.<name>.tmp<unique><suffix>` files.
_TEMP_NAME = re.compile(rf"\.(?:(?:tmp|trash)-.+-|.+\.tmp){_UNIQUE}(?:\.[A-Za-z0-9]+)?")


def unique_suffix() -> str:
    """A temporary-name suffix no other process, thread, app session or call can share: process id, thread
    id, a random part and this host's tag (`leftovers` reads the process id and host back)."""
    return f"{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:8]}-{HOST}"


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (a killed writer's temporaries may go once it does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def leftovers(folder: Path | str) -> list[Path]:
    """Temporary files and folders in `folder` that a writer on this host left when it was killed: their
    names carry a process id that is no longer running. A live writer's (another app session, another
    capture) and other hosts' are not listed."""
    out = []
    try:
        entries = sorted(Path(folder).iterdir())
    except OSError:
        return out
    for path in entries:
        match = _TEMP_NAME.fullmatch(path.name)
        if match and match["host"] == HOST and not process_alive(int(match["pid"])):
            out.append(path)
    return out


def leftovers_of(path: Path | str) -> list[Path]:
    """`leftovers` of writers of `path` itself: the `.<name>.tmp<unique>` files beside it."""
    path = Path(path)
    return [p for p in leftovers(path.parent) if p.name.startswith(f".{path.name}.tmp")]


def remove_leftovers(folder: Path | str) -> list[Path]:
    """Remove `leftovers(folder)`; returns what was removed (a symbolic link is unlinked, never followed)."""
    removed = []
    for path in leftovers(folder):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except OSError:  # read-only folder, or removed by someone else meanwhile
            pass
    return removed


def _create_temp(path: Path, suffix: str) -> Path:
    """An empty new file `.<name>.tmp<unique><suffix>` beside `path`, created exclusively (`O_EXCL`, as
    `tempfile.mkstemp`) but with the mode a plain `open` gives (0o666 less the umask; mkstemp's 0o600
    would leave the final file unreadable to the group)."""
    while True:
        tmp = path.with_name(f".{path.name}.tmp{unique_suffix()}{suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:  # practically never: the random part differs
            continue


@contextmanager
def replacing(path: Path | str, suffix: str = "") -> Iterator[Path]:
    """A fresh temporary path beside `path` for the block to write; renamed onto `path` when the block
    ends without error, removed when it raises. `suffix` ends the temporary name (e.g. ".npy", which
    `np.save` would otherwise append)."""
    path = Path(path)
    tmp = _create_temp(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never leave a stray temporary file beside the user's output
        raise


@contextmanager
def open_for_writing(path: Path | str, mode: str = "w", **kwargs) -> Iterator[IO]:
    """`open(path, mode, **kwargs)`, atomically: the file object writes a temporary file that replaces
    `path` once it is closed at the end of the block (and is removed if the block raises)."""
    with replacing(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def write_bytes(path: Path | str, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path | str, text: str, encoding: str = "utf-8") -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def write_json(path: Path | str, obj, **dumps) -> None:
    """`json.dumps(obj, **dumps)` written atomically (UTF-8)."""
    write_bytes(path, json.dumps(obj, **dumps).encode())


class _Chunks:
    """A file seen by NumPy as a plain writable object: `np.save` then writes it in 16 MiB chunks through
    `write`, whose error on a full disk keeps its errno (ENOSPC). Given a real file, NumPy's `tofile` raises
    a bare OSError("... requested and ... written") that no caller can tell from any other failure."""

    def __init__(self, f):
        self.write = f.write


def write_npy(path: Path | str, array: np.ndarray) -> None:
    """`np.save(path, array)` without pickle (not atomic: for files inside a temporary folder)."""
    with open(path, "wb") as f:
        np.save(_Chunks(f), array, allow_pickle=False)


def save_npy(path: Path | str, array: np.ndarray) -> None:
    """`np.save(path, array)` without pickle, atomically."""
    with replacing(path, ".npy") as tmp:
        write_npy(tmp, array)


@contextmanager
def temp_folder(parent: Path | str, name: str) -> Iterator[Path]:
    """A new empty folder `<parent>/.tmp-<name>-<unique>` for one writer to fill and then rename into place
    itself (`os.replace(tmp, final)`, typically under a lock, since replacing a folder is the caller's
    policy). Whatever is still there when the block ends, after success or failure, is removed."""
    tmp = Path(parent) / f".tmp-{name}-{unique_suffix()}"
    tmp.mkdir()
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
