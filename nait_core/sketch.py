"""Compact summaries: a fixed, seeded random projection of each layer's neuron vector (Johnson–Lindenstrauss).

A compact store keeps, for each sample, layer l and reduction, y_l = x_l P_l instead of x_l, with
P_l a [neurons, K] matrix whose entries are independent with mean 0 and variance 1/K:

- `gaussian`: N(0, 1/K);
- `achlioptas`: ±√(3/K) with probability 1/6 each, 0 with probability 2/3 (Achlioptas 2003, "database-
  friendly" projections: two thirds of the products vanish).

Because E[P_l P_lᵀ] = I, inner products survive in expectation: E[(x P)·(v P)] = x·v, with variance
((x·v)² + ‖x‖²‖v‖²)/K per layer for Gaussian entries. Every score that is a sum of per-layer inner
products (`overlap`, `nait-pca`) can therefore be computed in sketch space from the exact feature's
weight vectors v_l. The plain estimate y_l·(P_lᵀ v_l) is noisy when v_l is nearly orthogonal to x_l (a
PCA direction), so `Calibration` fits a read-out y_l·w_l + a_l on the pool's exact sample, where both x_l
and y_l are known; it agrees with exact scores far better (docs/methods.md). Scores that need individual
neurons (`jaccard`'s firing sets) cannot be computed from a sketch.

P_l is a pure function of (seed, layer, neurons, K, kind): it is generated on the CPU from a NumPy
PCG64 stream seeded with exactly those numbers, so the capture (which copies it to the device once) and
any later process (scoring, the app) get identical matrices without storing them. Nothing is pickled;
the manifest stores {"k", "seed", "kind"}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

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

    def check_width(self, neurons: int) -> None:
        """Refuse a K wider than the layer before a capture: it would store more numbers per layer than the
        exact values (the projection itself works at any K, as small test stores use)."""
        if self.k > neurons:
            raise SketchError(
                f"--sketch {self.k} is wider than this model's {neurons:,} neurons per layer: a sketch keeps fewer "
                f"numbers than the exact store, never more; use --sketch {min(RECOMMENDED_K, neurons // 2) or 1} "
                "(or less), or capture exact without --sketch"
            )

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


MIN_CALIBRATION_ROWS = 32  # fewer exact-sample rows than this: the plain projection is used (no fit)
RIDGE_GRID = np.logspace(-6, 3, 37)  # ridge strengths tried, relative to the mean eigenvalue of YᵀY


@dataclass(frozen=True)
class SampleBasis:
    """The exact sample's sketch rows of one layer, centred, and the eigen-decomposition of their Gram
    matrix: what every read-out of that layer shares, whatever the weight vector."""

    mean: np.ndarray  # [K]
    centred: np.ndarray  # [N, K], float32 (kept for every layer: 2 MB per layer at N = 2,000, K = 256)
    values: np.ndarray  # [K] eigenvalues of centredᵀ centred (≥ 0)
    vectors: np.ndarray  # [K, K]

    @classmethod
    def of(cls, y: np.ndarray) -> SampleBasis:
        y = y.astype(np.float64)
        mean = y.mean(axis=0)
        centred = y - mean
        values, vectors = np.linalg.eigh(centred.T @ centred)
        return cls(mean, centred.astype(np.float32), np.maximum(values, 0.0), vectors)


def fit_readout(basis: SampleBasis, t: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, float]:
    """(w [K], a) with t ≈ a + y·w over the exact sample's rows y (`basis`) and their exact values t [N].

    Ridge regression shrunk towards `prior` (the plain projection's weights P_lᵀ v_l), its strength chosen by
    generalised cross-validation (Golub, Heath and Wahba 1979) from the eigen-decomposition of YᵀY: a strong
    ridge gives back the plain estimate, a weak one the least-squares read-out the sample supports."""
    t = t.astype(np.float64)
    t_mean = t.mean()
    residual = (t - t_mean) - basis.centred.astype(np.float64) @ prior
    b = basis.vectors.T @ (basis.centred.T.astype(np.float64) @ residual)
    values, n = basis.values, len(t)
    scale = max(float(values.mean()), 1e-30)
    best = (np.inf, np.zeros_like(b))
    for ridge in RIDGE_GRID * scale:
        c = b / (values + ridge)
        rss = residual @ residual - 2 * (c * b).sum() + (c * c * values).sum()
        dof = (values / (values + ridge)).sum() + 1  # + the intercept
        gcv = n * max(rss, 0.0) / max(n - dof, 1.0) ** 2
        if gcv < best[0]:
            best = (gcv, c)
    w = prior + basis.vectors @ best[1]
    return w.astype(np.float32), float(t_mean - basis.mean @ w)


class Calibration:
    """Per-layer inner products x_l·v_l read out of a compact store's y_l = x_l P_l.

    The plain projection estimates x_l·v_l by y_l·(P_lᵀ v_l): unbiased, with noise ‖x_l‖‖v_l‖/√K, which is
    large against the product itself when v_l is nearly orthogonal to x_l (a PCA direction, unlike a
    profile). The exact sample holds both x_l and (as pool rows) y_l for N seeded records, so for each
    exact weight vector v_l the read-out t ≈ a_l + y_l·w_l is fitted on t = x_l·v_l there (`fit_readout`):
    the best linear estimate the sketch supports for records like the pool's. Measured agreement with exact
    scores, with and without it: docs/methods.md. Without an exact sample (or with one under
    MIN_CALIBRATION_ROWS records) it falls back to the plain projection."""

    def __init__(self, store: Store, sketch: Sketch):
        self.store, self.sketch = store, sketch
        found = exact_sample_store(store)
        self.sample, self.rows = found if found else (None, None)
        if self.sample is not None and self.sample.n_samples < MIN_CALIBRATION_ROWS:
            self.sample = self.rows = None
        self._bases: dict[tuple[str, int], SampleBasis] = {}  # shared by every feature scored with this store

    def sample_mean(self, reduction: str) -> np.ndarray | None:
        """The exact sample's mean summary [layers, neurons] (estimates the pool's exact mean), or None."""
        return None if self.sample is None else self.sample.mean(reduction)

    def readout(self, reduction: str, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(weights [layers, K], offsets [layers]) with x_l·v_l ≈ offsets_l + y_l·weights_l, for exact
        weight vectors `vectors` [layers, neurons]."""
        from .features import layer_summary

        layers, neurons = vectors.shape
        p = self.sketch.matrices(layers, neurons)
        prior = np.einsum("ln,lnk->lk", vectors.astype(np.float32), p)
        if self.sample is None:
            return prior.astype(np.float32), np.zeros(layers)
        weights, offsets = np.empty_like(prior, dtype=np.float32), np.empty(layers)
        everyone = np.arange(self.sample.n_samples)
        for layer in range(layers):
            key = (reduction, layer)
            if key not in self._bases:
                self._bases[key] = SampleBasis.of(layer_summary(self.store, reduction, layer, self.rows))
            t = layer_summary(self.sample, reduction, layer, everyone) @ vectors[layer].astype(np.float32)
            weights[layer], offsets[layer] = fit_readout(self._bases[key], t, prior[layer])
        return weights, offsets


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


