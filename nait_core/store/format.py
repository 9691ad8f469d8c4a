"""The shard format and its integrity: what a shard folder holds, its `.npy` headers and its checksums.

A shard folder `shard-<start>-<end>/` holds one `<reduction>.npy` (float16 [samples, layers, width]) per
captured reduction, the per-sample arrays, and `checksums.json` (written last: it marks the shard complete),
which binds the shard to its store's identity and its range and lists each file's sha256. The cheap check
(`shard_problem`) reads the checksums file and every header, never the array bytes; with `checksums` it
hashes every byte too.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import warnings
from pathlib import Path

import numpy as np

from .. import atomic

FORMAT_VERSION = 2  # 2: checksums.json is bound to the store's identity and the shard's range
REDUCTIONS = (
    "mean",
    "last",
    "first",
    "response_mean",
    "last-first",
)  # last-first: ΔA stored directly (half of last + first)
DEFAULT_REDUCTIONS = ("mean", "last", "first")  # what overlap, jaccard and nait-pca need
# Summaries a store can serve without storing them, from the ones it does store (`sources`).
DERIVED = {"last-first": ("last", "first")}  # ΔA = last − first
PER_SAMPLE = ("tokens", "response_tokens", "truncated")
# The final hidden state's position-weighted mean per record (float32 [n, hidden]; what `rds` reads), in stores
# whose manifest has `hidden_size`. Not part of a store's identity: older stores, without it, keep serving the
# neuron methods, and only `rds` asks for a recapture.
HIDDEN = "hidden_wmean"


class StoreError(RuntimeError):
    """A store that is missing, incomplete, corrupt or made for other inputs."""


class CacheWarning(UserWarning):
    """A derived cache that failed its checksum: it is recomputed, never used."""


def sources(reduction: str, stored) -> tuple[str, ...]:
    """The stored arrays the summary `reduction` is read from: itself if stored, else the parts it is
    derived from (`DERIVED`: `last-first` from `last` and `first`). The one home of that rule."""
    return (reduction,) if reduction in stored else DERIVED.get(reduction, (reduction,))


def derive(reduction: str, stored, read):
    """The summary `reduction` from `read(name)` of the stored arrays: read as is if stored, else computed
    from its parts (`sources`: last − first)."""
    parts = sources(reduction, stored)
    if len(parts) == 1:
        return read(parts[0])
    minuend, subtrahend = parts
    return read(minuend) - read(subtrahend)


def readable(reduction: str, stored) -> bool:
    """Whether a store holding the reductions `stored` can serve the summary `reduction`."""
    return set(sources(reduction, stored)) <= set(stored)


def shard_name(start: int, end: int) -> str:
    return f"shard-{start:09d}-{end:09d}"


def recapture_hint(store_path) -> str:
    return (
        f"run `nait verify --repair {store_path}` to remove damaged shards, then the same capture command "
        f"again to recapture just those (a capture also replaces a shard that fails its check by itself)"
    )


def write_json(path: Path, obj) -> None:
    """The store's JSON files (manifest, caches), written atomically."""
    atomic.write_json(path, obj, indent=2, sort_keys=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


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


def shard_files(store) -> list[str]:
    """The array names every shard of `store` holds: its reductions, then the per-sample arrays."""
    return list(store.reductions) + list(store.per_sample_names)


def binding_problem(store, sums, start: int, end: int) -> str | None:
    """Why a shard's parsed checksums.json does not belong to `store` at this range (None if it does)."""
    if not isinstance(sums, dict) or not isinstance(sums.get("files"), dict):
        return "not a checksums file of this nait version (recapture the shard)"
    if sums.get("store") != store.identity:
        return (
            "belongs to another store (its checksums are bound to another store's identity: "
            "copied in from elsewhere, or the manifest was edited)"
        )
    if sums.get("range") != [start, end]:
        return f"holds range {sums.get('range')}, not {start}-{end} (copied from another shard)"
    wanted = {f"{name}.npy" for name in shard_files(store)}
    if set(sums["files"]) != wanted or not all(isinstance(d, str) for d in sums["files"].values()):
        return f"lists files {sorted(sums['files'])}, expected {sorted(wanted)}"
    return None


def shard_problem(store, start: int, end: int, checksums: bool = False) -> str | None:
    """What is wrong with one shard of `store` (None if nothing): files, headers, sizes, and with
    `checksums` bytes."""
    folder = store.path / shard_name(start, end)
    try:
        sums = json.loads((folder / "checksums.json").read_text())
    except (OSError, ValueError) as error:
        return f"{folder}: checksums unreadable ({error})"
    problem = binding_problem(store, sums, start, end)
    if problem:
        return f"{folder}/checksums.json: {problem}"
    sums = sums["files"]
    for name in shard_files(store):
        file = folder / f"{name}.npy"
        try:
            shape, _, size, actual = npy_header(file)
        except FileNotFoundError:
            return f"{file}: missing"
        except (ValueError, OSError, SyntaxError) as error:
            return f"{file}: corrupt header ({error})"
        want = store.expected_shape(name, end - start)
        if shape != want:
            return f"{file}: shape {shape}, expected {want}"
        if actual != size:
            return f"{file}: {actual} bytes, its header says {size} (truncated or damaged)"
        if checksums and sha256(file) != sums[f"{name}.npy"]:
            return f"{file}: checksum mismatch, the file was changed or damaged"
    return None


def write_shard_folder(store, folder: Path, start: int, end: int, arrays: dict[str, np.ndarray]) -> list[str]:
    """Write a shard's arrays into the (temporary) `folder`, then its checksums.json, last: it marks the
    shard complete and binds it to `store` and this range. Returns the array files' names."""
    checksums = {}
    for name, array in arrays.items():
        atomic.write_npy(folder / f"{name}.npy", array)
        checksums[f"{name}.npy"] = sha256(folder / f"{name}.npy")
    bound = {"store": store.identity, "range": [start, end], "files": checksums}
    (folder / "checksums.json").write_text(json.dumps(bound, indent=1))
    return sorted(checksums)


def checked_arrays(store, start: int, end: int, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of a new shard `start`-`end` of `store`, checked: exactly its files, each of its shape
    (ValueError otherwise). A store from before nait kept hidden states, resumed, gets none: its shards
    stay alike."""
    expected = set(store.reductions) | set(store.per_sample_names)
    if HIDDEN not in expected:
        arrays = {k: v for k, v in arrays.items() if k != HIDDEN}
    if set(arrays) != expected:
        raise ValueError(f"shard needs exactly {sorted(expected)}, got {sorted(arrays)}")
    if (start, end) not in store.shard_ranges():
        raise ValueError(f"{start}-{end} is not a shard of this store (shard size {store.shard_size})")
    for name, array in arrays.items():
        if np.shape(array) != store.expected_shape(name, end - start):
            raise ValueError(
                f"{name}: shape {np.shape(array)} for range {start}-{end}, expected "
                f"{store.expected_shape(name, end - start)}"
            )
    return arrays


def damaged_ranges(store, checksums: bool = False) -> list[tuple[tuple[int, int], str]]:
    """((start, end), problem) for every written shard of `store` that fails its check. A remote store's
    written shards are mirrored first (sha256 checked on download), then the mirror is checked."""
    out = []
    written = store.place.written([shard_name(s, e) for s, e in store.shard_ranges()])
    for start, end in store.shard_ranges():
        name = shard_name(start, end)
        if store.url and name in written:
            problem = store.place.fetch_shard(store, start, end) or shard_problem(store, start, end, checksums)
        elif not store.url and (name in written or (store.path / name).exists()):
            problem = shard_problem(store, start, end, checksums)
        else:
            continue
        if problem:
            out.append(((start, end), problem))
    return out


def verify(store, repair: bool = False) -> dict:
    """Check every shard's and every derived cache's sha256. With `repair`, remove what is damaged
    (shards are then recaptured by the same capture command; caches are recomputed on use; a refused
    cache entry is only unlisted) and the temporary files of killed writers (`atomic.leftovers`)."""
    problem = store.format_problem()
    if problem:
        return {"path": str(store.location), "error": problem}
    shards = damaged_ranges(store, checksums=True)
    caches = store.damaged_caches()
    leftovers = [str(p) for p in atomic.leftovers(store.path)]
    if repair:
        for (start, end), _ in shards:
            store.remove_shard(start, end)
        for name, _ in caches:
            store.drop_cache(name)
        atomic.remove_leftovers(store.path)
    return {
        "path": str(store.location),
        "shards": len(store.shard_ranges()),
        "missing": store.missing_ranges(),
        "damaged_shards": [{"range": list(r), "problem": p} for r, p in shards],
        "damaged_caches": [{"name": n, "problem": p} for n, p in caches],
        "leftovers": leftovers,
        "repaired": repair,
    }
