"""Page 4, Overlap map: candidates and targets in activation space, and per-neuron firing overlap."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from nait_core import explore

from . import charts
from .session import Studio, settings


def points(studio: Studio) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(candidates, targets) on the map with what can colour them and what their hover shows."""
    coords = studio.map()
    selection = studio.selection()
    pool = coords[coords["group"] < 0]
    rows = pool["index"].to_numpy()
    candidates = pd.DataFrame({
        "x": pool["x"].to_numpy(), "y": pool["y"].to_numpy(), "row": rows,
        "score": selection.score[rows], "source": np.asarray(studio.sources)[rows],
        "selection": np.where(selection.selected[rows], "selected", "not selected"),
        "preview": [studio.pool.records[i].preview(100) for i in rows]})
    target_rows = coords[coords["group"] >= 0]
    targets = pd.DataFrame({
        "x": target_rows["x"], "y": target_rows["y"],
        "group": [studio.target_names[g] for g in target_rows["group"]],
        "preview": [studio.targets[g].records[i].preview(100) for g, i in zip(target_rows["group"], target_rows["index"])]})
    return candidates, targets


def render(studio: Studio) -> None:
    st.title("Overlap map")
    st.caption("Each point is a sample's token-mean activations over every neuron, reduced by PCA then UMAP "
               "(computed once per pool and targets, cached in the store folder). Close points fire alike.")
    candidates, targets = points(studio)
    n = len(studio.pool)
    if len(candidates) < n:
        st.info(f"Showing a random sample of {len(candidates):,} of the {n:,} candidates (and all target samples) "
                f"so the map stays fast.")
    color = st.radio("Colour candidates by", ["score", "source", "selection"], horizontal=True, key="map_color")
    fig = charts.overlap_map(candidates, targets, color, "Candidates (dots) and targets (crosses) in activation space",
                             ["row", "source", "score", "selection", "preview"])
    # One key per colouring: the traces (and so the selected points' curve numbers) differ between them.
    event = st.plotly_chart(fig, on_select="rerun", selection_mode=("box", "lasso"), key=f"map_chart_{color}")
    chosen = chosen_rows(event.selection.points if event else [], charts.point_rows(fig))
    _chosen(studio, chosen, candidates)
    _overlap(studio)


def chosen_rows(points: list[dict], rows_by_curve: list[np.ndarray]) -> list[int]:
    """The pool rows of the selected candidate points (targets and anything unknown left out). A point is
    found by its curve_number and point_index in our own arrays: its echoed customdata is not trusted."""
    chosen = set()
    for point in points:
        curve, index = point.get("curve_number"), point.get("point_index", point.get("point_number"))
        if not isinstance(curve, int) or not isinstance(index, int) or not 0 <= curve < len(rows_by_curve):
            continue
        rows = rows_by_curve[curve]
        if 0 <= index < len(rows) and rows[index] >= 0:
            chosen.add(int(rows[index]))
    return sorted(chosen)


def _use(rows: list[int] | None) -> None:
    """Set (or clear) the map filter in a button callback, so the rerun the click starts already shows it."""
    if rows is None:
        st.session_state.pop("map_filter", None)
    else:
        st.session_state["map_filter"] = rows


def _chosen(studio: Studio, chosen: list[int], candidates: pd.DataFrame) -> None:
    if chosen:
        st.markdown(f"**{len(chosen):,} candidates chosen** with the box or lasso")
        st.dataframe(candidates.set_index("row").loc[chosen, ["source", "score", "selection", "preview"]],
                     width="stretch", height=220)
        st.button(f"Use these {len(chosen):,} records on the other pages", key="map_use", on_click=_use, args=(chosen,),
                  help="filters the Sample explorer, and adds them as a group to the Neuron explorer and to "
                       "the per-neuron overlap below")
    else:
        st.caption("Draw a box or lasso on the map to choose candidates.")
    current = st.session_state.get("map_filter")
    if current is not None:
        st.caption(f"{len(current):,} records chosen here filter the Sample explorer and form a group on the "
                   f"Neuron explorer and in the overlap below.")
        st.button("Clear that filter", key="map_clear", on_click=_use, args=(None,))


def _overlap(studio: Studio) -> None:
    st.subheader("Per-neuron overlap")
    cols = st.columns([2, 1])
    target = cols[0].selectbox("Target feature", studio.target_names, key="map_feature")
    per_layer = cols[1].number_input("Top neurons per layer", 1, 5, 1, key="map_per_layer")
    g = studio.target_names.index(target)
    top = explore.top_neurons(explore.feature_weights(studio.features[g], studio.pool_mean), per_layer=int(per_layer))
    neurons = list(zip(top["layer"], top["index"]))
    threshold = settings().options.fire_threshold
    thresholds = studio.thresholds(threshold)[top["layer"], top["index"]]
    pool = studio.neuron_values(studio.pool_store, neurons)
    selected = studio.selection().selected
    groups = {f"targets ({target})": studio.neuron_values(studio.target_stores[g], neurons),
              "candidates": pool, "selected": pool[selected], "rest": pool[~selected]}
    if st.session_state.get("map_filter") is not None:
        groups["chosen on the map"] = pool[st.session_state["map_filter"]]
    shares = explore.firing_shares(groups, thresholds)
    shares.columns = top["neuron"]
    st.plotly_chart(charts.share_heatmap(shares, f"Share of samples firing the top neurons of {target} "
                                                 f"(threshold {threshold})"), key="map_shares")
