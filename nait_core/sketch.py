"""Compact summaries: a fixed, seeded random projection of each layer's neuron vector (Johnson–Lindenstrauss).

A compact store keeps, for each sample, layer l and reduction, y_l = x_l P_l instead of x_l, with
P_l a [neurons, K] matrix whose entries are independent with mean 0 and variance 1/K:

- `gaussian`: N(0, 1/K);
- `achlioptas`: ±√(3/K) with probability 1/6 each, 0 with probability 2/3 (Achlioptas 2003, "database-
  friendly" projections: two thirds of the products vanish).

Because E[P_l P_lᵀ] = I, inner products survive in expectation: E[(x P)·(v P)] = x·v, with variance
((x·v)² + ‖x‖²‖v‖²)/K per layer for Gaussian entries. Every score that is a sum of per-layer inner
products (`overlap`, `nait-pca`) is therefore computed in sketch space by projecting the exact feature
(profile, pool mean, PCA directions) with the same P_l: no rescaling is needed, since the 1/K variance
already makes the projection unbiased. Scores that need individual neurons (`jaccard`'s firing sets)
cannot be computed from a sketch.

P_l is a pure function of (seed, layer, neurons, K, kind): it is generated on the CPU from a NumPy
PCG64 stream seeded with exactly those numbers, so the capture (which copies it to the device once) and
any later process (scoring, the app) get identical matrices without storing them. Nothing is pickled;
the manifest stores {"k", "seed", "kind"}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .data import sample_rows
from .store import Store

KINDS = ("gaussian", "achlioptas")
RECOMMENDED_K = 256  # per layer and reduction, with --reductions mean,last-first: 32 KiB/sample at 7B (docs/methods.md)


class SketchError(ValueError):
    """A score that cannot be computed from a compact store, or a bad sketch setting."""


@dataclass(frozen=True)
class Sketch:
    k: int
    seed: int = 0
    kind: str = "gaussian"

    def __post_init__(self):
        if not isinstance(self.k, int) or self.k < 1:
            raise SketchError(f"sketch width K must be a positive integer, not {self.k!r}")
        if self.kind not in KINDS:
            raise SketchError(f"unknown sketch kind {self.kind!r}; choose from {', '.join(KINDS)}")

    def to_json(self) -> dict:
        return {"k": self.k, "seed": self.seed, "kind": self.kind}

    @classmethod
    def from_json(cls, obj: dict | None) -> Sketch | None:
        return None if not obj else cls(int(obj["k"]), int(obj.get("seed", 0)), obj.get("kind", "gaussian"))

    def matrix(self, layer: int, neurons: int) -> np.ndarray:
        """P_l, float32 [neurons, K]: the same numbers in every process for the same arguments."""
        return _matrix(self.k, self.seed, self.kind, layer, neurons)

    def matrices(self, layers: int, neurons: int) -> np.ndarray:
        """All P_l stacked, float32 [layers, neurons, K] (cached per process: reused by every score)."""
        return _matrices(self.k, self.seed, self.kind, layers, neurons)

    def project(self, x: np.ndarray) -> np.ndarray:
        """Project exact summaries [..., layers, neurons] to [..., layers, K] (float32)."""
        p = self.matrices(x.shape[-2], x.shape[-1])
        x = np.asarray(x, dtype=np.float32)
        return np.einsum("...ln,lnk->...lk", x, p, optimize=True).astype(np.float32)


@lru_cache(maxsize=256)
def _matrix(k: int, seed: int, kind: str, layer: int, neurons: int) -> np.ndarray:
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, layer, neurons, k, KINDS.index(kind)])))
    if kind == "gaussian":
        m = rng.standard_normal((neurons, k), dtype=np.float32) / np.float32(np.sqrt(k))
    else:
        draw = rng.integers(0, 6, size=(neurons, k), dtype=np.int8)  # 0 → −1, 1 → +1, 2..5 → 0
        m = np.where(draw == 0, -1.0, np.where(draw == 1, 1.0, 0.0)).astype(np.float32) * np.float32(np.sqrt(3.0 / k))
    m.setflags(write=False)
    return m


@lru_cache(maxsize=4)
def _matrices(k: int, seed: int, kind: str, layers: int, neurons: int) -> np.ndarray:
    m = np.stack([_matrix(k, seed, kind, layer, neurons) for layer in range(layers)])
    m.setflags(write=False)
    return m


def store_sketch(store) -> Sketch | None:
    """The sketch a store was captured with, or None for an exact store."""
    return Sketch.from_json(store.manifest["options"].get("sketch"))


def exact_sample_store(store: Store) -> tuple[Store, np.ndarray] | None:
    """(the exact sample store, its pool rows) of a compact pool store, or None if it has none (yet)."""
    if not store.manifest["options"].get("sketch"):
        return None
    for path in sorted(store.path.parent.glob("*/manifest.json")):
        try:
            manifest = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if manifest.get("options", {}).get("exact_sample_of") == store.path.name:
            sample = Store.open(path.parent, verify=False)
            rows = sample_rows(store.n_samples, sample.n_samples, store.manifest["options"]["sketch"]["seed"])
            return sample, rows
    return None


def bytes_per_sample(layers: int, neurons: int, reductions: int, k: int | None = None) -> int:
    """float16 bytes of the summaries of one sample (exact when k is None), counts excluded."""
    return reductions * layers * (k if k else neurons) * 2


def largest_k(layers: int, reductions: int, budget_bytes: int) -> int:
    """The largest K whose float16 summaries fit `budget_bytes` per sample."""
    return budget_bytes // (reductions * layers * 2)


def compact_copy(path, exact, sketch: Sketch):
    """An exact store projected post hoc into a compact store at `path` with the capture's matrices
    (equal to capturing with `--sketch` up to float16 rounding; tests/test_sketch.py checks it)."""
    import json

    from .store import PER_SAMPLE

    manifest = json.loads((exact.path / "manifest.json").read_text())
    manifest["options"]["sketch"] = sketch.to_json()
    manifest.pop("format_version")
    store = Store.create(path, manifest)
    for start, end in store.shard_ranges():
        arrays = {r: sketch.project(exact.rows(r, range(start, end))).astype(np.float16) for r in exact.reductions}
        arrays.update({name: exact.per_sample(name)[start:end] for name in PER_SAMPLE})
        store.write_shard(start, end, arrays)
    return Store.open(path, verify=False)
