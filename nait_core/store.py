"""The feature store: per-sample neuron summaries of one data set under one model, on disk.

Layout of `cached_features/<key>/`:
    manifest.json                      model, data hash, options, shape, shard size, format version
    shard-<start>-<end>/               one independent, atomically renamed folder per index range
        <reduction>.npy                float16 [samples, layers, width], memory-mapped on read
        tokens.npy, response_tokens.npy, truncated.npy   per-sample counts [samples]
        checksums.json                 the store's identity digest, the shard's range and the sha256 of
                                       each file above (written last: marks completeness)
    caches.json                        derived caches: file, sha256, size and the inputs each derives from
    pool-mean-<reduction>.npy, map-*.npy, ifd-*.npy, feature.safetensors   derived caches in caches.json
    .locks/                            one lock file per shard (and one for caches.json)

Integrity has two levels. Opening a store (`Store.open`) checks the manifest, every shard's files,
their .npy headers (shape, dtype) and sizes: milliseconds, no hashing. Full sha256 checksums are
computed when a shard is written and checked by `Store.verify` (`nait verify`, or `--verify` on a
command). A shard damaged after writing fails `nait verify`, or the first check or read that trips on
it; `nait verify --repair` (or the capture itself, which replaces a shard that fails its check) removes
it so that the same capture command recaptures just that shard.

Shards are independent: any worker can write any range, and a capture resumes from the shards that
exist. Writers take a per-shard lock (fcntl, released by the kernel when a process dies, so never
stale), so concurrent runs share the work instead of racing. Nothing is read from disk with pickle.

Nothing read from a store is trusted as a path: a cache entry names a plain file inside the store folder
(`cache_name_problem`) or is refused, never read and never deleted; a shard's checksums are bound to the
store's identity and the shard's range, so a shard copied in from another store is damaged, not used.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import shutil
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import atomic

try:
    import fcntl
except ImportError:  # not on Windows: locking is then a no-op (one writer per store)
    fcntl = None

FORMAT_VERSION = 2  # 2: checksums.json is bound to the store's identity and the shard's range
CACHE_SUFFIXES = (".npy", ".safetensors")  # what a derived cache file may be called
REDUCTIONS = (
    "mean",
    "last",
    "first",
    "response_mean",
    "last-first",
)  # last-first: ΔA stored directly (half of last + first)
DEFAULT_REDUCTIONS = ("mean", "last", "first")  # what overlap, jaccard and nait-pca need
PER_SAMPLE = ("tokens", "response_tokens", "truncated")
# The final hidden state's position-weighted mean per record (float32 [n, hidden]; what `rds` reads), in stores
# whose manifest has `hidden_size`. Not part of a store's identity: older stores, without it, keep serving the
# neuron methods, and only `rds` asks for a recapture.
HIDDEN = "hidden_wmean"
MAX_SHARD_SIZE = 512
MIN_SHARD_SIZE = 32
CHUNK_BYTES = 8 << 20  # float32 bytes per read chunk: small enough to stay in the CPU's cache between passes
READ_THREADS = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)


def cast_into(out: np.ndarray, values: np.ndarray) -> None:
    """out[...] = values (float16 → float32) through torch's vectorised cast: about 4.6 G values/s on one
    core here, 40× NumPy's. `values` is read where it lies, in the store's memory map (writable
    copy-on-write, so torch takes it without a copy or a warning). Meant for `map_chunks`' reader threads, whose torch pool is one thread: torch's own
    2-thread pool cost 2–9× more time per cast than it saved on these 2 cores (docs/benchmarks.md).
    torch is imported here, not with the module: reading a store needs no model, and `import
    nait_core.store` stays light."""
    import torch

    torch.from_numpy(out.reshape(-1)).copy_(torch.from_numpy(np.asarray(values).reshape(-1)))


class StoreError(RuntimeError):
    """A store that is missing, incomplete, corrupt or made for other inputs."""


class CacheWarning(UserWarning):
    """A derived cache that failed its checksum: it is recomputed, never used."""


def default_shard_size(n_samples: int) -> int:
    """At least 16 shards when the pool allows (an interruption loses at most 1/16 of the work), at
    most 512 samples per shard (so files stay tens of MB at 7B shape), at least 32 (whole batches)."""
    return max(MIN_SHARD_SIZE, min(MAX_SHARD_SIZE, -(-n_samples // 16)))


def _write_json(path: Path, obj) -> None:
    """The store's JSON files (manifest, caches), written atomically."""
    atomic.write_json(path, obj, indent=2, sort_keys=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


_HEADERS: dict[bytes, tuple[tuple, np.dtype, int]] = {}  # raw header -> parsed: shards share a few headers


def npy_header(path: Path) -> tuple[tuple, np.dtype, int, int]:
    """(shape, dtype, size its header implies, actual size) of a .npy file, reading only its header."""
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8 or prefix[:6] != b"\x93NUMPY":
            raise ValueError("not a .npy file")
        length_bytes = f.read(2 if prefix[6] == 1 else 4)
        raw = prefix + length_bytes + f.read(int.from_bytes(length_bytes, "little"))
        actual = os.fstat(f.fileno()).st_size
    if raw not in _HEADERS:
        buffer = io.BytesIO(raw)
        version = np.lib.format.read_magic(buffer)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(buffer)
        if dtype.hasobject:
            raise ValueError("holds Python objects (would need pickle)")
        _HEADERS[raw] = (shape, dtype, len(raw) + math.prod(shape) * dtype.itemsize)
    return (*_HEADERS[raw], actual)


def manifest_problem(manifest) -> str | None:
    """What is wrong with a manifest's structure (None if nothing): every field a store reads, with its type,
    so that a hand-edited or hostile manifest is refused with its field named instead of a traceback."""
    if not isinstance(manifest, dict):
        return f"is a JSON {type(manifest).__name__}, not an object"

    def field(*keys, kind=int, low=None):
        value = manifest
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return f"field '{'.'.join(keys)}' is missing"
            value = value[key]
        if not isinstance(value, kind) or isinstance(value, bool) or (low is not None and value < low):
            want = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            return f"field '{'.'.join(keys)}' is {value!r}, expected {want}" + (f" ≥ {low}" if low is not None else "")
        return None

    problem = (
        field("model", "fingerprint", kind=str)
        or field("data", "hash", kind=str)
        or field("data", "n_samples", low=1)
        or field("shard_size", low=1)
        or field("options", "reductions", kind=list)
        or (field("shape", "layers", low=1) if "shape" in manifest else "field 'shape' is missing")
        or field("shape", "neurons", low=1)
        or (field("hidden_size", low=1) if "hidden_size" in manifest else None)
    )
    if problem:
        return problem
    unknown = [r for r in manifest["options"]["reductions"] if r not in REDUCTIONS]
    return f"field 'options.reductions' holds unknown {unknown}" if unknown else None


def read_manifest(path: Path) -> dict:
    """The manifest of the store folder `path`, checked (`manifest_problem`); StoreError naming the file,
    the field and the fix otherwise."""
    file = Path(path) / "manifest.json"
    try:
        manifest = json.loads(file.read_text())
    except FileNotFoundError as error:
        raise StoreError(f"{path}: no store here (manifest.json missing)") from error
    except (OSError, ValueError) as error:
        raise StoreError(f"{file} is unreadable or corrupt ({error}); delete the folder to recapture") from error
    return checked_manifest(manifest, file)


def checked_manifest(manifest, where) -> dict:
    problem = manifest_problem(manifest)
    if problem:
        raise StoreError(f"{where}: {problem} (damaged or edited); delete the store folder to recapture")
    return manifest


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


# What a store on a read-only folder, a full disk or an exhausted quota raises: reported, never a traceback.
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def write_error(path, error: OSError, doing: str) -> StoreError:
    """The StoreError for a write into store `path` that failed with `error`, saying what to do."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some space (or pick another --store-dir), then run the same command again: it resumes"
    else:
        fix = "make the folder writable, or pick another --store-dir"
    return StoreError(f"{path}: cannot write {doing} ({error.strerror}); {fix}")


def ensure_writable(path: Path) -> None:
    """StoreError now, before a model is loaded, if the store folder `path` cannot be created or written
    (its nearest existing folder is not writable: permissions, or a read-only file system)."""
    existing = next(p for p in [path, *path.parents] if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        error = OSError(errno.EROFS if os.access(existing, os.R_OK) else errno.EACCES, "not writable")
        raise write_error(existing if existing != path else path, error, "the store")


def warn_read_only(path: Path, error: OSError) -> None:
    warnings.warn(
        f"{path}: cannot write derived caches here ({error.strerror}); they are recomputed on every use "
        f"(make the folder writable to keep them)",
        CacheWarning,
        stacklevel=3,
    )


def shard_name(start: int, end: int) -> str:
    return f"shard-{start:09d}-{end:09d}"


def recapture_hint(store_path) -> str:
    return (
        f"run `nait verify --repair {store_path}` to remove damaged shards, then the same capture command "
        f"again to recapture just those (a capture also replaces a shard that fails its check by itself)"
    )


def is_url(location) -> bool:
    """An fsspec URL (s3://, gs://, memory://, file://...) rather than a local path."""
    return isinstance(location, str) and "://" in location


def _url_fs(url: str):
    import fsspec  # only remote stores need it

    return fsspec.core.url_to_fs(url)


def mirror_folder(url: str) -> Path:
    """The local folder a remote store's shards are downloaded to (and its derived caches kept in)."""
    cache = Path(os.environ.get("NAIT_CACHE", Path.home() / ".cache" / "nait"))
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return cache / "stores" / f"{hashlib.sha256(url.rstrip('/').encode()).hexdigest()[:16]}-{name}"


@dataclass
class Shard:
    start: int
    end: int
    path: Path


class Store:
    """Read and write one store. Open existing ones with `Store.open`, new ones with `Store.create`."""

    def __init__(self, path: Path, manifest: dict):
        self.path = Path(path)
        self.manifest = manifest
        self._arrays: dict[tuple[int, str], np.ndarray] = {}
        self._held: set[str] = set()  # lock names this object holds (flock does not nest across fds)
        self._content_id: str | None = None
        self._means: dict[str, np.ndarray] = {}
        self.url: str | None = None  # set for a remote store: `path` is then its local mirror

    @property
    def location(self) -> str | Path:
        """What to pass to `Store.open` again: the URL of a remote store, else its folder."""
        return self.url or self.path

    @classmethod
    def _remote(cls, url: str, manifest: dict) -> "Store":
        store = cls(mirror_folder(url), manifest)
        store.url = url.rstrip("/")
        store.path.mkdir(parents=True, exist_ok=True)
        _write_json(store.path / "manifest.json", manifest)
        return store

    @classmethod
    def at(cls, location) -> "Store":
        """The store at `location` (complete or not), its manifest's structure checked; StoreError if there
        is none or its manifest is damaged (the message names the file, the field and the fix)."""
        if not is_url(location):
            return cls(Path(location), read_manifest(Path(location)))
        fs, root = _url_fs(location)
        try:
            manifest = json.loads(fs.cat_file(f"{root}/manifest.json"))
        except (OSError, ValueError) as error:
            raise StoreError(f"{location}: no store here (manifest.json missing or unreadable: {error})") from error
        return cls._remote(location, checked_manifest(manifest, f"{location}/manifest.json"))

    @classmethod
    def existing(cls, location) -> "Store | None":
        """The store at `location` (complete or not), or None if there is none or its manifest is damaged."""
        try:
            return cls.at(location)
        except StoreError:
            return None

    def _remote_file(self, *parts: str) -> tuple[object, str]:
        fs, root = _url_fs(self.url)
        return fs, "/".join([root, *parts])

    def _remote_done(self) -> set[str]:
        fs, pattern = self._remote_file("shard-*", "checksums.json")
        return {p.rstrip("/").split("/")[-2] for p in fs.glob(pattern)}

    def _fetch_shard(self, start: int, end: int) -> str | None:
        """Download one remote shard into the mirror unless the mirror already holds this very copy,
        checking each file's sha256 on the way (a damaged remote shard is never mirrored). Returns the
        problem, or None."""
        name = shard_name(start, end)
        fs, remote = self._remote_file(name)
        try:
            sums_bytes = fs.cat_file(f"{remote}/checksums.json")
            sums = json.loads(sums_bytes)
        except (OSError, ValueError) as error:
            return f"{self.url}/{name}: checksums unreadable ({error})"
        problem = self._binding_problem(sums, start, end)
        if problem:  # also: only this store's own file names are ever downloaded (no path from the remote)
            return f"{self.url}/{name}/checksums.json: {problem}"
        local = self.path / name
        if (
            (local / "checksums.json").exists()
            and (local / "checksums.json").read_bytes() == sums_bytes
            and self.shard_problem(start, end) is None
        ):
            return None
        with atomic.temp_folder(self.path, name) as tmp:
            for file, digest in sums["files"].items():
                try:
                    fs.get_file(f"{remote}/{file}", str(tmp / file))
                except OSError as error:
                    return f"{self.url}/{name}/{file}: missing ({error})"
                if _sha256(tmp / file) != digest:
                    return f"{self.url}/{name}/{file}: checksum mismatch, the file was changed or damaged"
            (tmp / "checksums.json").write_bytes(sums_bytes)
            with self.lock(name):
                if local.exists():
                    self._discard(local)
                os.replace(tmp, local)
        self._arrays = {k: v for k, v in self._arrays.items() if k[0] != start}
        self._content_id = None
        return self.shard_problem(start, end)

    def fetch(self) -> None:
        """Mirror every remote shard locally (downloads only what changed); raise on a damaged one."""
        for start, end in self.shard_ranges():
            problem = self._fetch_shard(start, end)
            if problem:
                raise StoreError(f"{problem}; {recapture_hint(self.url)}")

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

    def shard_ranges(self) -> list[tuple[int, int]]:
        n, size = self.n_samples, self.shard_size
        return [(s, min(s + size, n)) for s in range(0, n, size)]

    def has_shard(self, start: int, end: int) -> bool:
        if self.url:  # written by any machine: the remote copy is the truth
            fs, file = self._remote_file(shard_name(start, end), "checksums.json")
            return fs.exists(file)
        return (self.path / shard_name(start, end) / "checksums.json").exists()

    def missing_ranges(self) -> list[tuple[int, int]]:
        if self.url:  # one listing, not one request per shard
            done = self._remote_done()
            return [(s, e) for s, e in self.shard_ranges() if shard_name(s, e) not in done]
        return [(s, e) for s, e in self.shard_ranges() if not self.has_shard(s, e)]

    @property
    def complete(self) -> bool:
        return not self.missing_ranges()

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    @property
    def content_id(self) -> str:
        """A digest of the manifest and every shard's checksums: what derived caches are keyed by.
        Reads only the small checksums files; changes whenever a shard is rewritten."""
        if self._content_id is None:
            h = hashlib.sha256(json.dumps(self.manifest, sort_keys=True).encode())
            for start, end in self.shard_ranges():
                try:
                    h.update((self.path / shard_name(start, end) / "checksums.json").read_bytes())
                except OSError:
                    h.update(b"missing")
            self._content_id = h.hexdigest()
        return self._content_id

    @property
    def identity(self) -> str:
        """sha256 of what makes this store this store (`_identity`: model, data hash and count, options,
        shape, format): every shard's checksums.json is bound to it, so a shard copied from another store
        is damaged here. Editing the manifest changes it too, so an edited manifest fails every shard."""
        return hashlib.sha256(json.dumps(self._identity(self.manifest), sort_keys=True).encode()).hexdigest()

    def _binding_problem(self, sums, start: int, end: int) -> str | None:
        """Why a shard's parsed checksums.json does not belong to this store at this range (None if it does)."""
        if not isinstance(sums, dict) or not isinstance(sums.get("files"), dict):
            return "not a checksums file of this nait version (recapture the shard)"
        if sums.get("store") != self.identity:
            return (
                "belongs to another store (its checksums are bound to another store's identity: "
                "copied in from elsewhere, or the manifest was edited)"
            )
        if sums.get("range") != [start, end]:
            return f"holds range {sums.get('range')}, not {start}-{end} (copied from another shard)"
        wanted = {f"{name}.npy" for name in list(self.reductions) + list(self.per_sample_names)}
        if set(sums["files"]) != wanted or not all(isinstance(d, str) for d in sums["files"].values()):
            return f"lists files {sorted(sums['files'])}, expected {sorted(wanted)}"
        return None

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
    @staticmethod
    def _identity(manifest: dict) -> dict:
        """What must match for a store to be reused: not the shard size (the existing one is kept)
        nor the display names."""
        out = {k: v for k, v in manifest.items() if k not in ("shard_size", "hidden_size")}
        out["model"] = {k: v for k, v in manifest.get("model", {}).items() if k != "name"}
        out["data"] = {k: v for k, v in manifest.get("data", {}).items() if k != "name"}
        return out

    @classmethod
    def _create_remote(cls, url: str, manifest: dict) -> "Store":
        fs, root = _url_fs(url)
        try:
            existing = json.loads(fs.cat_file(f"{root}/manifest.json"))
        except FileNotFoundError:
            fs.makedirs(root, exist_ok=True)
            fs.pipe_file(f"{root}/manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
            return cls._remote(url, manifest)
        if cls._identity(existing) != cls._identity(manifest):
            raise StoreError(f"{url}: a store with other inputs already lives here; delete it or pick another location")
        return cls._remote(url, existing)

    @classmethod
    def create(cls, path: Path, manifest: dict) -> "Store":
        """Create (or reopen, if the manifest matches) a store for writing, at a path or an fsspec URL. A
        `shard_size` of None picks `default_shard_size`; an existing store keeps its own shard size."""
        path = path if is_url(path) else Path(path)
        manifest = {**manifest, "format_version": FORMAT_VERSION}
        if manifest.get("shard_size") is None:
            manifest["shard_size"] = default_shard_size(manifest["data"]["n_samples"])
        if is_url(str(path)) or is_url(path):
            return cls._create_remote(str(path), manifest)
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
                if cls._identity(existing) != cls._identity(manifest):
                    raise StoreError(
                        f"{path}: a store with other inputs already lives here; delete it or pick another folder"
                    )
                store = cls(path, existing)
            else:
                _write_json(path / "manifest.json", manifest)
            atomic.remove_leftovers(path)  # what killed writers left (their process is gone)
        return store

    def write_shard(self, start: int, end: int, arrays: dict[str, np.ndarray]) -> None:
        """Write one shard atomically: everything goes to a temporary folder (unique per process, thread
        and call) renamed into place under the shard's lock; an existing copy is replaced."""
        expected = set(self.reductions) | set(self.per_sample_names)
        if HIDDEN not in expected:  # a store from before nait kept hidden states, resumed: its shards stay alike
            arrays = {k: v for k, v in arrays.items() if k != HIDDEN}
        if set(arrays) != expected:
            raise ValueError(f"shard needs exactly {sorted(expected)}, got {sorted(arrays)}")
        if (start, end) not in self.shard_ranges():
            raise ValueError(f"{start}-{end} is not a shard of this store (shard size {self.shard_size})")
        for name, array in arrays.items():
            if np.shape(array) != self.expected_shape(name, end - start):
                raise ValueError(
                    f"{name}: shape {np.shape(array)} for range {start}-{end}, expected "
                    f"{self.expected_shape(name, end - start)}"
                )
        final = self.path / shard_name(start, end)
        try:
            with atomic.temp_folder(self.path, shard_name(start, end)) as tmp:
                checksums = {}
                for name, array in arrays.items():
                    atomic.write_npy(tmp / f"{name}.npy", array)
                    checksums[f"{name}.npy"] = _sha256(tmp / f"{name}.npy")
                # checksums.json is written last: it marks the shard complete, and binds it to this store
                bound = {"store": self.identity, "range": [start, end], "files": checksums}
                (tmp / "checksums.json").write_text(json.dumps(bound, indent=1))
                with self.lock(shard_name(start, end)):  # one rename at a time: no ENOTEMPTY, no half-removed folder
                    if final.exists():  # an older copy (or a concurrent writer's): moved aside atomically
                        self._discard(final)
                    os.replace(tmp, final)
            if self.url:  # upload; checksums.json last, as on disk it marks the shard complete
                fs, remote = self._remote_file(shard_name(start, end))
                fs.makedirs(remote, exist_ok=True)
                for file in sorted(checksums) + ["checksums.json"]:
                    fs.put_file(str(final / file), f"{remote}/{file}")
        except OSError as error:  # the temporary folder is gone already; the shards written so far stay
            if error.errno in WRITE_ERRORS:
                raise write_error(self.path, error, f"shard {start}-{end}") from error
            raise
        finally:
            self._arrays = {k: v for k, v in self._arrays.items() if k[0] != start}
            self._content_id = None

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
            self._remove_shard(start, end)
        except OSError as error:
            if error.errno in WRITE_ERRORS:
                raise write_error(self.path, error, f"(remove) damaged shard {start}-{end}") from error
            raise

    def _remove_shard(self, start: int, end: int) -> None:
        with self.lock(shard_name(start, end)):
            self._discard(self.path / shard_name(start, end))
            if self.url:
                fs, remote = self._remote_file(shard_name(start, end))
                if fs.exists(f"{remote}/checksums.json"):
                    fs.rm_file(f"{remote}/checksums.json")  # first: the shard counts as missing from here on
                if fs.exists(remote):
                    fs.rm(remote, recursive=True)
        self._arrays = {k: v for k, v in self._arrays.items() if k[0] != start}
        self._content_id = None

    # ---- opening and checking
    @classmethod
    def open(cls, path: Path, verify: bool = False) -> "Store":
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
        version = self.manifest.get("format_version")
        if version == FORMAT_VERSION:
            return None
        return (
            f"{self.location}: store format {version} is not {FORMAT_VERSION} (written by another nait version); "
            f"delete the folder and run the capture command again to recapture it"
        )

    def shard_problem(self, start: int, end: int, checksums: bool = False) -> str | None:
        """What is wrong with one shard (None if nothing): files, headers, sizes, and with `checksums` bytes."""
        folder = self.path / shard_name(start, end)
        try:
            sums = json.loads((folder / "checksums.json").read_text())
        except (OSError, ValueError) as error:
            return f"{folder}: checksums unreadable ({error})"
        problem = self._binding_problem(sums, start, end)
        if problem:
            return f"{folder}/checksums.json: {problem}"
        sums = sums["files"]
        for name in list(self.reductions) + list(self.per_sample_names):
            file = folder / f"{name}.npy"
            try:
                shape, _, size, actual = npy_header(file)
            except FileNotFoundError:
                return f"{file}: missing"
            except (ValueError, OSError, SyntaxError) as error:
                return f"{file}: corrupt header ({error})"
            want = self.expected_shape(name, end - start)
            if shape != want:
                return f"{file}: shape {shape}, expected {want}"
            if actual != size:
                return f"{file}: {actual} bytes, its header says {size} (truncated or damaged)"
            if checksums and _sha256(file) != sums[f"{name}.npy"]:
                return f"{file}: checksum mismatch, the file was changed or damaged"
        return None

    def damaged_ranges(self, checksums: bool = False) -> list[tuple[tuple[int, int], str]]:
        """((start, end), problem) for every written shard that fails its check."""
        out = []
        if self.url:  # remote: mirror what was written (sha256 checked on download), then check the mirror
            done = self._remote_done()
            for start, end in self.shard_ranges():
                if shard_name(start, end) in done:
                    problem = self._fetch_shard(start, end) or self.shard_problem(start, end, checksums)
                    if problem:
                        out.append(((start, end), problem))
            return out
        for start, end in self.shard_ranges():
            if self.has_shard(start, end) or (self.path / shard_name(start, end)).exists():
                problem = self.shard_problem(start, end, checksums)
                if problem:
                    out.append(((start, end), problem))
        return out

    def check(self, checksums: bool = False) -> None:
        """Raise StoreError unless every shard has the right files, headers, sizes and (optionally) bytes."""
        for start, end in self.shard_ranges():
            problem = self.shard_problem(start, end, checksums)
            if problem:
                raise StoreError(f"{problem}; {recapture_hint(self.path)}")

    def verify(self, repair: bool = False) -> dict:
        """Check every shard's and every derived cache's sha256. With `repair`, remove what is damaged
        (shards are then recaptured by the same capture command; caches are recomputed on use; a refused
        cache entry is only unlisted) and the temporary files of killed writers (`atomic.leftovers`)."""
        problem = self.format_problem()
        if problem:
            return {"path": str(self.location), "error": problem}
        shards = self.damaged_ranges(checksums=True)
        caches = self.damaged_caches()
        leftovers = [str(p) for p in atomic.leftovers(self.path)]
        if repair:
            for (start, end), _ in shards:
                self.remove_shard(start, end)
            for name, _ in caches:
                self.drop_cache(name)
            atomic.remove_leftovers(self.path)
        return {
            "path": str(self.location),
            "shards": len(self.shard_ranges()),
            "missing": self.missing_ranges(),
            "damaged_shards": [{"range": list(r), "problem": p} for r, p in shards],
            "damaged_caches": [{"name": n, "problem": p} for n, p in caches],
            "leftovers": leftovers,
            "repaired": repair,
        }

    # ---- derived caches (pool means, map coordinates, baseline scores, target features)
    def _read_caches(self) -> dict:
        try:
            caches = json.loads((self.path / "caches.json").read_text())
        except FileNotFoundError:
            return {}
        except ValueError:
            caches = None
        if not isinstance(caches, dict):  # a damaged index: every cache is recomputed
            warnings.warn(
                f"{self.path}/caches.json is damaged; derived caches are recomputed", CacheWarning, stacklevel=3
            )
            return {}
        return caches

    def _entry_problem(self, entry) -> str | None:
        """Why a caches.json entry is refused (never read, never deleted), or None."""
        if not isinstance(entry, dict) or not {"file", "sha256", "size"} <= set(entry):
            return f"entry {entry!r} is not a cache entry"
        problem = cache_name_problem(entry["file"])
        if problem is None and (self.path / entry["file"]).is_symlink():
            problem = f"{entry['file']!r} is a symbolic link"
        return problem

    def _cache_file(self, entry) -> Path | None:
        """The file a caches.json entry names, inside the store; None for a refused entry (`_entry_problem`)."""
        return None if self._entry_problem(entry) else self.path / entry["file"]

    def cache_inputs(self, inputs: dict | None = None) -> dict:
        """What a cache derives from: this store's content (manifest + shard checksums) and `inputs`."""
        return {"store": self.content_id, **(inputs or {})}

    def cached_file(self, name: str, inputs: dict | None = None) -> Path | None:
        """The file of cache `name` if it is listed, made from the same inputs, and intact; else None.
        A damaged one (checksum or size mismatch) is reported with a CacheWarning and deleted; an entry
        naming anything but a plain file in the store is ignored (and left alone)."""
        entry = self._read_caches().get(name)
        file = self._cache_file(entry)
        if file is None or entry.get("inputs") != self.cache_inputs(inputs):
            return None
        try:
            intact = file.stat().st_size == entry["size"] and _sha256(file) == entry["sha256"]
        except OSError:
            return None
        if not intact:
            warnings.warn(
                f"{file}: derived cache '{name}' fails its checksum (changed or damaged); recomputing it",
                CacheWarning,
                stacklevel=2,
            )
            self.drop_cache(name)
            return None
        return file

    def record_cache(self, name: str, file: Path, inputs: dict | None = None) -> None:
        """List an already written cache file, a plain file directly inside the store folder. On a store
        folder this process may not write to, the cache is not listed (a warning says so): reading works."""
        file = Path(file)
        problem = cache_name_problem(file.name)
        if problem or file.parent.resolve() != self.path.resolve():
            raise ValueError(
                f"{file}: a derived cache must be a plain file inside {self.path} ({problem or 'elsewhere'})"
            )
        entry = {"file": file.name, "sha256": _sha256(file), "size": file.stat().st_size}
        entry["inputs"] = self.cache_inputs(inputs)
        try:
            with self.lock("caches"):
                caches = self._read_caches()
                caches[name] = entry
                _write_json(self.path / "caches.json", caches)
        except OSError as error:
            if error.errno not in WRITE_ERRORS:
                raise
            warn_read_only(self.path, error)

    def drop_cache(self, name: str) -> None:
        """Unlist cache `name` and delete its file, only if the entry names a plain file inside the store.
        On a store folder this process cannot write, nothing changes (a warning says so): it is never used."""
        try:
            with self.lock("caches"):
                caches = self._read_caches()
                entry = caches.pop(name, None)
                if entry is not None:
                    file = self._cache_file(entry)
                    if file is not None:
                        file.unlink(missing_ok=True)
                    _write_json(self.path / "caches.json", caches)
        except OSError as error:
            if error.errno not in WRITE_ERRORS:
                raise
            warn_read_only(self.path, error)

    def damaged_caches(self) -> list[tuple[str, str]]:
        out = []
        for name, entry in self._read_caches().items():
            problem = self._entry_problem(entry)
            file = self._cache_file(entry)
            if problem:
                out.append(
                    (name, f"{self.path}/caches.json: cache '{name}' refused: {problem} (never read or deleted)")
                )
            elif not file.exists():
                out.append((name, f"{file}: missing"))
            elif file.stat().st_size != entry["size"] or _sha256(file) != entry["sha256"]:
                out.append((name, f"{file}: checksum mismatch"))
            elif not isinstance(entry.get("inputs"), dict) or entry["inputs"].get("store") != self.content_id:
                out.append((name, f"{file}: stale (the shards it derives from changed)"))
        return out

    def load_cached_array(self, name: str, inputs: dict | None = None) -> np.ndarray | None:
        file = self.cached_file(name, inputs)
        return None if file is None else np.load(file, allow_pickle=False)

    def save_cached_array(self, name: str, array: np.ndarray, inputs: dict | None = None) -> Path | None:
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
        self.record_cache(name, file, inputs)
        return file

    # ---- reading
    def shards(self) -> list[Shard]:
        return [Shard(s, e, self.path / shard_name(s, e)) for s, e in self.shard_ranges()]

    def _array(self, shard: Shard, name: str) -> np.ndarray:
        key = (shard.start, name)
        if key not in self._arrays:
            if name in REDUCTIONS and name not in self.reductions:
                raise StoreError(
                    f"{self.path}: reduction '{name}' was not captured (have {self.reductions}); recapture with it"
                )
            file = shard.path / f"{name}.npy"
            try:
                # Copy-on-write: a write to the array stays in this process and never reaches the file.
                array = np.load(file, mmap_mode="c", allow_pickle=False)
            except (ValueError, OSError) as error:
                raise StoreError(f"{file}: unreadable ({error}); {recapture_hint(self.path)}") from error
            if array.shape != self.expected_shape(name, shard.end - shard.start):
                raise StoreError(
                    f"{file}: shape {array.shape}, expected "
                    f"{self.expected_shape(name, shard.end - shard.start)}; {recapture_hint(self.path)}"
                )
            self._arrays[key] = array
        return self._arrays[key]

    def iter_chunks(self, reduction: str, rows: int = 256, dtype=np.float32):
        """Stream (start, array [≤rows, layers, width]) in order; memory stays bounded. dtype=None yields
        the stored float16 rows as they are (memory-mapped copy-on-write), for callers that convert faster."""
        for shard in self.shards():
            array = self._array(shard, reduction)
            for offset in range(0, len(array), rows):
                chunk = array[offset : offset + rows]
                yield shard.start + offset, chunk if dtype is None else np.asarray(chunk, dtype=dtype)

    def map_chunks(self, names: tuple[str, ...], work, rows: int | None = None, threads: int | None = None):
        """Call work(start, *arrays) for every chunk of rows, arrays float32 [b, layers, width] (one per name),
        on `threads` reader threads (default READ_THREADS, one per core), each with its own reused buffers:
        work must use them before returning, and write only its own rows' results. A chunk is cast straight
        out of the memory map (`cast_into`); the cast, like NumPy's matrix products, releases the GIL, so
        the threads share the cores. Each reader sets its own torch pool to one thread (thread-local with
        the OpenMP builds PyTorch ships; checked, and the caller's setting restored if a build shares it)."""
        import threading
        from concurrent.futures import ThreadPoolExecutor

        import torch

        layers, width = self.n_layers, self.width
        rows = rows or max(8, CHUNK_BYTES // (layers * width * 4))
        threads = max(1, READ_THREADS if threads is None else threads)
        plan = []
        for shard in self.shards():
            arrays = [self._array(shard, name) for name in names]  # opened here, once, not by the threads
            plan += [
                (shard.start + o, [a[o : o + rows] for a in arrays]) for o in range(0, shard.end - shard.start, rows)
            ]
        local = threading.local()

        def run(task):
            start, chunks = task
            if not hasattr(local, "buffers"):
                torch.set_num_threads(1)
                local.buffers = [np.empty((rows, layers, width), np.float32) for _ in names]
            b = len(chunks[0])
            for chunk, buffer in zip(chunks, local.buffers):
                cast_into(buffer[:b], chunk)
            work(start, *(buffer[:b] for buffer in local.buffers))

        caller_threads = torch.get_num_threads()
        try:
            with ThreadPoolExecutor(min(threads, max(1, len(plan)))) as pool:
                for _ in pool.map(run, plan):  # re-raises the first error
                    pass
        finally:
            if torch.get_num_threads() != caller_threads:
                torch.set_num_threads(caller_threads)

    def rows(self, reduction: str, indices) -> np.ndarray:
        """float32 [len(indices), layers, neurons] for the given sample indices, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), self.n_layers, self.width), dtype=np.float32)
        for shard in self.shards():
            hit = np.nonzero((indices >= shard.start) & (indices < shard.end))[0]
            if len(hit):
                out[hit] = self._array(shard, reduction)[indices[hit] - shard.start]
        return out

    def layer_rows(self, reduction: str, layer: int, indices) -> np.ndarray:
        """float32 [len(indices), neurons] of one layer: what per-layer statistics need, and no more."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), self.width), dtype=np.float32)
        for shard in self.shards():
            hit = np.nonzero((indices >= shard.start) & (indices < shard.end))[0]
            if len(hit):
                out[hit] = self._array(shard, reduction)[indices[hit] - shard.start, layer]
        return out

    def neuron_values(self, reduction: str, layer: int, neuron: int) -> np.ndarray:
        """One neuron's value for every sample, float32 [n_samples]."""
        return np.concatenate([self._array(s, reduction)[:, layer, neuron].astype(np.float32) for s in self.shards()])

    def per_sample(self, name: str) -> np.ndarray:
        """tokens, response_tokens, truncated (or HIDDEN, see `hidden_states`) for every sample."""
        return np.concatenate([np.asarray(self._array(s, name)) for s in self.shards()])

    def hidden_states(self) -> np.ndarray:
        """float32 [n, hidden]: each record's position-weighted mean of the final hidden state (`rds`)."""
        if not self.hidden_size:
            raise StoreError(
                f"{self.location} holds no final hidden states (captured by an older nait, before `rds`): "
                f"delete the folder {self.location} and run the same command to recapture it"
            )
        return self.per_sample(HIDDEN).astype(np.float32, copy=False)

    def mean(self, reduction: str = "mean") -> np.ndarray:
        """Mean over all samples, float32 [layers, neurons]; computed once, then a checksummed cache."""
        if reduction in self._means:
            return self._means[reduction]
        name = f"pool-mean-{reduction}"
        mean = self.load_cached_array(name)
        if mean is None or mean.shape != (self.n_layers, self.width):
            import threading

            total, lock = np.zeros((self.n_layers, self.width), dtype=np.float64), threading.Lock()

            def add(_, chunk):
                part = chunk.sum(axis=0)  # float32 over a few hundred rows (pairwise: exact enough), 5× faster
                with lock:
                    np.add(total, part, out=total)

            self.map_chunks((reduction,), add)
            mean = (total / self.n_samples).astype(np.float32)
            self.save_cached_array(name, mean)
        self._means[reduction] = mean
        return mean


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
