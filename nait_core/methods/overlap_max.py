"""`overlap-max`: RDS+'s max over target records (methods.rds) applied to neuron profiles. A candidate's score
is the largest of its centred cosines to EACH target record's token-mean profile, rather than to the
target's mean profile (`overlap`):

    s(x) = max_j (x − c)·(t_j − c) / (‖x − c‖ ‖t_j − c‖),   over every layer and neuron,

with x a candidate's token-mean summary [layers, neurons], t_j target record j's, and c the pool mean (no
centring with `centre=False`). A candidate close to one target record scores high even when that record is
far from the target's mean. Its per-layer parts are those of the winning target record, so they sum to s.

One streaming pass over the pool: per chunk, a matrix product with every target record per layer, as in
scoring.py. Exact stores only: a compact store's read-outs do not keep each record's norm.
"""

from __future__ import annotations

import numpy as np

from ..scores import Scores
from ..sketch import SketchError, store_sketch
from ..store import Store


def target_rows(pool: Store, target: Store, centre: np.ndarray) -> np.ndarray:
    """Target records' centred token-mean profiles, each of unit norm over all layers: [layers, neurons, m]."""
    if target.model_fingerprint != pool.model_fingerprint or (target.n_layers, target.width) != (
        pool.n_layers,
        pool.width,
    ):
        raise ValueError(
            f"--method overlap-max: the target store {target.location} was captured with another model or "
            f"neuron module than the pool {pool.location}; capture both with the same --model"
        )
    if store_sketch(target):
        raise SketchError(f"--method overlap-max needs the target's exact values; {target.location} is compact")
    t = target.rows("mean", np.arange(target.n_samples)).astype(np.float64) - centre  # [m, L, W]
    t /= np.maximum(np.linalg.norm(t.reshape(len(t), -1), axis=1), 1e-12)[:, None, None]
    return np.ascontiguousarray(t.transpose(1, 2, 0), dtype=np.float32)


def record_max(pool: Store, weights: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Per-layer parts [n, layers] of each candidate's centred cosine to its closest target record."""
    centre_dots = np.einsum("lw,lwm->lm", centre, weights.astype(np.float64))  # c_l·t_jl
    centre_flat, centre_sq = centre.astype(np.float32).reshape(-1), float(np.sum(centre**2))
    per_layer = np.empty((pool.n_samples, pool.n_layers), np.float64)

    def work(start, x):
        parts = np.matmul(x.transpose(1, 0, 2), weights).astype(np.float64) - centre_dots[:, None, :]  # [L, b, m]
        flat = x.reshape(len(x), -1)
        sq = np.einsum("ij,ij->i", flat, flat, dtype=np.float64) - 2 * (flat @ centre_flat) + centre_sq
        parts /= np.maximum(np.sqrt(np.maximum(sq, 0.0)), 1e-12)[None, :, None]  # ‖x − c‖
        best = parts.sum(axis=0).argmax(axis=1)  # each candidate's closest target record
        per_layer[start : start + len(x)] = parts[:, np.arange(len(x)), best].T

    pool.map_chunks(("mean",), work)
    return per_layer


def score(pool: Store, targets: list[Store], names: list[str], options, root=None) -> list:
    """One `scoring.Scores` per target store; per layer, the winning target record's part of the cosine."""
    if sketch := store_sketch(pool):
        raise SketchError(
            f"--method overlap-max needs each record's exact norm, and {pool.path} is a compact store "
            f"(sketch K={sketch.k}): capture the pool without --sketch"
        )
    centre = pool.mean("mean").astype(np.float64) if options.centre else np.zeros((pool.n_layers, pool.width))
    layers = pool.n_layers
    return [
        Scores(name, record_max(pool, target_rows(pool, target, centre), centre), np.zeros(layers), np.ones(layers))
        for target, name in zip(targets, names)
    ]
