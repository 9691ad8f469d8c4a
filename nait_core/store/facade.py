"""`Store`: one store's shards, manifest, caches and location behind one small object.

The jobs live in their own modules: the shard format and integrity (`format`), the manifest and the one
identity rule (`manifest`), the derived caches (`caches`), where the bytes live (`location`) and the read
path (`reading`). This module ties them together: opening, creating, writing, removing and checking shards,
and the per-shard locks that let concurrent writers share the work.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import atomic
from . import location as where
from .caches import Caches, content_id
from .format import (
    HIDDEN,
    PER_SAMPLE,
    REDUCTIONS,
    WRITE_ERRORS,
    StoreError,
    checked_arrays,
    damaged_ranges,
    recapture_hint,
    shard_name,
    shard_problem,
    verify,
    write_error,
    write_json,
    write_shard_folder,
)
from .manifest import checked_manifest, for_writing, format_problem, identity_digest, same_store
from .reading import Reads

try:
    import fcntl
except ImportError:  # not on Windows: locking is then a no-op (one writer per store)
    fcntl = None


@dataclass
class Shard:
    start: int
    end: int
    path: Path


class Store(Reads):
    """Read and write one store. Open existing ones with `Store.open`, new ones with `Store.create`."""

    def __init__(self, path, manifest: dict, place: where.Local | where.Remote | None = None):
        self.place = place or where.Local(path)  # where the bytes live; `path` is the local folder (a mirror)
        self.path = Path(path)
        self.manifest = manifest
        self.caches = Caches(self)
        self._arrays: dict[tuple[int, str], np.ndarray] = {}
        self._held: set[str] = set()  # lock names this object holds (flock does not nest across fds)
        self._content_id: str | None = None
        self._means: dict[str, np.ndarray] = {}

    @property
    def url(self) -> str | None:
        """The URL of a remote store (`path` is then its local mirror); None for a local one."""
        return self.place.url

    @property
    def location(self) -> str | Path:
        """What to pass to `Store.open` again: the URL of a remote store, else its folder."""
        return self.place.location

    @classmethod
    def at(cls, location) -> "Store":
        """The store at `location` (complete or not), its manifest's structure checked; StoreError if there
        is none or its manifest is damaged (the message names the file, the field and the fix)."""
        place = where.at(location)
        return cls(place.path, place.read_manifest(), place)

    @classmethod
    def existing(cls, location) -> "Store | None":
        """The store at `location` (complete or not), or None if there is none or its manifest is damaged."""
        try:
            return cls.at(location)
        except StoreError:
            return None

    # ---- identity and shape
    @property
    def n_samples(self) -> int:
        return self.manifest["data"]["n_samples"]

    @property
    def n_layers(self) -> int:
        return self.manifest["shape"]["layers"]

    @property
    def n_neurons(self) -> int:
        return self.manifest["shape"]["neurons"]

    @property
    def width(self) -> int:
        """Values stored per layer: the neurons, or K for a compact (sketched) store (options.sketch).
        Every shape check uses it."""
        sketch = self.manifest["options"].get("sketch")
        return int(sketch["k"]) if sketch else self.n_neurons

    def expected_shape(self, name: str, rows: int) -> tuple:
        if name == HIDDEN:
            return (rows, self.hidden_size)
        return (rows, self.n_layers, self.width) if name in REDUCTIONS else (rows,)

    @property
    def hidden_size(self) -> int | None:
        """Values of the stored final hidden state per record; None for a store captured before nait kept it."""
        return self.manifest.get("hidden_size")

    @property
    def per_sample_names(self) -> tuple[str, ...]:
        """The per-record arrays every shard holds besides the reductions."""
        return PER_SAMPLE + ((HIDDEN,) if self.hidden_size else ())

    @property
    def reductions(self) -> list[str]:
        return self.manifest["options"]["reductions"]

    @property
    def shard_size(self) -> int:
        return self.manifest["shard_size"]

    @property
    def model_fingerprint(self) -> str:
        return self.manifest["model"]["fingerprint"]

    @property
    def identity(self) -> str:
        """sha256 of what makes this store this store (`manifest.identity`); every shard is bound to it."""
        return identity_digest(self.manifest)

    @property
    def content_id(self) -> str:
        """What derived caches are keyed by (`caches.content_id`); changes whenever a shard is rewritten."""
        if self._content_id is None:
            self._content_id = content_id(self)
        return self._content_id

    def shard_ranges(self) -> list[tuple[int, int]]:
        n, size = self.n_samples, self.shard_size
        return [(s, min(s + size, n)) for s in range(0, n, size)]

    def shards(self) -> list[Shard]:
        return [Shard(s, e, self.path / shard_name(s, e)) for s, e in self.shard_ranges()]

    def has_shard(self, start: int, end: int) -> bool:
        return bool(self.place.written([shard_name(start, end)]))

    def missing_ranges(self) -> list[tuple[int, int]]:
        done = self.place.written([shard_name(s, e) for s, e in self.shard_ranges()])
        return [(s, e) for s, e in self.shard_ranges() if shard_name(s, e) not in done]

    @property
    def complete(self) -> bool:
        return not self.missing_ranges()

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    # ---- locks
    @contextmanager
    def lock(self, name: str, blocking: bool = True):
        """Hold the store's lock `name` (yields False if not blocking and another holder has it).
        fcntl locks die with their process, so a crashed writer never leaves a stale lock behind."""
        if fcntl is None or name in self._held:
            yield True
            return
        folder = self.path / ".locks"
        folder.mkdir(exist_ok=True)
        with open(folder / f"{name}.lock", "a+b") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            self._held.add(name)
            try:
                yield True
            finally:
                self._held.discard(name)
                fcntl.flock(f, fcntl.LOCK_UN)

    def claim_missing(self, ranges=None):
        """Yield each still-missing range of `ranges` (default: all missing) while holding its lock, for
        the caller to compute and `write_shard`. Ranges another process is computing come last: this
        waits for that process and yields them only if it died without writing them. So concurrent
        runs of the same capture share the shards instead of computing (and racing on) the same ones."""
        later = []
        for start, end in list(self.missing_ranges() if ranges is None else ranges):
            with self.lock(shard_name(start, end), blocking=False) as mine:
                if not mine:
                    later.append((start, end))
                elif not self.has_shard(start, end):
                    yield start, end
        for start, end in later:
            with self.lock(shard_name(start, end)):
                if not self.has_shard(start, end):
                    yield start, end

    # ---- creating and writing
    @classmethod
    def create(cls, path, manifest: dict) -> "Store":
        """Create (or reopen, if the manifest matches) a store for writing, at a path or an fsspec URL. A
        `shard_size` of None picks `default_shard_size`; an existing store keeps its own shard size."""
        manifest = for_writing(manifest)
        if where.is_url(str(path)):
            place = where.Remote(str(path))
            return cls(place.path, place.create(manifest), place)
        path = Path(path)
        try:
            return cls._create_local(path, manifest)
        except OSError as error:
            if error.errno in WRITE_ERRORS:
                raise write_error(path, error, "the store") from error
            raise

    @classmethod
    def _create_local(cls, path: Path, manifest: dict) -> "Store":
        path.mkdir(parents=True, exist_ok=True)
        store = cls(path, manifest)
        with store.lock("manifest"):  # two processes creating the same store agree on one manifest
            if (path / "manifest.json").exists():
                try:
                    existing = json.loads((path / "manifest.json").read_text())
                except json.JSONDecodeError as error:
                    raise StoreError(
                        f"{path}/manifest.json is corrupt ({error}); delete the folder to recapture"
                    ) from error
                problem = cls(path, checked_manifest(existing, path / "manifest.json")).format_problem()
                if problem:
                    raise StoreError(problem)
                if not same_store(existing, manifest):
                    raise StoreError(
                        f"{path}: a store with other inputs already lives here; delete it or pick another folder"
                    )
                store = cls(path, existing)
            else:
                write_json(path / "manifest.json", manifest)
            atomic.remove_leftovers(path)  # what killed writers left (their process is gone)
        return store

    def write_shard(self, start: int, end: int, arrays: dict[str, np.ndarray]) -> None:
        """Write one shard atomically: everything goes to a temporary folder (unique per process, thread
        and call) renamed into place under the shard's lock; an existing copy is replaced."""
        arrays = checked_arrays(self, start, end, arrays)
        name = shard_name(start, end)
        try:
            with atomic.temp_folder(self.path, name) as tmp:
                files = write_shard_folder(self, tmp, start, end, arrays)
                with self.lock(name):  # one rename at a time: no ENOTEMPTY, no half-removed folder
                    if (self.path / name).exists():  # an older copy (or a concurrent writer's): moved aside
                        self._discard(self.path / name)
                    os.replace(tmp, self.path / name)
            self.place.upload(name, files)
        except OSError as error:  # the temporary folder is gone already; the shards written so far stay
            if error.errno in WRITE_ERRORS:
                raise write_error(self.path, error, f"shard {start}-{end}") from error
            raise
        finally:
            self._forget(start)

    def _discard(self, folder: Path) -> None:
        trash = self.path / f".trash-{folder.name}-{atomic.unique_suffix()}"
        try:
            os.replace(folder, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def remove_shard(self, start: int, end: int) -> None:
        """Delete one shard (so that the next capture recaptures it)."""
        try:
            with self.lock(shard_name(start, end)):
                self._discard(self.path / shard_name(start, end))
                self.place.remove(shard_name(start, end))
            self._forget(start)
        except OSError as error:
            if error.errno in WRITE_ERRORS:
                raise write_error(self.path, error, f"(remove) damaged shard {start}-{end}") from error
            raise

    # ---- mirroring a remote store
    def fetch(self) -> None:
        """Mirror every remote shard locally (downloads only what changed); raise on a damaged one."""
        for start, end in self.shard_ranges():
            problem = self.place.fetch_shard(self, start, end)
            if problem:
                raise StoreError(f"{problem}; {recapture_hint(self.url)}")

    # ---- opening and checking
    @classmethod
    def open(cls, path, verify: bool = False) -> "Store":
        """Open a complete store, checking its manifest and every file's header and size (cheap);
        with `verify`, also every file's sha256 (reads everything). A URL opens a remote store: its shards
        are downloaded once into a local mirror (each file's sha256 checked as it arrives)."""
        store = cls.at(path)
        problem = store.format_problem()
        if problem:
            raise StoreError(problem)
        missing = store.missing_ranges()
        if missing:
            raise StoreError(
                f"{path}: incomplete, {len(missing)} of {len(store.shard_ranges())} shards missing "
                f"(an interrupted capture? run the capture again to resume)"
            )
        if store.url:
            store.fetch()
        store.check(verify)
        return store

    def format_problem(self) -> str | None:
        return format_problem(self.manifest, self.location)

    def shard_problem(self, start: int, end: int, checksums: bool = False) -> str | None:
        """What is wrong with one shard (None if nothing): files, headers, sizes, and with `checksums` bytes."""
        return shard_problem(self, start, end, checksums)

    def damaged_ranges(self, checksums: bool = False) -> list[tuple[tuple[int, int], str]]:
        """((start, end), problem) for every written shard that fails its check (`format.damaged_ranges`)."""
        return damaged_ranges(self, checksums)

    def check(self, checksums: bool = False) -> None:
        """Raise StoreError unless every shard has the right files, headers, sizes and (optionally) bytes."""
        for start, end in self.shard_ranges():
            problem = self.shard_problem(start, end, checksums)
            if problem:
                raise StoreError(f"{problem}; {recapture_hint(self.path)}")

    def verify(self, repair: bool = False) -> dict:
        """Check every shard's and every derived cache's sha256; with `repair`, remove what is damaged
        (`format.verify`)."""
        return verify(self, repair)

    # ---- derived caches (`caches.Caches`)
    def cache_inputs(self, inputs: dict | None = None) -> dict:
        return self.caches.inputs(inputs)

    def cached_file(self, name: str, inputs: dict | None = None) -> Path | None:
        return self.caches.file(name, inputs)

    def record_cache(self, name: str, file: Path, inputs: dict | None = None) -> None:
        self.caches.record(name, file, inputs)

    def drop_cache(self, name: str) -> None:
        self.caches.drop(name)

    def damaged_caches(self) -> list[tuple[str, str]]:
        return self.caches.damaged()

    def load_cached_array(self, name: str, inputs: dict | None = None) -> np.ndarray | None:
        return self.caches.load_array(name, inputs)

    def save_cached_array(self, name: str, array: np.ndarray, inputs: dict | None = None) -> Path | None:
        return self.caches.save_array(name, array, inputs)


def list_stores(root: Path) -> list[dict]:
    """Every store under `root` with its manifest summary and size (for `nait info` and the app)."""
    out = []
    for manifest_path in sorted(Path(root).glob("*/manifest.json")):
        try:
            store = Store.at(manifest_path.parent)
        except StoreError as error:
            out.append({"path": str(manifest_path.parent), "complete": False, "error": str(error)})
            continue
        out.append(
            {
                "path": str(store.path),
                "model": store.manifest["model"].get("name"),
                "data": store.manifest["data"].get("name"),
                "samples": store.n_samples,
                "layers": store.n_layers,
                "neurons": store.n_neurons,
                "reductions": ",".join(store.reductions),
                "complete": store.complete,
                "size_mb": round(store.size_bytes() / 1e6, 1),
            }
        )
    return out