def scoring_note(store: Store) -> str | None:
    """One line saying how a compact pool's scores are estimated (None for an exact store)."""
    sketch = store_sketch(store)
    if sketch is None:
        return None
    sample = Calibration(store, sketch).sample  # the rule the scores use: an exact sample large enough to fit
    if sample is not None:
        how = f"calibrated on its {sample.n_samples:,}-record exact sample"
    else:
        how = "from the projection alone (no exact sample: capture with --exact-sample N for closer agreement)"
    return (
        f"compact pool (sketch K={sketch.k}): scores are estimates, {how}; "
        "agreement with exact scores in docs/methods.md"
    )


def bytes_per_sample(layers: int, neurons: int, reductions: int, k: int | None = None) -> int:
    """float16 bytes of the summaries of one sample (exact when k is None), counts excluded."""
    return reductions * layers * (k if k else neurons) * 2


def largest_k(layers: int, reductions: int, budget_bytes: int) -> int:
    """The largest K whose float16 summaries fit `budget_bytes` per sample."""
    return budget_bytes // (reductions * layers * 2)


def write_projected(store: Store, exact: Store, sketch: Sketch) -> None:
    """Fill a created compact store's missing shards with `exact`'s rows projected by the capture's matrices
    (equal to capturing with `--sketch` up to float16 rounding; tests/test_sketch.py checks it)."""
    for start, end in store.missing_ranges():
        arrays = {r: sketch.project(exact.rows(r, range(start, end))).astype(np.float16) for r in exact.reductions}
        store.write_shard(
            start, end, arrays | {name: exact.per_sample(name)[start:end] for name in store.per_sample_names}
        )


def write_rows(store: Store, exact: Store, rows: np.ndarray) -> None:
    """Fill a created store's missing shards with `exact`'s rows `rows`, as they are (an exact sample)."""
    for start, end in store.missing_ranges():
        picked = rows[start:end]
        arrays = {r: exact.rows(r, picked).astype(np.float16) for r in exact.reductions}
        store.write_shard(
            start, end, arrays | {name: exact.per_sample(name)[picked] for name in store.per_sample_names}
        )


def compact_copy(path, exact, sketch: Sketch, exact_sample: int = 0):
    """An exact store projected post hoc into a compact store at `path` (`write_projected`), with, as
    `--exact-sample N` captures it, the exact values of N seeded records in a store beside it."""
    path = Path(path)
    source = json.loads((exact.path / "manifest.json").read_text())
    source.pop("format_version")
    manifest = json.loads(json.dumps(source))
    manifest["options"]["sketch"] = sketch.to_json()
    write_projected(Store.create(path, manifest), exact, sketch)
    if exact_sample:
        rows = sample_rows(exact.n_samples, exact_sample, sketch.seed)
        manifest = source
        manifest["options"]["exact_sample_of"] = path.name
        manifest["data"] |= {"name": f"{manifest['data']['name']}-exact{len(rows)}", "n_samples": len(rows)}
        manifest["shard_size"] = max(1, min(manifest["shard_size"], len(rows)))
        write_rows(Store.create(path.with_name(f"{path.name}-exact{len(rows)}"), manifest), exact, rows)
    return Store.open(path, verify=False)
