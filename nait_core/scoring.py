"""Scoring methods: how alike is each candidate to a capability feature?

Every method is a sum of per-neuron contributions, so a score splits exactly into per-layer and
per-neuron parts (what the app shows as the "reason"). With x a candidate's summary [layers, neurons]:

- `overlap` (default): centred cosine of token-mean profiles,
      s = Σ_lj (x − c)_lj (p − c)_lj / (‖x − c‖ ‖p − c‖),  p = target profile, c = pool mean (0 with no_centre).
- `jaccard`: |F(x) ∩ T| / |F(x) ∪ T|, F(x) = neurons whose token-mean activation exceeds the firing
  threshold θ (absolute `T`, or `qQ`: each neuron's Q-quantile over the pool), and T = the neurons that
  fire for at least half of the target samples (the feature's per-neuron median exceeds θ); when none
  does, the 0.5 % of all neurons with the largest median − θ (`target_firing_set`), so T is never empty.
- `nait-pca`: Eq. 5 as published, s = Σ_l x_l · v_l, with x the `reduction` summary of the candidate
  (default ΔA = last − first) and v_l the feature's PCA direction; `layer_norm="z"` z-scores each
  layer's projection over the pool before the sum.

Scoring streams through the store one shard at a time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .features import Feature, summary
from .store import Store

METHODS = ("overlap", "jaccard", "nait-pca")
QUANTILE_SAMPLE = 4096  # pool samples used to estimate per-neuron quantile thresholds


@dataclass(frozen=True)
class ScoreOptions:
    method: str = "overlap"
    centre: bool = True  # overlap: centre both profiles on the pool mean
    fire_threshold: str = "0"  # jaccard: "T" (absolute) or "qQ" (per-neuron pool quantile, e.g. q0.99)
    reduction: str = "last-first"  # nait-pca: the candidate summary, and which PCA direction to use
    layer_norm: str = "none"  # nait-pca: "none" or "z"

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}")
        if self.layer_norm not in ("none", "z"):
            raise ValueError(f"layer_norm must be 'none' or 'z', not {self.layer_norm!r}")
        parse_threshold(self.fire_threshold)

    def describe(self) -> str:
        if self.method == "overlap":
            return f"overlap ({'centred' if self.centre else 'uncentred'} cosine of token-mean profiles)"
        if self.method == "jaccard":
            return f"jaccard (firing sets, threshold {self.fire_threshold})"
        return f"nait-pca (Eq. 5, {self.reduction}, layer-norm {self.layer_norm})"


def parse_threshold(text) -> tuple[str, float]:
    """'0.5' -> ('absolute', 0.5); 'q0.99' -> ('quantile', 0.99)."""
    text = str(text).strip()
    try:
        if text.startswith("q"):
            q = float(text[1:])
            if not 0 < q < 1:
                raise ValueError
            return "quantile", q
        return "absolute", float(text)
    except ValueError:
        raise ValueError(f"fire threshold must be a number (absolute) or qQ with 0<Q<1 (per-neuron quantile), not {text!r}") from None


def fire_thresholds(store: Store, threshold: str, seed: int = 0) -> np.ndarray:
    """The firing threshold of each neuron [layers, neurons] (a constant array for absolute thresholds)."""
    kind, value = parse_threshold(threshold)
    if kind == "absolute":
        return np.full((store.n_layers, store.n_neurons), value, dtype=np.float32)
    rng = np.random.default_rng(seed)
    n = store.n_samples
    rows = np.sort(rng.choice(n, size=min(n, QUANTILE_SAMPLE), replace=False))
    return np.stack([np.quantile(store.layer_rows("mean", layer, rows), value, axis=0)
                     for layer in range(store.n_layers)]).astype(np.float32)


FALLBACK_TARGET_FIRES = 0.005  # jaccard: share of all neurons in the target's firing set when none passes the rule


def target_firing_set(median: np.ndarray, thresholds: np.ndarray, fallback: float = FALLBACK_TARGET_FIRES) -> np.ndarray:
    """The neurons that fire for the target [layers, neurons] (bool): those whose target median exceeds the
    threshold (they fire for at least half of the target samples). When none does, the ceil(fallback × all
    neurons) whose median comes closest to (or furthest above) the threshold, by median − threshold: the set
    is never empty, so every threshold scores, and thresholds that already worked score as before."""
    fires = median > thresholds
    if fires.any():
        return fires
    m = max(1, int(np.ceil(fallback * median.size)))
    top = np.zeros(median.size, dtype=bool)
    top[np.argsort(-(median - thresholds).ravel(), kind="stable")[:m]] = True
    return top.reshape(median.shape)


class Kernel:
    """One method prepared against one feature and one pool: turns summaries into contributions."""

    def __init__(self, feature: Feature, store: Store, options: ScoreOptions):
        self.options = options
        feature.check_compatible(store)
        if options.method == "overlap":
            self.reduction = "mean"
            self.centre = store.mean("mean") if options.centre else np.zeros_like(feature.profile)
            target = feature.profile - self.centre
            self.target = target / max(float(np.linalg.norm(target)), 1e-12)
        elif options.method == "jaccard":
            self.reduction = "mean"
            self.thresholds = fire_thresholds(store, options.fire_threshold)
            self.target_fires = target_firing_set(feature.median, self.thresholds)
        else:
            self.reduction = options.reduction
            self.direction = feature.direction(options.reduction)

    def per_neuron(self, x: np.ndarray) -> np.ndarray:
        """Contributions [b, layers, neurons] of summaries x [b, layers, neurons]; they sum to the score."""
        if self.options.method == "overlap":
            centred = x - self.centre
            norms = np.linalg.norm(centred.reshape(len(x), -1), axis=1)
            return centred * self.target / np.maximum(norms, 1e-12)[:, None, None]
        if self.options.method == "jaccard":
            fires = x > self.thresholds
            union = (fires | self.target_fires).reshape(len(x), -1).sum(axis=1)
            return (fires & self.target_fires) / np.maximum(union, 1)[:, None, None]
        return x * self.direction


def summaries(store: Store, reduction: str):
    """Stream (start, [n, layers, neurons]) summaries, ΔA included, one shard at a time."""
    if reduction == "last-first":
        for (start, last), (_, first) in zip(store.iter_chunks("last"), store.iter_chunks("first")):
            yield start, last - first
    else:
        yield from store.iter_chunks(reduction)


@dataclass
class Scores:
    feature: str
    per_layer: np.ndarray  # [n, layers]; sums to score
    layer_offset: np.ndarray  # [layers]; subtracted per layer (z layer-norm), else zeros
    layer_scale: np.ndarray  # [layers]; divides per layer (z layer-norm), else ones

    @property
    def layer_contributions(self) -> np.ndarray:
        return (self.per_layer - self.layer_offset) / self.layer_scale

    @property
    def score(self) -> np.ndarray:
        return self.layer_contributions.sum(axis=1)


def score_store(store: Store, features: list[Feature], options: ScoreOptions) -> list[Scores]:
    """Score every sample of `store` against each feature, in one streaming pass per summary kind."""
    kernels = [Kernel(f, store, options) for f in features]
    per_layer = [np.empty((store.n_samples, store.n_layers), dtype=np.float64) for _ in features]
    for start, x in summaries(store, kernels[0].reduction):
        for kernel, out in zip(kernels, per_layer):
            out[start : start + len(x)] = kernel.per_neuron(x).sum(axis=2)
    results = []
    for feature, layers in zip(features, per_layer):
        offset, scale = np.zeros(store.n_layers), np.ones(store.n_layers)
        if options.method == "nait-pca" and options.layer_norm == "z":
            offset, scale = layers.mean(axis=0), np.maximum(layers.std(axis=0), 1e-12)
        results.append(Scores(feature.name, layers, offset, scale))
    return results


def explain(store: Store, rows, feature: Feature, options: ScoreOptions, scores: Scores | None = None) -> np.ndarray:
    """Per-neuron contributions [len(rows), layers, neurons] of these samples' scores (divided by the
    z layer-norm scale when `scores` used one); the method is prepared once for all rows."""
    kernel = Kernel(feature, store, options)
    contributions = kernel.per_neuron(summary(store, kernel.reduction, np.asarray(rows)))
    if scores is not None:
        contributions = contributions / scores.layer_scale[:, None]
    return contributions
