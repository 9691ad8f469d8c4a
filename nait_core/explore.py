"""Derived tables for exploring a pool against its targets: what the app shows, computed here.

Everything streams through the store or works on small arrays, so a 52,000-sample pool stays usable:
- `gather_neurons` / `firing_shares`: per-neuron firing shares of targets vs candidates, selected, rest;
- `top_neurons`, `top_firing`, `top_samples`: ranked neurons and samples;
- `reason`, `reasons`: why samples score as they do (through `scoring.explain`);
- `preview`: a record's text on one line, for tables and hovers;
- `method_agreement` (and `agreement_matrix`), `overlap_matrix`, `score_correlations`, `source_composition`: comparisons.
Nothing here imports Streamlit; bad arguments raise ordinary errors.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from .features import Feature
from .neuron_ids import neuron_id
from .scoring import ScoreOptions, Scores, explain
from .selection import agreement, percentile, ranking
from .sketch import store_sketch
from .store import Store

# ---------------------------------------------------------------- neurons


def feature_weights(feature: Feature, pool_mean: np.ndarray) -> np.ndarray:
    """What marks the target out [layers, neurons]: its expected activation minus the pool's."""
    return feature.profile - pool_mean


def top_neurons(weights: np.ndarray, per_layer: int = 1, total: int | None = None) -> pd.DataFrame:
    """The neurons with the largest weight: `per_layer` in every layer, or the `total` best overall."""
    if total is not None:
        flat = np.argsort(-weights, axis=None, kind="stable")[:total]
        layers, neurons = np.unravel_index(flat, weights.shape)
    else:
        neurons = np.argsort(-weights, axis=1, kind="stable")[:, :per_layer]
        layers = np.repeat(np.arange(weights.shape[0]), neurons.shape[1])
        neurons = neurons.ravel()
    return pd.DataFrame(
        {
            "neuron": [neuron_id(l, j) for l, j in zip(layers, neurons)],
            "layer": layers.astype(int),
            "index": neurons.astype(int),
            "weight": weights[layers, neurons],
        }
    )


def top_firing(x: np.ndarray, k: int = 20) -> pd.DataFrame:
    """A sample's k most active neurons: x [layers, neurons] -> neuron, layer, index, activation."""
    table = top_neurons(x, total=k)
    return table.rename(columns={"weight": "activation"})


def gather_neurons(store: Store, layers, neurons, reduction: str = "mean") -> np.ndarray:
    """The values [n_samples, k] of k neurons (layers[i], neurons[i])."""
    columns = [store.neuron_values(reduction, int(l), int(j)) for l, j in zip(layers, neurons)]
    return np.column_stack(columns) if columns else np.empty((store.n_samples, 0), dtype=np.float32)


def firing_top_neurons(weights: np.ndarray, profile: np.ndarray, thresholds: np.ndarray, per_layer: int = 1):
    """`top_neurons(weights, per_layer)` among the neurons the target fires (its expected activation above the
    neuron's threshold, so some of its samples do): a neuron no sample fires says nothing in a chart of firing
    shares. A layer with no such neuron has no row."""
    fires = profile > thresholds
    top = top_neurons(np.where(fires, weights, -np.inf), per_layer=per_layer)
    return top[fires[top["layer"], top["index"]]].reset_index(drop=True)


def firing_shares(groups: dict[str, np.ndarray], thresholds: np.ndarray) -> pd.DataFrame:
    """Share of each group's samples whose value exceeds each neuron's threshold.
    groups: name -> values [n_group, k]; thresholds [k]. Returns a table [groups × k] (NaN if empty)."""
    return pd.DataFrame(
        {
            name: (values > thresholds).mean(axis=0) if len(values) else np.full(len(thresholds), np.nan)
            for name, values in groups.items()
        }
    ).T


def top_samples(values: np.ndarray, k: int = 10) -> np.ndarray:
    """Indices of the k largest values, best first (ties by input order)."""
    return ranking(values)[:k]


# ---------------------------------------------------------------- comparisons

AGREEMENT_FIELDS = ("target", "method_a", "method_b", "top_k", "shared_top_k", "spearman")


def method_agreement(scores: dict[str, dict[str, np.ndarray]], ratio: float) -> pd.DataFrame:
    """For each target and each pair of methods: the size of their top `ratio` (`top_k`), the share of it
    they share (`shared_top_k`) and the Spearman rank correlation of their scores (`spearman`).
    scores: method name -> target name -> one score per candidate (a baseline gives every target the same).
    Columns: AGREEMENT_FIELDS (field names; the app labels them for display)."""
    rows = []
    for a, b in combinations(scores, 2):
        for target, score in scores[a].items():
            rows.append({"target": target, "method_a": a, "method_b": b, **agreement(score, scores[b][target], ratio)})
    return pd.DataFrame(rows, columns=list(AGREEMENT_FIELDS))


def agreement_matrix(table: pd.DataFrame, target: str, column: str = "shared_top_k") -> pd.DataFrame:
    """One target's rows of `method_agreement` as a symmetric methods × methods matrix (1 on the diagonal)."""
    rows = table[table["target"] == target]
    pairs = list(zip(rows["method_a"], rows["method_b"]))
    names = list(dict.fromkeys(name for pair in pairs for name in pair))
    matrix = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for (a, b), value in zip(pairs, rows[column]):
        matrix.loc[a, b] = matrix.loc[b, a] = value
    return matrix


