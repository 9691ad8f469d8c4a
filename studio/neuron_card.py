"""Explanation views shared by the pages: the neuron card, a record's contrastive neurons, per-token
highlighting with template tokens marked, and a candidate's nearest target records. Computations are
`nait_core.explain`'s; this module draws them and caches the slow parts."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import streamlit as st

from nait_core import explain, explore
from nait_core import methods as registry
from nait_core.neuron_ids import neuron_id
from nait_core.scoring import ScoreOptions

from . import exactness, urlstate
from .session import Studio

CARD_RECORDS = 3  # top-activating pool records on a card
CARD_LIVE_TARGET = 1  # of each target's, how many get a live pass


@st.cache_resource(show_spinner="Pool spread per neuron (once per pool, then cached in the store)…", max_entries=8)
def _pool_std(store_path: str, _store) -> np.ndarray:
    return explain.pool_std(_store)


@st.cache_resource(show_spinner="One forward pass of this record…", max_entries=128)
def _layer_tokens(model_name: str, data_key: str, row: int, layer: int, _model, _record):
    return explain.layer_tokens(_model, _record, layer)


@st.cache_resource(show_spinner="Reading the neuron's output weights…", max_entries=256)
def _effects(model_name: str, layer: int, index: int, _model) -> explain.LogitEffects:
    return explain.logit_effects(_model, layer, index)


def pool_std(studio: Studio) -> np.ndarray:
    """Each neuron's spread over the pool (over the exact sample of a compact pool)."""
    return _pool_std(str(studio.neuron_store.path), studio.neuron_store)


def record_values(studio: Studio, row: int, options: ScoreOptions, key: str) -> tuple[dict | None, str]:
    """Pool record `row`'s exact summaries {reduction: [layers, neurons]} for the per-neuron views, and where
    they come from: the store (an exact pool), the exact sample of a compact pool, or, for a record outside
    it, one live forward pass when the user turns on the toggle `key` (else None). Raises NoExactSample."""
    needed = ("mean", options.reduction) if options.method == "nait-pca" else ("mean",)
    at = studio.exact_position(row)
    if at is not None:
        store = studio.neuron_store
        values = {r: store.rows(r, [at])[0].astype(np.float32) for r in dict.fromkeys(needed) if _stored(store, r)}
        where = f"exact, from {exactness.sample_text(studio)} (its row {at})" if studio.compact else ""
        return values, where
    st.info(
        f"Record {row} is not in {exactness.sample_text(studio)}: its neuron values need one live forward "
        f"pass of the model (loads the model the first time)."
    )
    if not st.toggle("Compute its neuron values (live forward pass)", key=key):
        return None, ""
    return studio.live_summaries(row, needed), "exact, from a live forward pass of the model (not stored)"


def _stored(store, reduction: str) -> bool:
    return reduction in store.reductions or (reduction == "last-first" and {"last", "first"} <= set(store.reductions))


def layer_tokens(studio: Studio, group: str, row: int, layer: int):
    """(tokens, activations [pos, neurons], template mask, response start) of a pool ('pool') or target
    record, from one live pass (cached per record and layer)."""
    if group == "pool":
        dataset, key = studio.pool, str(studio.pool_store.path)
    else:
        g = studio.target_names.index(group)
        dataset, key = studio.targets[g], str(studio.target_stores[g].path)
    return _layer_tokens(studio.model.name, key, int(row), int(layer), studio.model, dataset.records[int(row)])


def highlight(
    tokens: list[str],
    values: np.ndarray,
    response_start: int,
    template: np.ndarray | None = None,
    limit: float | None = None,
) -> str:
    """Tokens as HTML spans shaded by activation (red positive, blue negative), the response underlined.
    Template and special tokens are boxed and do not set the colour scale (they saturate instead)."""
    template = np.zeros(len(tokens), bool) if template is None else template
    limit = limit or explain.token_limit(np.asarray(values), template)
    spans = []
    for i, (token, value) in enumerate(zip(tokens, values)):
        alpha = min(abs(value) / limit, 1.0)
        colour = f"rgba(220,40,40,{alpha:.2f})" if value > 0 else f"rgba(40,80,220,{alpha:.2f})"
        style = f"background:{colour};" + ("border-bottom:2px solid #2a2;" if i >= response_start else "")
        if template[i]:
            style += "outline:1px dashed #888;color:#777;"
        tip = f"{token!r}: {value:.3f}" + (" (template token: not on the colour scale)" if template[i] else "")
        spans.append(f'<span title="{html.escape(tip)}" style="{style}">{html.escape(token)}</span>')
    return (
        '<div style="font-family:monospace;white-space:pre-wrap;line-height:1.7;max-height:320px;overflow:auto">'
        + "".join(spans)
        + "</div>"
    )


