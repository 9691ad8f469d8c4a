"""The cache index: derived caches (pool means, map coordinates, baseline scores, target features) listed in
a store's `caches.json` with file, size, sha256 and the inputs each derives from.

A cache is used only if its entry's inputs match and its bytes hash to the listed sha256; a damaged one
raises a `CacheWarning`, is deleted and recomputed. An entry names a plain, visible `.npy` or
`.safetensors` file directly inside the store folder (`cache_name_problem`); any other entry is refused,
never read and never deleted. On a folder this process cannot write, caches are computed but not kept.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np

from .. import atomic
from .format import WRITE_ERRORS, CacheWarning, sha256, shard_name, warn_read_only, write_json

CACHE_SUFFIXES = (".npy", ".safetensors")  # what a derived cache file may be called


def cache_name_problem(name) -> str | None:
    """Why `name` (a caches.json entry's file) is refused, or None: a derived cache is a plain, visible
    `.npy` or `.safetensors` file directly inside the store folder. No separators, no `..`, nothing
    absolute or hidden, none of the store's own files: an entry can never make nait read or delete
    anything else."""
    if not isinstance(name, str) or not name:
        return f"{name!r} is not a file name"
    if "/" in name or "\\" in name or "\0" in name or name.startswith(".") or name.startswith("shard-"):
        return f"{name!r} is not a plain file name inside the store"
    if not name.endswith(CACHE_SUFFIXES):
        return f"{name!r} is not a cache file ({' or '.join(CACHE_SUFFIXES)})"
    return None


def content_id(store) -> str:
    """A digest of `store`'s manifest and every shard's checksums: what derived caches are keyed by.
    Reads only the small checksums files."""
    h = hashlib.sha256(json.dumps(store.manifest, sort_keys=True).encode())
    for start, end in store.shard_ranges():
        try:
            h.update((store.path / shard_name(start, end) / "checksums.json").read_bytes())
        except OSError:
            h.update(b"missing")
    return h.hexdigest()


class Caches:
    """The derived caches of `store` (its folder, its lock and its content id)."""

    def __init__(self, store):
        self.store = store

    @property
    def path(self) -> Path:
        return self.store.path

    def _read(self) -> dict:
        try:
            caches = json.loads((self.path / "caches.json").read_text())
        except FileNotFoundError:
            return {}
        except ValueError:
            caches = None
        if not isinstance(caches, dict):  # a damaged index: every cache is recomputed
            warnings.warn(
                f"{self.path}/caches.json is damaged; derived caches are recomputed", CacheWarning, stacklevel=4
            )
            return {}
        return caches

    def entry_problem(self, entry) -> str | None:
        """Why a caches.json entry is refused (never read, never deleted), or None."""
        if not isinstance(entry, dict) or not {"file", "sha256", "size"} <= set(entry):
            return f"entry {entry!r} is not a cache entry"
        problem = cache_name_problem(entry["file"])
        if problem is None and (self.path / entry["file"]).is_symlink():
            problem = f"{entry['file']!r} is a symbolic link"
        return problem

    def _file(self, entry) -> Path | None:
        """The file a caches.json entry names, inside the store; None for a refused entry (`entry_problem`)."""
        return None if self.entry_problem(entry) else self.path / entry["file"]

    def inputs(self, inputs: dict | None = None) -> dict:
        """What a cache derives from: the store's content (manifest + shard checksums) and `inputs`."""
        return {"store": self.store.content_id, **(inputs or {})}

    def file(self, name: str, inputs: dict | None = None) -> Path | None:
        """The file of cache `name` if it is listed, made from the same inputs, and intact; else None.
        A damaged one (checksum or size mismatch) is reported with a CacheWarning and deleted; an entry
        naming anything but a plain file in the store is ignored (and left alone)."""
        entry = self._read().get(name)
        file = self._file(entry)
        if file is None or entry.get("inputs") != self.inputs(inputs):
            return None
        try:
            intact = file.stat().st_size == entry["size"] and sha256(file) == entry["sha256"]
        except OSError:
            return None
        if not intact:
            warnings.warn(
                f"{file}: derived cache '{name}' fails its checksum (changed or damaged); recomputing it",
                CacheWarning,
                stacklevel=3,
            )
            self.drop(name)
            return None
        return file

    def _update(self, change) -> None:
        """Apply `change(caches)` to caches.json under the store's lock; on a folder this process cannot
        write, nothing changes (a warning says so)."""
        try:
            with self.store.lock("caches"):
                caches = self._read()
                if change(caches):
                    write_json(self.path / "caches.json", caches)
        except OSError as error:
            if error.errno not in WRITE_ERRORS:
                raise
            warn_read_only(self.path, error)

    def record(self, name: str, file: Path, inputs: dict | None = None) -> None:
        """List an already written cache file, a plain file directly inside the store folder. On a store
        folder this process may not write to, the cache is not listed (a warning says so): reading works."""
        file = Path(file)
        problem = cache_name_problem(file.name)
        if problem or file.parent.resolve() != self.path.resolve():
            raise ValueError(
                f"{file}: a derived cache must be a plain file inside {self.path} ({problem or 'elsewhere'})"
            )
        entry = {"file": file.name, "sha256": sha256(file), "size": file.stat().st_size}
        entry["inputs"] = self.inputs(inputs)

        def add(caches):
            caches[name] = entry
            return True

        self._update(add)

    def drop(self, name: str) -> None:
        """Unlist cache `name` and delete its file, only if the entry names a plain file inside the store."""

        def remove(caches):
            entry = caches.pop(name, None)
            if entry is None:
                return False
            file = self._file(entry)
            if file is not None:
                file.unlink(missing_ok=True)
            return True

        self._update(remove)

    def damaged(self) -> list[tuple[str, str]]:
        out = []
        for name, entry in self._read().items():
            problem = self.entry_problem(entry)
            file = self._file(entry)
            if problem:
                out.append(
                    (name, f"{self.path}/caches.json: cache '{name}' refused: {problem} (never read or deleted)")
                )
            elif not file.exists():
                out.append((name, f"{file}: missing"))
            elif file.stat().st_size != entry["size"] or sha256(file) != entry["sha256"]:
                out.append((name, f"{file}: checksum mismatch"))
            elif not isinstance(entry.get("inputs"), dict) or entry["inputs"].get("store") != self.store.content_id:
                out.append((name, f"{file}: stale (the shards it derives from changed)"))
        return out

    def load_array(self, name: str, inputs: dict | None = None) -> np.ndarray | None:
        file = self.file(name, inputs)
        return None if file is None else np.load(file, allow_pickle=False)

    def save_array(self, name: str, array: np.ndarray, inputs: dict | None = None) -> Path | None:
        """Write and list a derived cache; None (after a warning) on a store folder this process cannot write:
        the caller keeps its computed array and simply recomputes it next time."""
        file = self.path / f"{name}.npy"
        try:
            atomic.save_npy(file, array)
        except OSError as error:
            if error.errno not in WRITE_ERRORS:
                raise
            warn_read_only(self.path, error)
            return None
        self.record(name, file, inputs)
        return file
