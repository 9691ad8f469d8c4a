"""Explanations: what a neuron does, which neurons several targets share, which targets a candidate resembles.

Everything the app's explanation views and `nait explain` show is computed here (no Streamlit):
- contrastive views: `pool_std`, `zscores`, `contrastive_top` (a record's neurons ranked by how far they
  sit above the pool's usual value for that neuron, not by raw size), `robust_limits` (colour limits that a
  few outliers cannot set), `template_mask` / `token_limit` (special and template tokens marked and kept
  out of the per-token colour scale), `share_note` (why a selection's share differs from the ratio);
- the neuron card: `logit_effects` (tokens the neuron's output weights promote and suppress, through the
  final norm's scale and the unembedding), `densities`, `top_records`, `firing_tokens` (a live pass);
- shared neurons: `marks` (each target's standardised difference from the pool), `shared_layers`,
  `shared_neurons`, `joint_candidates` (candidates jointly high for every target, with the shared neurons'
  share of their scores);
- `nearest_targets`: the target records closest to a candidate (centred cosine, as `overlap` scores).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import atomic
from .neuron_ids import neuron_id
from .scoring import Kernel, ScoreOptions, Scores, explain
from .selection import Cut, percentile, ranking
from .store import Store

if TYPE_CHECKING:  # the model code (and torch) loads only when a function needs a model
    from .models import LoadedModel

STD_FLOOR = 0.1  # a neuron's spread is at least this share of its layer's median spread (no z from a dead neuron)


# ---------------------------------------------------------------- contrastive views


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
    return f"{merge} of {len(masks)} targets at {each} = {kept / n:.1%} of the pool ({kept:,} records): {why}"


# ---------------------------------------------------------------- the neuron card

_FINAL_NORMS = (
    "model.norm",
    "transformer.ln_f",
    "gpt_neox.final_layer_norm",
    "model.decoder.final_layer_norm",
    "model.final_layernorm",
    "model.language_model.norm",
)


def _module(model, path: str):
    for part in path.split("."):
        model = getattr(model, part, None)
        if model is None:
            return None
    return model


def output_column(model: LoadedModel, layer: int, index: int):
    """The neuron's write direction in the residual stream: its column of the down projection [hidden]."""
    import torch

    module = model.neuron_modules[layer]
    weight = module.weight.detach()
    column = weight[index, :] if type(module).__name__ == "Conv1D" else weight[:, index]  # Conv1D: [in, out]
    return column.to(torch.float32)


@dataclass
class LogitEffects:
    promoted: list[tuple[str, float]]
    suppressed: list[tuple[str, float]]
    note: str


def logit_effects(model: LoadedModel, layer: int, index: int, k: int = 10) -> LogitEffects:
    """Tokens the neuron's output weights promote and suppress most: its down-projection column times the
    final norm's scale (RMSNorm: weight; Gemma: 1 + weight; LayerNorm: mean removed, then weight) through
    the unembedding. A direct-path reading: later layers and the norm's per-token scale are ignored."""
    import torch

    notes = ["direct path only (later layers ignored); the final norm's per-token scale is left out"]
    column = output_column(model, layer, index)
    net = model.model
    norm = next((m for m in (_module(net, p) for p in _FINAL_NORMS) if m is not None), None)
    if norm is None or getattr(norm, "weight", None) is None:
        notes.append("no final norm found for this architecture: the raw column goes through the unembedding")
    else:
        scale = norm.weight.detach().to(torch.float32)
        kind = type(norm).__name__
        if kind.startswith("Gemma"):
            scale = 1.0 + scale
        if isinstance(norm, torch.nn.LayerNorm):
            column = column - column.mean()
            if norm.bias is not None:
                notes.append("LayerNorm bias left out (it adds the same logits whatever the neuron does)")
        if scale.shape == column.shape:
            column = column * scale
        else:
            notes.append(f"final norm {kind} has an unexpected shape: its scale is left out")
    head = net.get_output_embeddings() if hasattr(net, "get_output_embeddings") else None
    if head is None or head.weight.shape[-1] != column.shape[0]:
        return LogitEffects(
            [],
            [],
            "this architecture does not map the neuron's output to the vocabulary directly "
            "(no unembedding of the residual width found)",
        )
    if getattr(getattr(net, "config", None), "tie_word_embeddings", False):
        notes.append("unembedding tied to the input embedding")
    logits = head.weight.detach().to(torch.float32) @ column.to(head.weight.device)
    if getattr(head, "bias", None) is not None:
        notes.append("unembedding bias left out")
    logits = logits.cpu().numpy()
    order = np.argsort(-logits, kind="stable")
    decode = model.tokenizer.decode
    promoted = [(decode([int(i)]), float(logits[i])) for i in order[:k]]
    suppressed = [(decode([int(i)]), float(logits[i])) for i in order[::-1][:k]]
    return LogitEffects(promoted, suppressed, "; ".join(notes))


