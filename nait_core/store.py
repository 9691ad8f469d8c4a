"""The feature store: per-sample neuron summaries of one data set under one model, on disk.

Layout of `cached_features/<key>/`:
    manifest.json                      model, data hash, options, shape, shard size, format version
    shard-<start>-<end>/               one independent, atomically renamed folder per index range
        <reduction>.npy                float16 [samples, layers, neurons], memory-mapped on read
        tokens.npy, response_tokens.npy, truncated.npy   per-sample counts [samples]
        checksums.json                 sha256 of each file above
    pool-mean-<reduction>.npy          cached mean over all samples (for centring)

Shards are independent: any worker can write any range, and a capture resumes from the shards that
exist. Nothing is read from disk with pickle.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
REDUCTIONS = ("mean", "last", "first", "response_mean", "last-first")  # last-first: ΔA stored directly (half of last + first)
DEFAULT_REDUCTIONS = ("mean", "last", "first")  # what overlap, jaccard and nait-pca need
PER_SAMPLE = ("tokens", "response_tokens", "truncated")


class StoreError(RuntimeError):
    """A store that is missing, incomplete, corrupt or made for other inputs."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(Path(path), json.dumps(obj, indent=2, sort_keys=True).encode())


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.npy")
    np.save(tmp, array, allow_pickle=False)
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def shard_name(start: int, end: int) -> str:
    return f"shard-{start:09d}-{end:09d}"


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
        """Values stored per layer: the neurons, or K for a compact (sketched) store (options.sketch)."""
        sketch = self.manifest["options"].get("sketch")
        return int(sketch["k"]) if sketch else self.n_neurons

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

    def missing_ranges(self) -> list[tuple[int, int]]:
        return [(s, e) for s, e in self.shard_ranges() if not (self.path / shard_name(s, e) / "checksums.json").exists()]

    @property
    def complete(self) -> bool:
        return not self.missing_ranges()

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    # ---- creating and writing
    @classmethod
    def create(cls, path: Path, manifest: dict) -> "Store":
        """Create (or reopen, if the manifest matches) a store for writing."""
        path = Path(path)
        manifest = {**manifest, "format_version": FORMAT_VERSION}
        if (path / "manifest.json").exists():
            existing = json.loads((path / "manifest.json").read_text())
            if existing != manifest:
                raise StoreError(f"{path}: a store with other inputs already lives here; delete it or pick another folder")
            return cls(path, existing)
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path / "manifest.json", manifest)
        return cls(path, manifest)

    def write_shard(self, start: int, end: int, arrays: dict[str, np.ndarray]) -> None:
        """Write one shard atomically: everything goes to a temporary folder renamed into place."""
        expected = set(self.reductions) | set(PER_SAMPLE)
        if set(arrays) != expected:
            raise ValueError(f"shard needs exactly {sorted(expected)}, got {sorted(arrays)}")
        final = self.path / shard_name(start, end)
        tmp = self.path / f".tmp-{shard_name(start, end)}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        checksums = {}
        for name, array in arrays.items():
            if len(array) != end - start:
                raise ValueError(f"{name}: {len(array)} rows for range {start}-{end}")
            np.save(tmp / f"{name}.npy", array, allow_pickle=False)
            checksums[f"{name}.npy"] = _sha256(tmp / f"{name}.npy")
        (tmp / "checksums.json").write_text(json.dumps(checksums, indent=1))  # written last: marks completeness
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)

    # ---- opening and checking
    @classmethod
    def open(cls, path: Path, verify: bool = True) -> "Store":
        """Open a complete store; with `verify`, check every file against its checksum."""
        path = Path(path)
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except FileNotFoundError as error:
            raise StoreError(f"{path}: no store here (manifest.json missing)") from error
        except json.JSONDecodeError as error:
            raise StoreError(f"{path}/manifest.json is corrupt: {error}") from error
        if manifest.get("format_version") != FORMAT_VERSION:
            raise StoreError(f"{path}: store format {manifest.get('format_version')} is not {FORMAT_VERSION}; recapture it")
        store = cls(path, manifest)
        missing = store.missing_ranges()
        if missing:
            raise StoreError(
                f"{path}: incomplete, {len(missing)} of {len(store.shard_ranges())} shards missing "
                f"(an interrupted capture? run the capture again to resume)"
            )
        store.check(verify)
        return store

    def check(self, checksums: bool = True) -> None:
        """Raise StoreError unless every shard has the right files, shapes and (optionally) bytes."""
        for start, end in self.shard_ranges():
            folder = self.path / shard_name(start, end)
            try:
                sums = json.loads((folder / "checksums.json").read_text())
            except (OSError, json.JSONDecodeError) as error:
                raise StoreError(f"{folder}: checksums unreadable ({error})") from error
            for name in list(self.reductions) + list(PER_SAMPLE):
                file = folder / f"{name}.npy"
                if f"{name}.npy" not in sums or not file.exists():
                    raise StoreError(f"{file}: missing")
                try:
                    array = np.load(file, mmap_mode="r", allow_pickle=False)
                except (ValueError, OSError) as error:
                    raise StoreError(f"{file}: corrupt ({error})") from error
                want = (end - start, self.n_layers, self.width) if name in REDUCTIONS else (end - start,)
                if array.shape != want:
                    raise StoreError(f"{file}: shape {array.shape}, expected {want}")
                if checksums and _sha256(file) != sums[f"{name}.npy"]:
                    raise StoreError(f"{file}: checksum mismatch, the file was changed or damaged; recapture")

    # ---- reading
    def shards(self) -> list[Shard]:
        return [Shard(s, e, self.path / shard_name(s, e)) for s, e in self.shard_ranges()]

    def _array(self, shard: Shard, name: str) -> np.ndarray:
        key = (shard.start, name)
        if key not in self._arrays:
            if name in REDUCTIONS and name not in self.reductions:
                raise StoreError(f"{self.path}: reduction '{name}' was not captured (have {self.reductions}); recapture with it")
            self._arrays[key] = np.load(shard.path / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        return self._arrays[key]

    def iter_chunks(self, reduction: str, rows: int = 256, dtype=np.float32):
        """Stream (start, array [≤rows, layers, width]) in order; memory stays bounded. dtype=None yields
        the stored float16 rows as they are (memory-mapped, read-only), for callers that convert faster."""
        for shard in self.shards():
            array = self._array(shard, reduction)
            for offset in range(0, len(array), rows):
                chunk = array[offset : offset + rows]
                yield shard.start + offset, chunk if dtype is None else np.asarray(chunk, dtype=dtype)

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
        """tokens, response_tokens or truncated for every sample."""
        return np.concatenate([np.asarray(self._array(s, name)) for s in self.shards()])

    def mean(self, reduction: str = "mean") -> np.ndarray:
        """Mean over all samples, float32 [layers, neurons]; computed once, then cached in the store."""
        cached = self.path / f"pool-mean-{reduction}.npy"
        if cached.exists():
            return np.load(cached, allow_pickle=False)
        total = np.zeros((self.n_layers, self.width), dtype=np.float64)
        for _, chunk in self.iter_chunks(reduction):
            total += chunk.sum(axis=0, dtype=np.float64)
        mean = (total / self.n_samples).astype(np.float32)
        atomic_save_npy(cached, mean)
        return mean


def list_stores(root: Path) -> list[dict]:
    """Every store under `root` with its manifest summary and size (for `nait info` and the app)."""
    out = []
    for manifest_path in sorted(Path(root).glob("*/manifest.json")):
        try:
            store = Store(manifest_path.parent, json.loads(manifest_path.read_text()))
            out.append({
                "path": str(store.path), "model": store.manifest["model"]["name"],
                "data": store.manifest["data"]["name"], "samples": store.n_samples,
                "layers": store.n_layers, "neurons": store.n_neurons,
                "reductions": ",".join(store.reductions),
                "complete": store.complete, "size_mb": round(store.size_bytes() / 1e6, 1),
            })
        except (KeyError, json.JSONDecodeError):
            out.append({"path": str(manifest_path.parent), "complete": False, "error": "unreadable manifest"})
    return out
