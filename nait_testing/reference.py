"""The per-neuron reference engine: scores as sums of `scoring.Kernel.per_neuron` contributions, one chunk of
summaries at a time. Slow and simple, it is the oracle the matrix engine (`scoring.score_store`) is tested
and benchmarked against; production scores with the matrix form, and explains with `Kernel.per_neuron`."""

from __future__ import annotations

import numpy as np

from nait_core.features import Feature
from nait_core.scoring import Kernel, ScoreOptions, Scores, _scores
from nait_core.store import Store, derive, sources


def summaries(store: Store, reduction: str):
    """Stream (start, [n, layers, neurons]) summaries, ΔA included, one shard at a time."""
    names = sources(reduction, store.reductions)
    for chunks in zip(*(store.iter_chunks(name) for name in names)):
        arrays = {name: x for name, (_, x) in zip(names, chunks)}
        yield chunks[0][0], derive(reduction, store.reductions, arrays.__getitem__)


def score_store_per_neuron(store: Store, features: list[Feature], options: ScoreOptions) -> list[Scores]:
    """Per-neuron contributions [b, layers, width] of every chunk, summed per layer."""
    kernels = [Kernel(f, store, options) for f in features]
    per_layer = [np.empty((store.n_samples, store.n_layers), dtype=np.float64) for _ in features]
    for start, x in summaries(store, kernels[0].reduction):
        for kernel, out in zip(kernels, per_layer):
            out[start : start + len(x)] = kernel.per_neuron(x).sum(axis=2)
    return _scores(features, per_layer, options)