def densities(groups: dict[str, np.ndarray], threshold: float) -> dict[str, float]:
    """Share of each group's samples where the neuron exceeds `threshold` (NaN for an empty group)."""
    return {name: float((v > threshold).mean()) if len(v) else float("nan") for name, v in groups.items()}


def top_records(groups: dict[str, tuple[np.ndarray, list]], k: int = 5) -> pd.DataFrame:
    """The k records of each group with the highest value: group, row, value, source, preview.
    groups: name -> (values [n], records)."""
    rows = []
    for name, (values, records) in groups.items():
        for i in ranking(values)[:k]:
            rows.append(
                {
                    "group": name,
                    "row": int(i),
                    "activation": float(values[i]),
                    "source": records[i].source,
                    "preview": records[i].preview(120),
                }
            )
    return pd.DataFrame(rows, columns=["group", "row", "activation", "source", "preview"])


@dataclass
class TokenActivations:
    tokens: list[str]
    values: np.ndarray  # one neuron's activation at each token
    template: np.ndarray  # bool: special or template token
    response_start: int

    def firing(self, k: int = 5) -> list[tuple[str, float]]:
        """The k text tokens (template excluded) where the neuron is most active."""
        order = [i for i in ranking(np.where(self.template, -np.inf, self.values)) if not self.template[i]]
        return [(self.tokens[i], float(self.values[i])) for i in order[:k]]


def layer_tokens(model: LoadedModel, record, layer: int, max_length: int = 1024):
    """One live forward pass (up to `layer`) of one record: (tokens, activations [pos, neurons], template
    mask [pos], response start)."""
    from .capture import token_activations
    from .data import Dataset
    from .tokens import tokenize

    tokens, acts, start = token_activations(model, record, layer, max_length)
    ids = tokenize(Dataset("one", [record]), model.tokenizer, max_length).input_ids[0]
    return tokens, acts, template_mask(model.tokenizer, ids), start


def live_summaries(model: LoadedModel, record, reductions=("mean",), max_length: int = 1024) -> dict[str, np.ndarray]:
    """One live forward pass of one record through every layer: its exact summaries {reduction: float32
    [layers, neurons]}, made by the capture's own reducer (`capture.capture_shard`) and rounded to float16
    as a store keeps them, but held in memory. What a compact pool's neuron views use for a record outside
    its exact sample."""
    from .capture import CaptureOptions, capture_shard
    from .data import Dataset
    from .tokens import tokenize

    reductions = tuple(dict.fromkeys(reductions))
    tokens = tokenize(Dataset("one", [record]), model.tokenizer, max_length)
    arrays = capture_shard(model, tokens, 0, CaptureOptions(reductions=reductions, max_length=max_length))
    return {r: arrays[r][0].astype(np.float32) for r in reductions}


def summary_contributions(
    x: dict[str, np.ndarray], store: Store, feature, options: ScoreOptions, scores: Scores | None = None
) -> np.ndarray:
    """Per-neuron contributions [layers, neurons] of one sample given by its exact summaries `x` ({reduction:
    [layers, neurons]}, e.g. `live_summaries`), prepared against the exact `store` (its mean centres
    `overlap`): `scoring.explain` for a sample that is in no store. Divided by the z layer-norm scale when
    `scores` used one."""
    kernel = Kernel(feature, store, options)
    parts = kernel.per_neuron(np.asarray(x[kernel.reduction], np.float32)[None])[0]
    return parts / scores.layer_scale[:, None] if scores is not None else parts


