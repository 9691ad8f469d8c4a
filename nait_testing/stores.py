"""Real stores holding synthetic activations: no model needed."""

from __future__ import annotations

import numpy as np

from nait_core.store import Store


def synthetic_store(
    path,
    n=5,
    layers=2,
    neurons=3,
    reductions=("mean",),
    shard_size=3,
    seed=0,
    fingerprint="f",
    shift=0.0,
    rank=None,
    layer_scale=None,
):
    """A real store holding random float16 summaries (normal, mean `shift`; with `rank`, each sample a mix of
    that many fixed patterns plus 5 % noise, as real activations are; `layer_scale` [layers] multiplies each
    layer, as real layers differ in scale); returns (store, {reduction: data})."""
    manifest = {
        "model": {"name": "m", "fingerprint": fingerprint, "dtype": "float32"},
        "data": {"name": path.name, "hash": f"h{seed}", "n_samples": n},
        "options": {"reductions": list(reductions), "max_length": 8},
        "shape": {"layers": layers, "neurons": neurons},
        "shard_size": shard_size,
    }
    store = Store.create(path, manifest)
    rng = np.random.default_rng(seed)

    def draw():
        if rank is None:
            return rng.normal(size=(n, layers, neurons))
        patterns = rng.normal(size=(rank, layers * neurons))
        mixed = rng.normal(size=(n, rank)) @ patterns / np.sqrt(rank)
        return mixed.reshape(n, layers, neurons) + 0.05 * rng.normal(size=(n, layers, neurons))

    scale = np.ones(layers) if layer_scale is None else np.asarray(layer_scale, dtype=np.float64)
    data = {r: ((draw() + shift) * scale[None, :, None]).astype(np.float16) for r in reductions}
    for start, end in store.shard_ranges():
        store.write_shard(
            start,
            end,
            {
                **{r: d[start:end] for r, d in data.items()},
                "tokens": np.arange(start, end, dtype=np.int32),
                "response_tokens": np.ones(end - start, np.int32),
                "truncated": np.zeros(end - start, bool),
            },
        )
    return Store.open(path), data
