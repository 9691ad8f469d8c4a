"""Neuron methods that weigh layers on purpose (issue 22: which layers carry the signal?), each a centred
cosine of token-mean profiles, x = a candidate's summary [layers, neurons], p = the target profile, c = the
pool mean, over the chosen layers S (`--layers`, default all):

- `overlap --layers S`: overlap on those layers only, s = Σ_{l∈S} (x−c)_l·(p−c)_l / (‖(x−c)_S‖ ‖(p−c)_S‖);
- `overlap-balanced`: each layer's own centred cosine, averaged over S, so no layer dominates by its scale
  (on the demo the last layer carries about 0.6 of every overlap score);
- `overlap-z`: overlap after each neuron is divided by its standard deviation over the pool.

One streaming pass: per chunk and layer, x_l·t_l, x_l·c_l and ‖x_l‖² (matrix products, as in scoring.py).
Exact stores only: a compact store's read-outs do not keep per-layer norms.
"""

from __future__ import annotations

import numpy as np

from ..scores import Scores
from ..sketch import SketchError, store_sketch
from ..store import Store


def parse_layers(text: str | None, n_layers: int | None = None) -> tuple[int, ...] | None:
    """'10-20' / '29' / '0-5,20-29' -> sorted layer indices (None: all layers)."""
    if text is None or str(text).strip() == "":
        return None
    layers = set()
    try:
        for part in str(text).split(","):
            low, dash, high = part.strip().partition("-")
            first, last = int(low), int(high if dash else low)
            if first < 0 or last < first:
                raise ValueError
            layers |= set(range(first, last + 1))
    except ValueError:
        raise ValueError(
            f"--layers must be layer indices or ranges from 0, like 29, 10-20 or 0-5,20-29, not {text!r}"
        ) from None
    if n_layers is not None and max(layers) >= n_layers:
        raise ValueError(f"--layers {text}: the model has {n_layers} layers (0-{n_layers - 1})")
    return tuple(sorted(layers))


def check_layers(store: Store, layers) -> np.ndarray:
    """A bool mask [layers] of the chosen layers, refused by name when the store has fewer."""
    mask = np.ones(store.n_layers, bool)
    if layers is not None:
        if max(layers) >= store.n_layers:
            raise ValueError(
                f"--layers: layer {max(layers)} is past the {store.n_layers} layers of {store.location} "
                f"(0-{store.n_layers - 1})"
            )
        mask[:] = False
        mask[list(layers)] = True
    return mask


def pool_spread(store: Store) -> np.ndarray:
    """Each neuron's standard deviation over the pool [layers, neurons] (token-mean summaries), cached."""
    cached = store.load_cached_array("pool-std-mean")
    if cached is not None and cached.shape == (store.n_layers, store.width):
        return cached
    import threading

    total, lock = np.zeros((store.n_layers, store.width), np.float64), threading.Lock()

    def add(_, chunk):
        part = np.einsum("blw,blw->lw", chunk, chunk, dtype=np.float64)
        with lock:
            np.add(total, part, out=total)

    store.map_chunks(("mean",), add)
    mean = store.mean("mean").astype(np.float64)
    spread = np.sqrt(np.maximum(total / store.n_samples - mean**2, 0.0)).astype(np.float32)
    store.save_cached_array("pool-std-mean", spread)
    return spread


def score(store: Store, features: list, options) -> list:
    """One `scoring.Scores` per feature for overlap (with --layers), overlap-balanced or overlap-z."""
    if sketch := store_sketch(store):
        raise SketchError(
            f"--method {options.method}{' --layers' if options.layers else ''} needs each layer's exact norms, and "
            f"{store.path} is a compact store (sketch K={sketch.k}): capture the pool without --sketch"
        )
    for feature in features:
        feature.check_compatible(store)
    chosen = check_layers(store, options.layers)
    balanced = options.method == "overlap-balanced"
    centre = store.mean("mean") if options.centre else np.zeros((store.n_layers, store.width), np.float32)
    scale = 1.0 / np.maximum(pool_spread(store), 1e-6) if options.method == "overlap-z" else None
    if scale is not None:  # standardise every neuron: x, p and c all divided by the pool's spread
        centre = centre * scale
    targets = []
    for feature in features:
        t = (feature.profile * scale if scale is not None else feature.profile) - centre
        t = t * chosen[:, None]
        norms = np.linalg.norm(t, axis=1, keepdims=True) if balanced else np.linalg.norm(t)
        targets.append(t / np.maximum(norms, 1e-12))
    weights = np.ascontiguousarray(np.stack(targets + [centre], -1), dtype=np.float32)  # [L, W, F + 1]
    count = len(features)
    centre_dots = np.einsum("lw,lwf->lf", centre.astype(np.float64), weights[..., :count].astype(np.float64))
    centre_sq = np.einsum("lw,lw->l", centre.astype(np.float64), centre.astype(np.float64))
    per_layer = np.empty((count, store.n_samples, store.n_layers), np.float64)

    def work(start, x):
        if scale is not None:
            x *= scale  # the reader's own buffer
        dots = np.matmul(x.transpose(1, 0, 2), weights).astype(np.float64)  # [L, b, F + 1]
        numerators = dots[..., :count] - centre_dots[:, None, :]  # (x_l − c_l)·t_l
        sq = np.einsum("blw,blw->lb", x, x, dtype=np.float64) - 2 * dots[..., count] + centre_sq[:, None]
        sq = np.maximum(sq, 0.0) * chosen[:, None]  # ‖x_l − c_l‖², only the chosen layers
        if balanced:
            norms = np.sqrt(sq)[..., None] * chosen.sum()
        else:
            norms = np.sqrt(sq.sum(axis=0))[None, :, None]
        per_layer[:, start : start + len(x)] = (numerators / np.maximum(norms, 1e-12)).transpose(2, 1, 0)

    store.map_chunks(("mean",), work)
    return [Scores(f.name, p, np.zeros(store.n_layers), np.ones(store.n_layers)) for f, p in zip(features, per_layer)]