def firing_tokens(model: LoadedModel, record, layer: int, index: int, max_length: int = 1024) -> TokenActivations:
    """One neuron's value at every token of one record (a live pass), with the template tokens marked."""
    tokens, acts, mask, start = layer_tokens(model, record, layer, max_length)
    return TokenActivations(tokens, acts[:, index], mask, start)


@dataclass
class NeuronCard:
    neuron: str
    layer: int
    index: int
    effects: LogitEffects
    threshold: float
    threshold_text: str
    density: dict[str, float]
    top: pd.DataFrame
    firing: dict[tuple[str, int], TokenActivations] = field(default_factory=dict)  # (group, row) -> tokens

    def to_dict(self) -> dict:
        return {
            "neuron": self.neuron,
            "layer": self.layer,
            "index": self.index,
            "promotes": [{"token": t, "logit": v} for t, v in self.effects.promoted],
            "suppresses": [{"token": t, "logit": v} for t, v in self.effects.suppressed],
            "logit_note": self.effects.note,
            "threshold": {"text": self.threshold_text, "value": self.threshold},
            "density": self.density,
            "top_records": [
                {
                    **r,
                    "firing_tokens": [
                        {"token": t, "activation": v} for t, v in self.firing[(r["group"], r["row"])].firing()
                    ]
                    if (r["group"], r["row"]) in self.firing
                    else [],
                }
                for r in self.top.to_dict("records")
            ],
        }

    def text(self) -> str:
        lines = [
            f"neuron {self.neuron} (layer {self.layer}, index {self.index})",
            "promotes:   " + ", ".join(f"{t!r} {v:+.2f}" for t, v in self.effects.promoted),
            "suppresses: " + ", ".join(f"{t!r} {v:+.2f}" for t, v in self.effects.suppressed),
            f"  ({self.effects.note})",
            f"density (token-mean activation > {self.threshold:.3g}, threshold {self.threshold_text}):",
        ]
        lines += [f"  {name:<28} {share:6.1%}" for name, share in self.density.items()]
        lines.append("top-activating records:")
        for r in self.top.to_dict("records"):
            lines.append(f"  {r['group']:<20} row {r['row']:>6}  {r['activation']:8.3f}  {r['preview'][:70]!r}")
            fired = self.firing.get((r["group"], r["row"]))
            if fired is not None:
                lines.append("      fires on: " + ", ".join(f"{t!r} {v:.2f}" for t, v in fired.firing()))
        return "\n".join(lines)


def neuron_card(
    model: LoadedModel,
    layer: int,
    index: int,
    groups: dict[str, tuple[np.ndarray, list]],
    threshold: float,
    threshold_text: str,
    k: int = 3,
    live: int = 3,
    tokens_of=None,
) -> NeuronCard:
    """Everything about one neuron. groups: name -> (its token-mean value in every record, the records),
    the pool first; `live` of each group's top records get a live pass for their firing tokens
    (`tokens_of(group, row)` -> `layer_tokens` of that record, e.g. a cached one; default: a fresh pass)."""
    if not (0 <= layer < model.n_layers and 0 <= index < model.neurons_per_layer):
        raise ValueError(
            f"{neuron_id(layer, index)} is outside {model.n_layers} layers × {model.neurons_per_layer} neurons"
        )
    top = top_records(groups, k)
    firing = {}
    for r in top.to_dict("records"):
        if sum(1 for g, _ in firing if g == r["group"]) < live:
            record = groups[r["group"]][1][r["row"]]
            tokens, acts, mask, start = (
                tokens_of(r["group"], r["row"]) if tokens_of is not None else layer_tokens(model, record, layer)
            )
            firing[(r["group"], r["row"])] = TokenActivations(tokens, acts[:, index], mask, start)
    return NeuronCard(
        neuron_id(layer, index),
        layer,
        index,
        logit_effects(model, layer, index),
        threshold,
        threshold_text,
        densities({n: v for n, (v, _) in groups.items()}, threshold),
        top,
        firing,
    )