def scale_caption(values: np.ndarray, template: np.ndarray) -> str:
    limit = explain.token_limit(np.asarray(values), template)
    outside = np.asarray(values)[template]
    return (
        f"Colour scale ±{limit:.3g} set by the text tokens; {int(template.sum())} template/special tokens are boxed"
        + (f" (largest |value| there {np.abs(outside).max():.3g}, shown saturated)" if len(outside) else "")
        + "; the response is underlined."
    )


def token_chips(pairs: list[tuple[str, float]], colour: str) -> str:
    return " ".join(
        f'<code style="background:{colour};padding:1px 4px;margin:1px;display:inline-block" '
        f'title="{v:+.3f}">{html.escape(repr(t)[1:-1])}</code>'
        for t, v in pairs
    )


def neuron_link_column(label: str = "neuron") -> st.column_config.LinkColumn:
    return st.column_config.LinkColumn(
        label, display_text=r"neuron=(L\d+\.N\d+)", help="opens the neuron's card on the Neuron explorer"
    )


def record_link_column(label: str = "row") -> st.column_config.LinkColumn:
    return st.column_config.LinkColumn(label, display_text=r"row=(\d+)", help="opens the record on the Sample explorer")


def target_link_column(label: str = "row") -> st.column_config.LinkColumn:
    return st.column_config.LinkColumn(
        label, display_text=r"trow=(\d+)", help="opens the target record on the Sample explorer"
    )


def with_neuron_links(table: pd.DataFrame, column: str = "neuron") -> pd.DataFrame:
    """The table with its neuron ids turned into links to the Neuron explorer (shown as the ids)."""
    return table.assign(**{column: [urlstate.neuron_link(n) for n in table[column]]})


def with_record_links(table: pd.DataFrame, column: str = "row") -> pd.DataFrame:
    return table.assign(**{column: [urlstate.record_link(r) for r in table[column]]})


# ---------------------------------------------------------------- the card


def card(studio: Studio, layer: int, index: int, threshold_text: str, key: str) -> None:
    """The neuron card: promoted and suppressed tokens, density in the pool and each target (firing above
    `threshold_text`, a fire threshold as Select & export sets it), and, when the user turns on the toggle
    `key`_live, its top-activating records with the tokens that fire it highlighted (live passes, cached)."""
    name = neuron_id(layer, index)
    if not (0 <= layer < studio.model.n_layers and 0 <= index < studio.model.neurons_per_layer):
        st.error(f"{name} is outside {studio.model.n_layers} layers × {studio.model.neurons_per_layer} neurons")
        return
    effects = _effects(studio.model.name, layer, index, studio.model)
    st.markdown(f"**What {name} writes** (its output weights through the final norm and the unembedding)")
    if effects.promoted:
        st.html(
            f"<div>promotes {token_chips(effects.promoted, '#e8f5e9')}</div>"
            f"<div>suppresses {token_chips(effects.suppressed, '#fdecea')}</div>"
        )
    st.caption(effects.note)
    threshold = float(studio.thresholds(threshold_text)[layer, index])
    groups = {"pool": (studio.pool_neuron_values([(layer, index)])[:, 0], studio.neuron_records)}
    for target, store, dataset in zip(studio.target_names, studio.target_stores, studio.targets):
        groups[target] = (studio.neuron_values(store, [(layer, index)])[:, 0], dataset.records)
    density = explain.densities({g: v for g, (v, _) in groups.items()}, threshold)
    st.markdown(
        f"**Firing density** (share of records whose token-mean activation exceeds {threshold:.3g}, "
        f"threshold {threshold_text}): " + " · ".join(f"{g} {d:.0%}" for g, d in density.items())
    )
    if studio.compact:
        st.caption(f"Pool values{exactness.label(studio, True)} over {exactness.sample_text(studio)}.")
    # Off by default: a pass per record took 1-3 s each on a CPU, most of a neuron switch (issue 25).
    urlstate.follow(urlstate.Choice("live", f"{key}_live", False, urlstate.flag))
    live = st.toggle(
        f"Show the tokens that fire it in its top records ({CARD_RECORDS} pool records and {CARD_LIVE_TARGET} per "
        f"target: a live forward pass each, seconds on a CPU)",
        key=f"{key}_live",
    )
    urlstate.put("live", "1" if live else None)
    if not live:
        return
    top = explain.top_records(groups, CARD_RECORDS)
    top = top[(top["group"] == "pool") | (top.groupby("group").cumcount() < CARD_LIVE_TARGET)].copy()
    pool = top["group"] == "pool"
    top.loc[pool, "row"] = studio.neuron_rows[top.loc[pool, "row"].to_numpy()]  # pool rows (exact sample's)
    st.markdown(f"**Top-activating records** with the tokens that fire {name} (a live pass over each)")
    for r in top.to_dict("records"):
        tokens, acts, mask, start = layer_tokens(studio, r["group"], r["row"], layer)
        where = (
            f"[pool row {r['row']}]({urlstate.record_link(r['row'])})"
            if r["group"] == "pool"
            else f"[target {r['group']} record {r['row']}]({urlstate.target_link(r['group'], r['row'])})"
        )
        st.markdown(f"{where} · {r['source']} · token-mean activation {r['activation']:.3f}")
        st.html(highlight(tokens, acts[:, index], start, mask))


