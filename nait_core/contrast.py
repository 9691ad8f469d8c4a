"""Contrastive views: a record's neurons against the pool's usual value for each, not by raw size.

`pool_std`, `zscores`, `contrastive_top` (a record's neurons ranked by how far they sit above the pool),
`robust_limits` (colour limits that a few outliers cannot set), `template_mask` / `token_limit` (special and
template tokens marked and kept out of the per-token colour scale), `share_note` (why a selection's share
differs from the ratio). Used by the neuron card and shared neurons (`explain`, `shared`) and the app.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import atomic
from .neuron_ids import neuron_id
from .selection import Cut
from .store import Store
from .words import counted

STD_FLOOR = 0.1  # a neuron's spread is at least this share of its layer's median spread (no z from a dead neuron)


def pool_std(store: Store, reduction: str = "mean") -> np.ndarray:
    """Per-neuron standard deviation over the pool [layers, neurons]; computed once, cached in the store
    folder beside `pool-mean-<reduction>.npy`."""
    cached = store.path / f"pool-std-{reduction}.npy"
    if cached.exists():
        return np.load(cached, allow_pickle=False)
    mean = store.mean(reduction).astype(np.float64)
    total = np.zeros_like(mean)
    for _, chunk in store.iter_chunks(reduction):
        total += ((chunk - mean) ** 2).sum(axis=0)
    std = np.sqrt(total / max(store.n_samples, 1)).astype(np.float32)
    atomic.save_npy(cached, std)
    return std


def floored(std: np.ndarray) -> np.ndarray:
    """The spread used to standardise: each neuron's std, floored at STD_FLOOR × its layer's median std."""
    floor = STD_FLOOR * np.median(std, axis=-1, keepdims=True)
    return np.maximum(std, np.maximum(floor, 1e-6))


def zscores(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """How many pool standard deviations each neuron of x [.., layers, neurons] sits above the pool mean."""
    return (x - mean) / floored(std)


def top_table(values: np.ndarray, k: int) -> pd.DataFrame:
    """The k largest cells of a [layers, neurons] array: neuron, layer, index, value (best first)."""
    flat = np.argsort(-values, axis=None, kind="stable")[:k]
    layers, neurons = np.unravel_index(flat, values.shape)
    return pd.DataFrame(
        {
            "neuron": [neuron_id(l, j) for l, j in zip(layers, neurons)],
            "layer": layers.astype(int),
            "index": neurons.astype(int),
            "value": values[layers, neurons],
        }
    )


def contrastive_top(x: np.ndarray, mean: np.ndarray, std: np.ndarray, k: int = 20) -> pd.DataFrame:
    """A record's k neurons that most set it apart from the pool: ranked by z = (x − pool mean) / pool std,
    with the raw activation and the pool mean beside it. x, mean, std: [layers, neurons]."""
    z = zscores(x, mean, std)
    table = top_table(z, k).rename(columns={"value": "z vs pool"})
    table["activation"] = x[table["layer"], table["index"]]
    table["pool mean"] = mean[table["layer"], table["index"]]
    return table


def robust_limits(z: np.ndarray, centre: float = 0.0, lower: float = 1.0, upper: float = 99.0) -> tuple[float, float]:
    """Colour limits for a diverging scale around `centre` that a few outliers cannot set: the larger
    distance from `centre` to the `lower` and `upper` percentiles of z, on both sides."""
    finite = z[np.isfinite(z)]
    if not len(finite):
        return centre - 1.0, centre + 1.0
    lo, hi = np.percentile(finite, [lower, upper])
    half = max(abs(hi - centre), abs(centre - lo)) or float(np.abs(finite - centre).max()) or 1.0
    return centre - half, centre + half


def template_mask(tokenizer, ids: list[int]) -> np.ndarray:
    """True for tokens that belong to the template, not to the text: special tokens (e.g. `<|im_start|>`),
    the first token (where attention sinks and massive activations sit), and a role header that follows a
    special token up to its line break (`user`, `\\n`)."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    special |= {
        i for i, t in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).items() if getattr(t, "special", False)
    }
    mask = np.zeros(len(ids), dtype=bool)
    header = 0  # tokens left in a role header after a special token
    for i, token in enumerate(ids):
        if token in special or i == 0:
            mask[i], header = True, 4
            continue
        if header:
            mask[i] = True
            header = 0 if "\n" in tokenizer.decode([token]) else header - 1
    return mask


def token_limit(values: np.ndarray, mask: np.ndarray) -> float:
    """The per-token colour scale's limit: the largest |value| among text tokens (template tokens are shown
    but cannot set it; they saturate instead)."""
    text = np.abs(values[~mask]) if (~mask).any() else np.abs(values)
    return float(text.max()) if len(text) and text.max() > 0 else 1.0


def share_note(masks: dict[str, np.ndarray], cut: Cut, merge: str) -> str:
    """Why the selected share differs from the per-target cut, in words, e.g. 'union of 3 targets at 10 %
    each = 28.8 % of the pool (288 records): the targets' picks overlap'. Empty when it does not differ."""
    if not masks:
        return ""
    n = len(next(iter(masks.values())))
    stacked = np.array(list(masks.values()))
    each = (
        f"{cut.ratio:.0%} each"
        if cut.ratio is not None
        else f"{cut.top:,} records each"
        if cut.top is not None
        else f"score ≥ {cut.min_score:g}"
    )
    if len(masks) == 1 or merge == "mean-z":
        return ""
    chosen = stacked.any(axis=0) if merge == "union" else stacked.all(axis=0)
    kept = int(chosen.sum())
    sizes = " + ".join(f"{int(m.sum()):,}" for m in stacked)
    if merge == "union":
        why = f"the targets pick {sizes} records, {int(stacked.sum()) - kept:,} of the picks are shared"
    else:
        why = f"only records picked for every target stay (the targets pick {sizes})"
    return f"{merge} of {len(masks)} targets at {each} = {kept / n:.1%} of the pool ({counted(kept, 'record')}): {why}"
