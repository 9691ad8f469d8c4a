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

Scoring streams through the store once, in float16 chunks of a few MB read on one thread per core
(`Store.map_chunks`), and computes every method for all features at once as matrix products (per layer l, X_l [b, width] @ [width, features]):
- `overlap`: (x−c)·t = x·t − c·t and ‖x−c‖² = ‖x‖² − 2 x·c + ‖c‖², so the centred cosine needs only
  x·[t | c] (one matmul) and ‖x‖² (one pass); no centred copy of the pool is made;
- `nait-pca`: x·v, one matmul;
- `jaccard`: the firing indicator (x > θ) times the target's firing set, as a 0/1 matmul.
Per-neuron contributions (`Kernel.per_neuron`) are computed only for `explain`, on the few rows asked for
(production needs them there: the app's and `nait explain`'s reasons); summed over a whole pool they are the
reference engine the matrix form is tested against (`nait_testing.reference`).

A compact store (see `sketch.py`) holds y_l = x_l P_l. `overlap` and `nait-pca` are then computed with each
exact weight vector (the centred target profile, the PCA directions) turned into a per-layer read-out
x_l·v_l ≈ a_l + y_l·w_l (`sketch.Calibration`): fitted on the pool's exact sample when it has one, else
the plain projection w_l = P_lᵀ v_l (unbiased, noisier). overlap's norm ‖x − c‖ is the sketch's ‖y − ȳ‖.
`jaccard` needs individual neurons and refuses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import methods
from .data import sample_rows
from .features import Feature, summary
from .methods import layered
from .scores import Scores
from .sketch import Calibration, SketchError, store_sketch
from .store import Store, sources

METHODS = methods.names("neurons", explains=True)  # scored here against capability features, explained per neuron
TARGET_METHODS = tuple(m.name for m in methods.REGISTRY.values() if m.target)  # what ScoreOptions may name
RDS_POOLS = ("max", "mean")
LAYERED = ("overlap", "overlap-balanced", "overlap-z", "nait-pca")  # the methods --layers restricts
QUANTILE_SAMPLE = 4096  # pool samples used to estimate per-neuron quantile thresholds


@dataclass(frozen=True)
class ScoreOptions:
    method: str = "overlap"
    centre: bool = True  # overlap: centre both profiles on the pool mean
    fire_threshold: str = "0"  # jaccard: "T" (absolute) or "qQ" (per-neuron pool quantile, e.g. q0.99)
    reduction: str = "last-first"  # nait-pca: the candidate summary, and which PCA direction to use
    layer_norm: str = "none"  # nait-pca: "none" or "z"
    rds_pool: str = "max"  # rds: a candidate's cosines to the target records, reduced by "max" or "mean"
    embed_model: str = ""  # embed: a sentence-transformers folder; "" = the bundled all-MiniLM-L6-v2
    layers: tuple[int, ...] | None = None  # overlap variants and nait-pca: only these layers (None: all)

    def __post_init__(self):
        if self.method not in TARGET_METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {', '.join(TARGET_METHODS)}")
        if self.rds_pool not in RDS_POOLS:
            raise ValueError(f"rds_pool must be one of {', '.join(RDS_POOLS)}, not {self.rds_pool!r}")
        if self.layer_norm not in ("none", "z"):
            raise ValueError(f"layer_norm must be 'none' or 'z', not {self.layer_norm!r}")
        parse_threshold(self.fire_threshold)
        if self.layers is not None and self.method not in LAYERED:
            raise ValueError(f"--layers applies to {', '.join(LAYERED)}, not to {self.method}")

    def describe(self) -> str:
        if self.method == "overlap":
            return f"overlap ({'centred' if self.centre else 'uncentred'} cosine of token-mean profiles{self._layers_text()})"
        if self.method == "jaccard":
            return f"jaccard (firing sets, threshold {self.fire_threshold})"
        if self.method == "embed":
            return f"embed (cosine to the target's mean embedding, {self.embed_model or 'all-MiniLM-L6-v2'})"
        if self.method == "rds":
            return (
                f"rds (RDS+: final hidden state, position-weighted mean, cosine, {self.rds_pool} over target records)"
            )
        if self.method == "nait-pca":
            return f"nait-pca (Eq. 5, {self.reduction}, layer-norm {self.layer_norm}{self._layers_text()})"
        return f"{self.method} ({methods.get(self.method).help}{self._layers_text()})"

    def _layers_text(self) -> str:
        if self.layers is None:
            return ""
        lo, hi = min(self.layers), max(self.layers)
        contiguous = len(self.layers) == hi - lo + 1
        return f", layers {lo}-{hi}" if contiguous and hi > lo else f", layers {','.join(map(str, self.layers))}"


