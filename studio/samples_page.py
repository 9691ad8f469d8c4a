"""Page 2, Sample explorer: search and filter the pool, then see why one sample scores as it does."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd
import streamlit as st

from nait_core import explore
from nait_core.models import parse_neuron_id

from . import charts
from .session import Studio

TABLE_ROWS = 500


def pool_table(studio: Studio) -> pd.DataFrame:
    """Records with their current combined score, rank, selection and per-target scores."""
    selection = studio.selection()
    table = studio.records_table.assign(score=selection.score, rank=selection.rank, selected=selection.selected)
    for name, values in selection.per_target.items():
        table[f"score: {name}"] = values
    return table


def _filters(studio: Studio, table: pd.DataFrame) -> pd.DataFrame:
    cols = st.columns([3, 2, 2])
    query = cols[0].text_input("Search text", key="samples_query", placeholder="words in the prompt or response")
    sources = sorted(table["source"].unique())
    chosen = cols[1].multiselect("Source", sources, key="samples_sources", placeholder="all sources")
    status = cols[2].radio("Selection", ["all", "selected", "not selected"], horizontal=True, key="samples_status")
    low, high = float(np.nanmin(table["score"])), float(np.nanmax(table["score"]))
    kept = st.session_state.get("samples_score")
    if kept is not None and not (low <= kept[0] <= kept[1] <= high):
        del st.session_state["samples_score"]  # the scores changed under the old range
    if high > low:
        low, high = st.slider("Combined score", low, high, (low, high), key="samples_score")
    mask = table["score"].between(low, high)
    if query.strip():
        mask &= table["text"].str.contains(query.strip().lower(), regex=False)
    if chosen:
        mask &= table["source"].isin(chosen)
    if status != "all":
        mask &= table["selected"] == (status == "selected")
    chosen_on_map = st.session_state.get("map_filter")
    if chosen_on_map is not None and st.checkbox(f"Only the {len(chosen_on_map):,} points chosen on the map",
                                                 value=True, key="samples_map_only"):
        mask &= table.index.isin(chosen_on_map)
    return table[mask].sort_values("rank")


def render(studio: Studio) -> None:
    st.title("Sample explorer")
    st.caption("Filter the candidate pool; pick a row (or type its number) to see which neurons it fires and "
               "which layers make its score. The score is the one set on Select & export.")
    found = _filters(studio, pool_table(studio))
    st.write(f"**{len(found):,}** of {len(studio.pool):,} records match"
             + (f"; the {TABLE_ROWS} best ranked are listed" if len(found) > TABLE_ROWS else ""))
    shown = found.head(TABLE_ROWS).drop(columns="text")
    event = st.dataframe(shown, width="stretch", height=280, on_select="rerun", selection_mode="single-row",
                         key="samples_table", column_config={"preview": st.column_config.TextColumn(width="large")})
    picked = [int(shown.index[i]) for i in (event.selection.rows if event else []) if i < len(shown)]
    if picked and picked != st.session_state.get("samples_picked"):  # a new pick in the table
        st.session_state["samples_row"] = picked[0]
    elif "samples_row" not in st.session_state and len(found):
        st.session_state["samples_row"] = int(found.index[0])
    st.session_state["samples_picked"] = picked
    row = st.number_input("Pool row", 0, len(studio.pool) - 1, key="samples_row")
    sample(studio, int(row))


def sample(studio: Studio, row: int) -> None:
    """Everything about one pool record."""
    record = studio.pool.records[row]
    st.subheader(f"Record {row} · {record.source}")
    st.caption(record.where)
    for turn in record.conversation:
        st.markdown(f"**{turn['role']}**")
        st.text(turn["content"][:4000] + ("…" if len(turn["content"]) > 4000 else ""))

    x = studio.pool_store.rows("mean", [row])[0]  # [layers, neurons], token mean
    st.markdown("**Top-firing neurons** (token-mean activation) and each one's weight in every target feature "
                "(the target's expected activation minus the pool's)")
    top = explore.top_firing(x, 20)
    for feature in studio.features:
        weights = explore.feature_weights(feature, studio.pool_mean)
        top[f"weight: {feature.name}"] = weights[top["layer"], top["index"]]
    st.dataframe(top, hide_index=True, width="stretch")

    cols = st.columns(2)
    target = cols[0].selectbox("Target feature", studio.target_names, key="samples_target")
    view = cols[1].radio("Heatmap", ["sample − target expected", "sample", "target expected"], horizontal=True,
                         key="samples_view")
    profile = studio.features[studio.target_names.index(target)].profile
    z = {"sample": x, "target expected": profile}.get(view, x - profile)
    st.plotly_chart(charts.layer_neuron_heatmap(z, f"Record {row}: {view} ({target}), every layer and neuron",
                                                "activation"), key="samples_heatmap")
    contributions = {s.feature: s.layer_contributions[row] for s in studio.scores()}
    st.plotly_chart(charts.layer_contributions(contributions, f"Record {row}: each layer's share of its score"),
                    key="samples_layers")
    _tokens(studio, row, top)


def _tokens(studio: Studio, row: int, top: pd.DataFrame) -> None:
    st.markdown("**Per-token activation** of one neuron (one live forward pass of this record)")
    cols = st.columns([2, 2, 1])
    neuron = cols[0].selectbox("Neuron", list(top["neuron"]), key="samples_neuron", help="one of its top-firing neurons")
    neuron = cols[1].text_input("…or any neuron id", key="samples_neuron_id", placeholder="e.g. L12.N345") or neuron
    if not cols[2].toggle("Show", key="samples_live"):
        return
    try:
        layer, index = parse_neuron_id(neuron)
        if not (0 <= layer < studio.model.n_layers and 0 <= index < studio.model.neurons_per_layer):
            raise ValueError(f"{neuron} is outside {studio.model.n_layers} layers × {studio.model.neurons_per_layer} neurons")
    except ValueError as error:
        st.error(str(error))
        return
    tokens, acts, start = studio.token_activations(row, layer)
    values = acts[:, index]
    st.html(highlight(tokens, values, start))
    st.plotly_chart(charts.token_activation_line(tokens, values, start, f"{neuron} at each token of record {row}"),
                    key="samples_token_line")


def highlight(tokens: list[str], values: np.ndarray, response_start: int) -> str:
    """Tokens as HTML spans shaded by activation (red positive, blue negative); the response underlined."""
    limit = float(np.abs(values).max()) or 1.0
    spans = []
    for i, (token, value) in enumerate(zip(tokens, values)):
        alpha = min(abs(value) / limit, 1.0)
        colour = f"rgba(220,40,40,{alpha:.2f})" if value > 0 else f"rgba(40,80,220,{alpha:.2f})"
        underline = "border-bottom:2px solid #2a2;" if i >= response_start else ""
        spans.append(f'<span title="{html.escape(repr(token))}: {value:.3f}" style="background:{colour};{underline}">'
                     f"{html.escape(token)}</span>")
    return ('<div style="font-family:monospace;white-space:pre-wrap;line-height:1.7;max-height:320px;overflow:auto">'
            + "".join(spans) + "</div>")
