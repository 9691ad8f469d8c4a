"""The Overlap map's coordinates: a 2-D map (PCA streamed over the rows, then UMAP) of every pool sample and
every target sample. UMAP is fitted on up to `MAP_MAX_POOL` pool samples (a seeded sample beyond) and places
the rest with its `transform`; the map is cached on disk in the pool's store folder (atomic `.npy`), computed
once per pool and targets. `in_regions`: which placed points a box or lasso holds. No Streamlit here.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from .data import sample_rows
from .store import Store

MAP_VERSION = 2  # 2: every pool point up to MAP_MAX_POOL; PCA streamed (randomized), not an n×n Gram matrix
# (a pool beyond MAP_MAX_POOL: its map key also says its other rows are placed, "rest"; smaller maps are unchanged)
MAP_MAX_POOL = 52_000  # pool samples UMAP is fitted on and the map draws as dots: a seeded sample beyond this
MAP_PCA_DIMS = 50
MAP_CHUNK = 1024  # rows read from a store at a time: float32 [1024, 30 × 1536] is 189 MB
MAP_POWER_ITERATIONS = 1


def _pca(read, sizes: list[int], width: int, dims: int, seed: int = 0, progress=None):
    """(coordinates [n, dims], project) of the rows `read(i)` returns (float32 [sizes[i], width]) for each
    chunk i, in order, never holding them all; `project(rows)` gives other rows' coordinates on the same axes. a randomized range finder (Halko, Martinsson & Tropp 2011) with power
    iterations, one pass over the rows each, so memory is O((n + width) · dims): a 52,000 × 46,080 pool
    streams, where an exact n×n Gram matrix takes 21.6 GB. `progress(done, total)` after each chunk."""
    n, chunks = sum(sizes), len(sizes)
    k = min(dims + 10, n, width)  # ten spare directions, so the top `dims` come out (near) exact
    total, done = (2 + 2 * MAP_POWER_ITERATIONS) * chunks, 0

    def each():  # (rows' slice, rows) for every chunk: one pass
        nonlocal done
        start = 0
        for i, size in enumerate(sizes):
            yield slice(start, start + size), np.asarray(read(i), dtype=np.float32)
            start += size
            done += 1
            if progress:
                progress(done, total)

    omega = np.random.default_rng(seed).standard_normal((width, k)).astype(np.float32)
    y, total_sum = np.empty((n, k), np.float32), np.zeros(width)
    for at, x in each():  # first pass: X Ω and the mean, then (X − 1μᵀ) Ω
        y[at] = x @ omega
        total_sum += x.sum(axis=0, dtype=np.float64)
    mean = (total_sum / n).astype(np.float32)
    y -= mean @ omega
    for _ in range(MAP_POWER_ITERATIONS):  # y ← (Xc Xcᵀ) y: sharpens the top directions, two passes each
        q, z = np.linalg.qr(y)[0], np.zeros((width, k), np.float32)
        for at, x in each():
            z += (x - mean).T @ q[at]
        z = np.linalg.qr(z)[0]
        for at, x in each():
            y[at] = (x - mean) @ z
    q, b = np.linalg.qr(y)[0], np.zeros((k, width), np.float64)
    for at, x in each():  # last pass: B = Qᵀ Xc, so Xc ≈ Q B and B's SVD gives the components
        b += q[at].T @ (x - mean)
    u, s, vt = np.linalg.svd(b, full_matrices=False)
    axes = vt[:dims].T.astype(np.float32)  # Xc ≈ Q U S Vᵀ, so the coordinates Q U S are Xc V

    def project(x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float32) - mean) @ axes

    return ((q @ u[:, :dims]) * s[:dims]).astype(np.float32), project


def map_sample(n: int, max_points: int | None = None, seed: int = 0) -> np.ndarray:
    """The pool indices UMAP is fitted on and the map draws as dots: all of them, or a seeded sample of
    `max_points` (default `MAP_MAX_POOL`, read when called)."""
    return sample_rows(n, MAP_MAX_POOL if max_points is None else max_points, seed)


def map_path(pool: Store, targets: list[Store], reduction: str, max_points: int):
    key = {
        "v": MAP_VERSION,
        "pool": pool.path.name,
        "targets": [t.path.name for t in targets],
        "reduction": reduction,
        "max": max_points,
        "pca": MAP_PCA_DIMS,
    }
    if pool.n_samples > max_points:  # a larger pool's map places every row (a v2 map held the sample only)
        key["rest"] = "umap.transform"
    return pool.path / f"map-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]}.npy"


def map_coordinates(
    pool: Store, targets: list[Store], reduction: str = "mean", max_points: int | None = None, progress=None
) -> pd.DataFrame:
    """2-D coordinates of every pool sample and every target sample: columns group (-1 = pool, else the
    target's position in `targets`), index (row in its store), x, y, and drawn (a pool sample UMAP was fitted
    on, drawn as a dot; the others, beyond `max_points` pool samples, are placed on that fit by
    `UMAP.transform` and drawn as density). Cached in the pool's folder. The rows are streamed from the
    stores, `MAP_CHUNK` at a time; `progress(fraction, text)`, when given, is told how far it is."""
    max_points = MAP_MAX_POOL if max_points is None else max_points
    path = map_path(pool, targets, reduction, max_points)
    inputs = {"targets": [t.content_id for t in targets]}  # a recaptured target invalidates the map
    table = pool.load_cached_array(path.stem, inputs)  # listed in caches.json with its checksum
    if table is None:
        table = _place(pool, targets, reduction, max_points, progress or (lambda fraction, text: None))
        pool.save_cached_array(path.stem, table, inputs)
        if progress:
            progress(1.0, "map saved in the pool's store folder")
    drawn = table[:, 4] > 0 if table.shape[1] > 4 else np.ones(len(table), bool)  # a v2 map: every point drawn
    return pd.DataFrame(
        {
            "group": table[:, 0].astype(int),
            "index": table[:, 1].astype(np.int64),
            "x": table[:, 2],
            "y": table[:, 3],
            "drawn": drawn,
        }
    )


def _place(pool: Store, targets: list[Store], reduction: str, max_points: int, tell) -> np.ndarray:
    """The map's table [group, index, x, y, drawn]: PCA and UMAP fitted on the pool's sample and every target
    sample, then the rest of the pool projected on the same PCA axes (one more pass) and placed by UMAP."""
    sample = map_sample(pool.n_samples, max_points)
    rest = np.setdiff1d(np.arange(pool.n_samples), sample)
    blocks = [(-1, sample, pool)] + [(g, np.arange(t.n_samples), t) for g, t in enumerate(targets)]
    chunks = [(s, idx[i : i + MAP_CHUNK]) for _, idx, s in blocks for i in range(0, len(idx), MAP_CHUNK)]
    n = sum(len(idx) for _, idx, _ in blocks)
    fit_share = 0.6 if not len(rest) else 0.45  # the PCA passes are most of the time; UMAP the rest

    def read(i):
        store, idx = chunks[i]
        return store.rows(reduction, idx).reshape(len(idx), -1)

    def pca_progress(done, total):
        passes = total // len(chunks)
        step = min(done * passes // total + 1, passes)
        tell(fit_share * done / total, f"PCA of {n:,} samples: pass {step} of {passes}")

    sizes = [len(idx) for _, idx in chunks]
    coords, project = _pca(read, sizes, pool.n_layers * pool.width, MAP_PCA_DIMS, progress=pca_progress)
    reducer = None
    if len(coords) > 15:
        import umap  # imported late: it compiles with numba on first use

        tell(
            fit_share,
            f"UMAP of {n:,} points (it reports no progress of its own: minutes for tens of thousands on a small CPU)",
        )
        reducer = umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.1, random_state=0, n_jobs=1)
        xy = reducer.fit_transform(coords)
    else:  # too few points for UMAP: the first two principal components
        xy = np.pad(coords[:, :2], ((0, 0), (0, max(0, 2 - coords.shape[1]))))
    placed = np.empty((len(rest), 2))
    if len(rest):
        projected = np.empty((len(rest), coords.shape[1]), np.float32)
        is_rest = np.ones(pool.n_samples, bool)
        is_rest[sample] = False
        where = np.cumsum(is_rest) - 1  # a row's place in `rest`
        for start, chunk in pool.iter_chunks(reduction, rows=MAP_CHUNK):  # in order: contiguous reads
            rows = np.arange(start, start + len(chunk))
            keep = is_rest[rows]
            if keep.any():
                projected[where[rows[keep]]] = project(chunk[keep].reshape(int(keep.sum()), -1))
            done = start + len(chunk)
            tell(0.6 + 0.15 * done / pool.n_samples, f"projecting the other {len(rest):,} pool samples")
        step = 20 * MAP_CHUNK  # UMAP's transform in parts, so the page can say how far it is
        for i in range(0, len(rest), step):
            part = projected[i : i + step]
            placed[i : i + len(part)] = (
                reducer.transform(part)
                if reducer is not None
                else np.pad(part[:, :2], ((0, 0), (0, max(0, 2 - part.shape[1]))))
            )
            tell(
                0.75 + 0.25 * (i + len(part)) / len(rest),
                f"placing them on the map: {i + len(part):,} of {len(rest):,}",
            )
    group = np.concatenate([np.full(len(idx), g) for g, idx, _ in blocks] + [np.full(len(rest), -1)])
    index = np.concatenate([idx for _, idx, _ in blocks] + [rest])
    drawn = np.concatenate([np.ones(n), np.zeros(len(rest))])
    return np.column_stack([group, index, np.vstack([xy, placed]), drawn]).astype(np.float64)


def map_cached(pool: Store, targets: list[Store], reduction: str = "mean", max_points: int | None = None) -> bool:
    """Whether `map_coordinates` would read the map back rather than compute it."""
    inputs = {"targets": [t.content_id for t in targets]}
    max_points = MAP_MAX_POOL if max_points is None else max_points
    return pool.cached_file(map_path(pool, targets, reduction, max_points).stem, inputs) is not None


def in_regions(x: np.ndarray, y: np.ndarray, boxes=(), lassos=()) -> np.ndarray:
    """Which points (x[i], y[i]) lie in any of the boxes (x0, x1, y0, y1) or lasso polygons ((x, y), ...):
    a box or lasso drawn on the map applied to every placed record, dots and density alike (even-odd rule,
    as plotly.js tests a lasso)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    inside = np.zeros(len(x), bool)
    for x0, x1, y0, y1 in boxes:
        inside |= (x >= min(x0, x1)) & (x <= max(x0, x1)) & (y >= min(y0, y1)) & (y <= max(y0, y1))
    for polygon in lassos:
        px, py = np.asarray(polygon, float).reshape(-1, 2).T
        near = np.flatnonzero(~inside & (x >= px.min()) & (x <= px.max()) & (y >= py.min()) & (y <= py.max()))
        xs, ys, hit = x[near], y[near], np.zeros(len(near), bool)
        for x1, y1, x2, y2 in zip(px, py, np.roll(px, -1), np.roll(py, -1)):
            crosses = (y1 > ys) != (y2 > ys)  # this edge spans the point's height: does it pass to its right?
            with np.errstate(divide="ignore", invalid="ignore"):
                hit ^= crosses & (xs < x1 + (ys - y1) * (x2 - x1) / (y2 - y1))
        inside[near[hit]] = True
    return inside