def parse_threshold(text) -> tuple[str, float]:
    """'0.5' -> ('absolute', 0.5); 'q0.99' -> ('quantile', 0.99)."""
    text = str(text).strip()
    try:
        if text.startswith("q"):
            q = float(text[1:])
            if not 0 < q < 1:
                raise ValueError
            return "quantile", q
        value = float(text)
        if not math.isfinite(value):  # NaN fires nothing and inf nothing either: every score would be 0
            raise ValueError
        return "absolute", value
    except ValueError:
        raise ValueError(
            f"fire threshold must be a finite number (absolute) or qQ with 0<Q<1 (per-neuron quantile), not {text!r}"
        ) from None


def pool_reduction(options: ScoreOptions) -> str:
    """The pool summary a method reads: token means for overlap and jaccard, `reduction` for nait-pca
    ("last-first" is also computed from "last" and "first", see `chunk_names`)."""
    return options.reduction if options.method == "nait-pca" else "mean"


def fire_thresholds(store: Store, threshold: str, seed: int = 0) -> np.ndarray:
    """The firing threshold of each neuron [layers, neurons] (a constant array for absolute thresholds)."""
    kind, value = parse_threshold(threshold)
    if kind == "absolute":
        return np.full((store.n_layers, store.n_neurons), value, dtype=np.float32)
    rows = sample_rows(store.n_samples, QUANTILE_SAMPLE, seed)
    return np.stack(
        [np.quantile(store.layer_rows("mean", layer, rows), value, axis=0) for layer in range(store.n_layers)]
    ).astype(np.float32)


FALLBACK_TARGET_FIRES = 0.005  # jaccard: share of all neurons in the target's firing set when none passes the rule


def target_firing_set(
    median: np.ndarray, thresholds: np.ndarray, fallback: float = FALLBACK_TARGET_FIRES
) -> np.ndarray:
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


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