# ---------------------------------------------------------------- shared neurons


def marks(profile: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """What marks a target out [layers, neurons]: its expected activation minus the pool's, in pool
    standard deviations (so the few massive-activation neurons do not outrank everything)."""
    return zscores(profile, mean, std)


def shared_layers(marked: dict[str, np.ndarray], centred: dict[str, np.ndarray], k: int = 50) -> pd.DataFrame:
    """Per layer, how much the targets' features agree: the overlap of their top-k marking neurons
    (|∩| / |∪| over all targets, and |∩|), and the cosine of their profiles centred on the pool (mean over
    pairs, then each pair). marked / centred: name -> [layers, neurons]."""
    names = list(marked)
    n_layers = next(iter(marked.values())).shape[0]
    rows = []
    for layer in range(n_layers):
        sets = [set(np.argsort(-marked[n][layer], kind="stable")[:k].tolist()) for n in names]
        inter, union = set.intersection(*sets), set.union(*sets)
        row = {"layer": layer, f"top-{k} overlap": len(inter) / max(len(union), 1), f"shared in top {k}": len(inter)}
        cosines = {}
        for a, b in combinations(names, 2):
            x, y = centred[a][layer], centred[b][layer]
            cosines[f"cos {a} · {b}"] = float(x @ y / max(np.linalg.norm(x) * np.linalg.norm(y), 1e-12))
        row["centred cosine (mean)"] = float(np.mean(list(cosines.values()))) if cosines else float("nan")
        rows.append({**row, **cosines})
    return pd.DataFrame(rows)


MARK_Z = 1.0  # a neuron marks out a target when the target's mean is this many pool std above the pool's


def shared_neurons(marked: dict[str, np.ndarray], n: int = 50) -> pd.DataFrame:
    """The neurons that mark out every target: ranked by their smallest mark over the targets (z vs the
    pool), kept only where that is at least MARK_Z (a z of 0.25 is no mark: the list can be empty).
    Columns neuron, layer, index, joint z, z: <target>…"""
    joint = np.min(np.stack(list(marked.values())), axis=0)
    table = top_table(joint, n).rename(columns={"value": "joint z"})
    table = table[table["joint z"] >= MARK_Z].reset_index(drop=True)
    for name, z in marked.items():
        table[f"z: {name}"] = z[table["layer"], table["index"]]
    return table


def shared_share(
    store: Store,
    rows,
    features,
    scores: list[Scores],
    options: ScoreOptions,
    shared: pd.DataFrame,
    top: int = 3,
    with_scores: bool = True,
) -> pd.DataFrame:
    """For each row: each target's score (unless `with_scores` is off), the share of it that the shared
    neurons carry (their summed per-neuron contributions over the score), and the shared neurons that
    carry most (summed over targets)."""
    rows = [int(r) for r in rows]
    out = pd.DataFrame({"row": rows})
    if not rows:
        return out
    layers, index = shared["layer"].to_numpy(), shared["index"].to_numpy()
    carried = np.zeros((len(rows), len(shared)))
    for feature, score in zip(features, scores):
        parts = explain(store, rows, feature, options, score)  # [rows, layers, neurons]
        total = parts.reshape(len(rows), -1).sum(axis=1)
        mine = parts[:, layers, index]
        carried += mine
        if with_scores:
            out[f"score: {feature.name}"] = score.score[rows]
        out[f"shared share: {feature.name}"] = np.where(
            np.abs(total) > 1e-12, mine.sum(axis=1) / np.where(total == 0, 1, total), np.nan
        )
    names = shared["neuron"].to_numpy()
    out["carried by"] = [", ".join(names[j] for j in np.argsort(-c, kind="stable")[:top] if c[j] > 0) for c in carried]
    return out


def joint_candidates(scores: list[Scores], k: int = 20) -> np.ndarray:
    """Up to k candidates whose scores are jointly high for every target: ranked by their worst percentile
    over the targets (what the intersection merge orders by), and above the pool's mean score for each
    target (a record below the pool for one is not jointly high, however the others rank it)."""
    joint = np.min([percentile(s.score) for s in scores], axis=0)
    above = np.all([s.score > s.score.mean() for s in scores], axis=0)
    order = ranking(joint)
    return order[above[order]][:k]


@dataclass
class Shared:
    targets: list[str]
    layers: pd.DataFrame
    neurons: pd.DataFrame
    candidates: pd.DataFrame
    k: int

    def to_dict(self) -> dict:
        return {
            "targets": self.targets,
            "top_k_per_layer": self.k,
            "layers": self.layers.to_dict("records"),
            "neurons": self.neurons.to_dict("records"),
            "candidates": self.candidates.to_dict("records"),
        }

    def text(self) -> str:
        with pd.option_context(
            "display.width",
            200,
            "display.max_columns",
            20,
            "display.max_colwidth",
            60,
            "display.float_format",
            "{:.3f}".format,
        ):
            return "\n".join(
                [
                    f"shared neurons of {' × '.join(self.targets)}",
                    f"per layer (top {self.k} marking neurons of each target; cosine of profiles centred on the pool):",
                    self.layers.to_string(index=False),
                    "",
                    f"{len(self.neurons)} neurons mark out every target (smallest z over the targets "
                    f">= {MARK_Z:g}), best first:"
                    if len(self.neurons)
                    else f"no neuron marks out every target (none has z >= {MARK_Z:g} for all)",
                    self.neurons.head(20).to_string(index=False) if len(self.neurons) else "",
                    "",
                    "candidates jointly high for every target (above the pool's mean score for each), with the "
                    "shared neurons' share of each score:"
                    if len(self.candidates)
                    else "no candidate scores above the pool's mean for every target",
                    self.candidates.to_string(index=False) if len(self.candidates) else "",
                ]
            )


def shared_view(
    pool: Store,
    features,
    scores: list[Scores],
    options: ScoreOptions,
    records=None,
    k: int = 50,
    n: int = 50,
    candidates: int = 10,
) -> Shared:
    """The whole shared-neuron view for two or more targets (features with their pool scores)."""
    if len(features) < 2:
        raise ValueError("shared neurons need two targets or more")
    mean, std = pool.mean("mean"), pool_std(pool)
    marked = {f.name: marks(f.profile, mean, std) for f in features}
    centred = {f.name: f.profile - mean for f in features}
    neurons = shared_neurons(marked, n)
    rows = joint_candidates(scores, candidates)
    table = shared_share(pool, rows, features, scores, options, neurons)
    if records is not None:
        table["source"] = [records[r].source for r in rows]
        table["preview"] = [records[r].preview(80) for r in rows]
    return Shared([f.name for f in features], shared_layers(marked, centred, k), neurons, table, k)


# ---------------------------------------------------------------- nearest targets


def nearest_targets(pool: Store, row: int, targets: dict[str, Store], k: int = 5) -> pd.DataFrame:
    """The k target records whose token-mean profiles are closest to pool record `row`'s: cosine of both
    centred on the pool mean (the similarity `overlap` scores with). Columns target, row, similarity."""
    return nearest_targets_of(pool.rows("mean", [row])[0], pool.mean("mean"), targets, k)


def nearest_targets_of(x: np.ndarray, centre: np.ndarray, targets: dict[str, Store], k: int = 5) -> pd.DataFrame:
    """`nearest_targets` for a token-mean profile x [layers, neurons] centred on `centre` (the pool's mean)."""
    x = (np.asarray(x, np.float32) - centre).ravel()
    x /= max(float(np.linalg.norm(x)), 1e-12)
    parts = []
    for name, store in targets.items():
        t = store.rows("mean", np.arange(store.n_samples)).reshape(store.n_samples, -1) - centre.ravel()
        sims = t @ x / np.maximum(np.linalg.norm(t, axis=1), 1e-12)
        parts.append(pd.DataFrame({"target": name, "row": np.arange(store.n_samples), "similarity": sims}))
    table = pd.concat(parts, ignore_index=True)
    return table.sort_values("similarity", ascending=False, kind="stable").head(k).reset_index(drop=True)
