"""Explanations: what a neuron does, which neurons several targets share, which targets a candidate resembles.

Everything the app's explanation views and `nait explain` show is computed here or in the two modules this
one re-exports (no Streamlit): the contrastive views (`contrast.py`: z-scores against the pool, colour
limits, template tokens, share notes) and shared neurons and nearest targets (`shared.py`).
Here, the neuron card: `logit_effects` (tokens the neuron's output weights promote and suppress, through
the final norm's scale and the unembedding), `densities`, `top_records`, `firing_tokens` (a live pass), and
the live passes a compact pool's views need (`live_summaries`, `summary_contributions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .contrast import (  # noqa: F401 (re-exported: the app and `nait explain` import them from here)
    STD_FLOOR,
    contrastive_top,
    floored,
    pool_std,
    robust_limits,
    share_note,
    template_mask,
    token_limit,
    top_table,
    zscores,
)
from .neuron_ids import neuron_id
from .scores import Scores
from .scoring import Kernel, ScoreOptions
from .selection import ranking
from .shared import (  # noqa: F401 (re-exported)
    MARK_Z,
    Shared,
    joint_candidates,
    marks,
    nearest_targets,
    nearest_targets_of,
    shared_layers,
    shared_neurons,
    shared_share,
    shared_view,
)
from .store import Store

if TYPE_CHECKING:  # the model code (and torch) loads only when a function needs a model
    from .models import LoadedModel

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
    from .data import Dataset
    from .forward import token_activations
    from .tokens import tokenize

    tokens, acts, start = token_activations(model, record, layer, max_length)
    ids = tokenize(Dataset("one", [record]), model.tokenizer, max_length).input_ids[0]
    return tokens, acts, template_mask(model.tokenizer, ids), start


def live_summaries(model: LoadedModel, record, reductions=("mean",), max_length: int = 1024) -> dict[str, np.ndarray]:
    """One live forward pass of one record through every layer: its exact summaries {reduction: float32
    [layers, neurons]}, made by the capture's own reducer (`forward.capture_shard`) and rounded to float16
    as a store keeps them, but held in memory. What a compact pool's neuron views use for a record outside
    its exact sample."""
    from .data import Dataset
    from .forward import CaptureOptions, capture_shard
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