class Kernel:
    """One method prepared against one feature and one pool: turns summaries into contributions."""

    def __init__(self, feature: Feature, store: Store, options: ScoreOptions, calibration: Calibration | None = None):
        if options.method not in METHODS:  # the layer variants have no per-neuron form (methods/layered.py)
            raise ValueError(f"per-neuron contributions are computed for {', '.join(METHODS)}, not {options.method}")
        self.options = options
        feature.check_compatible(store)
        self.sketch = store_sketch(store)
        # Features stay exact; on a compact store each exact weight vector becomes a per-layer read-out of
        # the sketch (sketch.Calibration): fitted on the exact sample when there is one.
        if self.sketch and calibration is None:
            calibration = Calibration(store, self.sketch)
        self.calibration = calibration if self.sketch else None
        self.layer_offset = np.zeros(store.n_layers)  # added to each layer's sum (a compact read-out's intercept)
        self.reduction = pool_reduction(options)
        if options.method == "overlap":
            self.centre = store.mean("mean") if options.centre else np.zeros((store.n_layers, store.width), np.float32)
            # The exact centre c of the centred target t = (p − c)/‖p − c‖: the pool's mean, or on a compact
            # pool its exact sample's (None without one).
            exact_centre = self.centre if not (self.sketch and options.centre) else self.calibration.sample_mean("mean")
            if self.sketch and options.centre and exact_centre is None:
                # No exact sample: t in sketch space, the profile's projection centred on the pool's mean.
                self.target = _unit(self.sketch.project(feature.profile) - self.centre)
            else:
                target = _unit(feature.profile - (exact_centre if options.centre else 0.0))
                if self.sketch:
                    # x·t read out of y: (y − ȳ)·w, as the read-out's intercept cancels against the centre's.
                    self.target, offset = self.calibration.readout("mean", target)
                    if not options.centre:
                        self.layer_offset = offset
                else:
                    self.target = target
        elif options.method == "jaccard":
            if self.sketch:
                raise SketchError(
                    f"jaccard cannot be computed from the compact store {store.path} (sketch K={self.sketch.k}): "
                    f"it needs each neuron's value to find which neurons fire, and a random projection keeps only "
                    f"{self.sketch.k} mixtures per layer. Use --method overlap or nait-pca, or capture without --sketch"
                )
            self.thresholds = fire_thresholds(store, options.fire_threshold)
            self.target_fires = target_firing_set(feature.median, self.thresholds)
        else:
            direction = feature.direction(options.reduction).astype(np.float32)
            if self.sketch:
                self.direction, self.layer_offset = self.calibration.readout(options.reduction, direction)
            else:
                self.direction = direction

    def per_neuron(self, x: np.ndarray) -> np.ndarray:
        """Contributions [b, layers, neurons] of summaries x [b, layers, neurons]; they sum to the score."""
        # A compact read-out's intercept (layer_offset) is spread evenly over the layer's K values.
        spread = self.layer_offset[None, :, None] / x.shape[2]
        if self.options.method == "overlap":
            centred = x - self.centre
            norms = np.linalg.norm(centred.reshape(len(x), -1), axis=1)
            return (centred * self.target + spread) / np.maximum(norms, 1e-12)[:, None, None]
        if self.options.method == "jaccard":
            fires = x > self.thresholds
            union = (fires | self.target_fires).reshape(len(x), -1).sum(axis=1)
            return (fires & self.target_fires) / np.maximum(union, 1)[:, None, None]
        return x * self.direction + spread


def chunk_names(store: Store, reduction: str) -> tuple[str, ...]:
    """The stored arrays a summary is read from (`store.sources`: ΔA from `last` and `first` unless stored)."""
    return sources(reduction, store.reductions)


def map_summaries(store: Store, reduction: str, work) -> None:
    """Call work(start, x) for every chunk, x float32 [b, layers, width] (ΔA computed in place), on the
    store's reader threads (`Store.map_chunks`): x is a reused buffer, and work writes only its own rows."""

    def delta(start, last, first):
        np.subtract(last, first, out=last)
        work(start, last)

    store.map_chunks(chunk_names(store, reduction), delta if len(chunk_names(store, reduction)) == 2 else work)


