"""Page 3, Neuron explorer: one neuron's activations in candidates and targets, and its top samples."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from nait_core import explore
from nait_core.models import neuron_id

from . import charts
from .session import Studio, settings


def _pick(studio: Studio) -> tuple[int, int]:
    mode = st.radio("Neuron", ["top neurons of a feature", "any neuron"], horizontal=True, key="neurons_mode")
    if mode == "any neuron":
        cols = st.columns(2)
        layer = cols[0].number_input("Layer", 0, studio.model.n_layers - 1, 0, key="neurons_layer")
        index = cols[1].number_input("Index", 0, studio.model.neurons_per_layer - 1, 0, key="neurons_index")
        return int(layer), int(index)
    cols = st.columns([2, 1])
    target = cols[0].selectbox("Feature", studio.target_names, key="neurons_feature")
    count = cols[1].number_input("How many", 5, 200, 20, key="neurons_count")
    weights = explore.feature_weights(studio.features[studio.target_names.index(target)], studio.pool_mean)
    top = explore.top_neurons(weights, total=int(count))
    with st.expander(f"The {int(count)} neurons that most mark out {target} (expected activation minus the pool's)"):
        st.dataframe(top, hide_index=True, width="stretch")
    chosen = st.selectbox("Show neuron", list(top["neuron"]), key="neurons_pick")
    row = top[top["neuron"] == chosen].iloc[0]
    return int(row["layer"]), int(row["index"])


def _examples(records, values, k: int, label: str) -> pd.DataFrame:
    best = explore.top_samples(values, k)
    return pd.DataFrame({"row": best, label: [records[i].source for i in best], "activation": values[best],
                         "preview": [records[i].preview(160) for i in best]})


def render(studio: Studio) -> None:
    st.title("Neuron explorer")
    st.caption("Activations are token means per sample (what `overlap` and `jaccard` compare). A neuron fires in a "
               "sample when its activation exceeds the firing threshold set on Select & export.")
    layer, index = _pick(studio)
    name = neuron_id(layer, index)
    threshold_text = settings().options.fire_threshold
    threshold = float(studio.thresholds(threshold_text)[layer, index])
    selection = studio.selection()
    pool_values = studio.neuron_values(studio.pool_store, [(layer, index)])[:, 0]
    groups = {"candidates": pool_values, "selected candidates": pool_values[selection.selected]}
    chosen_on_map = st.session_state.get("map_filter")
    if chosen_on_map is not None:  # a box or lasso choice on the Overlap map
        groups["chosen on the map"] = pool_values[chosen_on_map]
    for target, store in zip(studio.target_names, studio.target_stores):
        groups[f"target {target}"] = studio.neuron_values(store, [(layer, index)])[:, 0]

    st.subheader(f"Neuron {name}")
    cols = st.columns(len(groups))
    for col, (group, values) in zip(cols, groups.items()):
        col.metric(f"Density: {group}", f"{(values > threshold).mean():.1%}" if len(values) else "–",
                   help=f"share of samples where {name} exceeds {threshold:.3g} (threshold {threshold_text})")
    st.plotly_chart(charts.value_histogram(groups, threshold, f"{name}: activation in candidates and targets",
                                           "token-mean activation"), key="neurons_hist")
    k = st.slider("Top-activating samples to list", 3, 50, 10, key="neurons_k")
    st.markdown(f"**Top-activating candidates** for {name}")
    st.dataframe(_examples(studio.pool.records, pool_values, k, "source"), hide_index=True, width="stretch")
    for target, dataset in zip(studio.target_names, studio.targets):
        st.markdown(f"**Top-activating targets: {target}**")
        st.dataframe(_examples(dataset.records, groups[f"target {target}"], k, "source"), hide_index=True, width="stretch")