# ---------------------------------------------------------------- a record's contrastive neurons


@st.cache_resource(show_spinner="Ranking this record's neurons against the pool…", max_entries=64)
def _contrastive(store_path: str, row: int, k: int, feature_keys: tuple, options_key: str, _studio, _options, _x):
    from nait_core.scoring import explain as contributions

    table = explain.contrastive_top(_x["mean"], _studio.pool_mean, pool_std(_studio), k)
    if not splits(_options.method):  # rds, embed, overlap-max…: no shares to add, no makers to list
        return table, None
    at, store = _studio.exact_position(row), _studio.neuron_store
    makers = []
    for feature, score in zip(_studio.features, _studio.scores(_options)):
        if at is not None:
            parts = contributions(store, [at], feature, _options, score)[0]
        else:  # a compact pool's record outside its exact sample: its live summaries
            parts = explain.summary_contributions(_x, store, feature, _options, score)
        total = float(parts.sum())
        # a share of the score, not a raw part (1e-7 beside a layer carrying 60% of it said nothing)
        table[f"share of score: {feature.name}"] = (
            parts[table["layer"], table["index"]] / total if abs(total) > 1e-9 else np.nan
        )
        makers.append({"target": feature.name, "score": total, "made by": explore.reason(parts, parts.sum(axis=1))})
    return table, pd.DataFrame(makers)


def contrastive(
    studio: Studio, row: int, options: ScoreOptions, x: dict, k: int = 20
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Record `row`'s k neurons that most set it apart from the pool (z vs the pool's distribution), with
    each one's share of the record's score for every target (scored by `options`; cached); and, per target,
    the record's score and the neurons and layers that make it (as shares). `x`: its exact summaries
    (`record_values`). A method whose score does not split into neurons (`splits`): no shares, makers None."""
    keys = tuple(f.meta["target_hash"] + f.name for f in studio.features)
    table, makers = _contrastive(str(studio.pool_store.path), int(row), k, keys, repr(options), studio, options, x)
    return table.copy(), makers


def splits(method: str) -> bool:
    """Whether `method`'s score splits into per-neuron contributions (the registry's `explains`)."""
    return registry.get(method).explains


def unsplit_note(method: str) -> str:
    """Why a view shows no neuron's share of a `method` score (rds, embed, overlap-max, the layer variants)."""
    m = registry.get(method)
    return (
        f"`{m.name}` ({m.help}): its score does not split into neurons, so no neuron's share of it is shown; "
        f" {' or '.join(registry.names(explains=True))} show which neurons carry a score."
    )


def nearest(studio: Studio, row: int, x: np.ndarray, k: int = 5) -> None:
    """The target records whose profiles are closest to pool record `row`'s (token means x), as text."""
    targets = dict(zip(studio.target_names, studio.target_stores))
    table = explain.nearest_targets_of(x, studio.pool_mean, targets, k)
    st.markdown("**Nearest target records** (cosine of token-mean profiles centred on the pool, as `overlap` scores)")
    for r in table.to_dict("records"):
        record = studio.targets[studio.target_names.index(r["target"])].records[int(r["row"])]
        st.markdown(
            f"- **{r['target']}** record {int(r['row'])} · similarity {r['similarity']:+.3f}: "
            f"{html.escape(explore.preview(record, 240))}"
        )