def score_store(store: Store, features: list[Feature], options: ScoreOptions) -> list[Scores]:
    """Score every sample of `store` against each feature, in one streaming pass for all features."""
    if options.layers is not None:
        layered.check_layers(store, options.layers)
    if options.method in ("overlap-balanced", "overlap-z") or (options.method == "overlap" and options.layers):
        return layered.score(store, features, options)
    sketch = store_sketch(store)
    calibration = Calibration(store, sketch) if sketch else None  # one exact-sample fit shared by every feature
    kernels = [Kernel(f, store, options, calibration) for f in features]
    n, layers, count = store.n_samples, store.n_layers, len(features)
    per_layer = np.empty((count, n, layers), dtype=np.float64)
    method = options.method
    if method == "jaccard":
        thresholds = kernels[0].thresholds  # one pool, one threshold: the same for every feature
        target = np.ascontiguousarray(np.stack([k.target_fires for k in kernels], -1), dtype=np.float32)  # [L, W, F]
        target_size = target.sum(axis=(0, 1))

        def firing(start, x):
            fires = np.greater(x, thresholds).astype(np.float32)  # [b, L, W]
            both = np.matmul(fires.transpose(1, 0, 2), target)  # [L, b, F]: |F(x) ∩ T| per layer
            union = fires.reshape(len(x), -1).sum(axis=1)[:, None] + target_size - both.sum(axis=0)
            per_layer[:, start : start + len(x)] = (both.astype(np.float64) / np.maximum(union, 1)).transpose(2, 1, 0)

        map_summaries(store, "mean", firing)
    else:
        overlap = method == "overlap"
        columns = [k.target if overlap else k.direction for k in kernels]
        centre = kernels[0].centre if overlap else None
        centred = overlap and bool(np.any(centre))
        weights = np.ascontiguousarray(np.stack(columns + ([centre] if centred else []), -1), dtype=np.float32)
        offsets = np.stack([k.layer_offset for k in kernels], -1)  # [L, F]: compact read-outs' intercepts
        if centred:
            centre_dots = np.einsum("lw,lwf->lf", centre.astype(np.float64), weights[..., :count].astype(np.float64))
            centre_sq = float(np.sum(centre.astype(np.float64) ** 2))

        def products(start, x):
            b = len(x)
            dots = np.matmul(x.transpose(1, 0, 2), weights)  # [L, b, F(+1)]: x_l·t_l (and x_l·c_l)
            if overlap:
                flat = x.reshape(b, -1)
                sq = np.einsum("ij,ij->i", flat, flat).astype(np.float64)
                numerators = dots[..., :count].astype(np.float64) + offsets[:, None, :]
                if centred:
                    sq += centre_sq - 2 * dots[..., count].sum(axis=0, dtype=np.float64)
                    numerators -= centre_dots[:, None, :]
                norms = np.maximum(np.sqrt(np.maximum(sq, 0.0)), 1e-12)
                per_layer[:, start : start + b] = (numerators / norms[None, :, None]).transpose(2, 1, 0)
            else:
                per_layer[:, start : start + b] = (dots + offsets[:, None, :]).transpose(2, 1, 0)

        map_summaries(store, kernels[0].reduction, products)
    return _scores(features, per_layer, options)


def _scores(features: list[Feature], per_layer, options: ScoreOptions) -> list[Scores]:
    """Per-layer sums [n, layers] of each feature -> Scores, with the z layer-norm where asked."""
    results = []
    for feature, layers in zip(features, per_layer):
        offset, scale = np.zeros(layers.shape[1]), np.ones(layers.shape[1])
        if options.method == "nait-pca" and options.layer_norm == "z":
            offset, scale = layers.mean(axis=0), np.maximum(layers.std(axis=0), 1e-12)
        if options.layers is not None:  # nait-pca on chosen layers: the others contribute nothing
            left_out = np.ones(layers.shape[1], bool)
            left_out[list(options.layers)] = False
            layers = layers.copy()
            layers[:, left_out], offset[left_out] = 0.0, 0.0
        results.append(Scores(feature.name, layers, offset, scale))
    return results


def explain(store: Store, rows, feature: Feature, options: ScoreOptions, scores: Scores | None = None) -> np.ndarray:
    """Per-neuron contributions [len(rows), layers, neurons] of these samples' scores (divided by the
    z layer-norm scale when `scores` used one); the method is prepared once for all rows."""
    sketch = store_sketch(store)
    if sketch:
        raise SketchError(
            f"per-neuron contributions need exact values, and {store.path} is a compact store "
            f"(sketch K={sketch.k}); explain rows of its exact sample instead"
        )
    if options.layers is not None:
        raise ValueError("per-neuron contributions are computed over every layer: leave out --layers to explain")
    kernel = Kernel(feature, store, options)
    contributions = kernel.per_neuron(summary(store, kernel.reduction, np.asarray(rows)))
    if scores is not None:
        contributions = contributions / scores.layer_scale[:, None]
    return contributions