def overlap_matrix(masks: dict[str, np.ndarray]) -> pd.DataFrame:
    """Share of the row target's selection also chosen for the column target."""
    names = list(masks)
    return pd.DataFrame(
        [[(masks[a] & masks[b]).sum() / max(masks[a].sum(), 1) for b in names] for a in names],
        index=names,
        columns=names,
    )


def score_correlations(per_target: dict[str, np.ndarray]) -> pd.DataFrame:
    """Spearman rank correlation between the targets' scores."""
    return pd.DataFrame(per_target).corr(method="spearman")


def source_composition(sources: list[str], masks: dict[str, np.ndarray]) -> pd.DataFrame:
    """Count of each source among each target's selection: rows targets, columns sources."""
    sources = np.asarray(sources)
    names = sorted(set(sources.tolist()))
    return pd.DataFrame(
        [[int((sources[m] == s).sum()) for s in names] for m in masks.values()], index=list(masks), columns=names
    )


def one_line(text: str, width: int) -> str:
    """`text` on one line (each run of spaces and line breaks as one space), cut to `width` characters."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def preview(record, width: int = 200) -> str:
    """A record's preview (`Record.preview`: its prompt, else its response) on one line: a table cell or a
    hover with a line break in it showed half a line."""
    return one_line(record.preview(1 << 30), width)


def share(part: float, total: float) -> str:
    """`part` as a share of the score `total` (e.g. "31%"); in scientific notation when the score is ~0."""
    return f"{part / total:.0%}" if abs(total) > 1e-9 else f"{part:+.2e}"


def reason(per_neuron: np.ndarray, per_layer: np.ndarray, k: int = 3) -> str:
    """Why a sample scores as it does, in words: its top contributing neurons (first: they differ between
    records, where the top layers are often the same) and layers, each as a share of the score.
    per_neuron [layers, neurons] (from scoring.explain), per_layer [layers] (Scores.layer_contributions)."""
    total = float(per_layer.sum())
    neurons = top_neurons(per_neuron, total=k)
    return (
        "neurons "
        + ", ".join(f"{n} {share(w, total)}" for n, w in zip(neurons["neuron"], neurons["weight"]))
        + "; "
        + layer_reason(per_layer, k)
    )


def row_layers(score: Scores, row: int) -> np.ndarray:
    """`score.layer_contributions[row]` without making the whole [n, layers] array (at a million samples
    that is a quarter of a second per row)."""
    return (score.per_layer[row] - score.layer_offset) / score.layer_scale


def totals(score: Scores) -> np.ndarray:
    """`score.score` as one matrix-vector product instead of a [n, layers] temporary."""
    return score.per_layer @ (1.0 / score.layer_scale) - float(np.sum(score.layer_offset / score.layer_scale))


def layer_reason(per_layer: np.ndarray, k: int = 3) -> str:
    """`reason` without neurons: the top contributing layers only (a compact pool's record outside its
    exact sample, whose per-layer contributions are estimated from the sketch)."""
    total = float(per_layer.sum())
    return "layers " + ", ".join(f"{l} {share(per_layer[l], total)}" for l in ranking(per_layer)[:k])


def positions(sample: np.ndarray, rows) -> np.ndarray:
    """Where each pool row sits in a sorted row sample (a compact pool's exact sample): -1 where it is not."""
    rows = np.asarray(rows, dtype=np.int64)
    if not len(sample):
        return np.full(len(rows), -1)
    at = np.minimum(np.searchsorted(sample, rows), len(sample) - 1)
    return np.where(sample[at] == rows, at, -1)


def subset_scores(scores: list[Scores], rows) -> list[Scores]:
    """The scores of these rows only (e.g. a compact pool's exact sample), with the pool's layer norm."""
    rows = np.asarray(rows)
    return [Scores(s.feature, s.per_layer[rows], s.layer_offset, s.layer_scale) for s in scores]


def reasons(
    store: Store,
    rows: list[int],
    features: list[Feature],
    scores: list[Scores],
    options: ScoreOptions,
    exact: tuple[Store, np.ndarray] | None = None,
) -> list[str]:
    """For each row: `reason` for the target where it ranks best (by percentile), named first.

    On a compact pool (`exact`: its exact sample store and the pool rows it holds, or None when it has
    none) per-neuron contributions come from the exact sample; a row outside it gets its layers only."""
    best = np.argmax([percentile(totals(s))[rows] for s in scores], axis=0)
    compact = store_sketch(store) is not None
    out = [""] * len(rows)
    for t, (feature, score) in enumerate(zip(features, scores)):
        mine = [i for i, b in enumerate(best) if b == t]
        if not mine:
            continue
        if compact:
            at = positions(exact[1], [rows[i] for i in mine]) if exact else np.full(len(mine), -1)
            inside = [j for j, p in enumerate(at) if p >= 0]
            parts = explain(exact[0], [int(at[j]) for j in inside], feature, options, score) if inside else []
            per_neuron = dict(zip(inside, parts))
            for j, i in enumerate(mine):
                layers = row_layers(score, rows[i])
                out[i] = f"{feature.name}: " + (
                    reason(per_neuron[j], layers)
                    if j in per_neuron
                    else layer_reason(layers) + " (no neurons: not in the exact sample)"
                )
            continue
        parts = explain(store, [rows[i] for i in mine], feature, options, score)
        for i, per_neuron in zip(mine, parts):
            out[i] = f"{feature.name}: " + reason(per_neuron, row_layers(score, rows[i]))
    return out
