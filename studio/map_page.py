"""Page 4, Overlap map: candidates and targets in activation space, and per-neuron firing overlap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from nait_core import explore

from . import charts, exactness, neuron_card, urlstate
from .session import Settings, Studio, combined_name, settings

COLOURS = ["score", "source", "selection"]
NEAREST = 10


def points(studio: Studio, current: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(candidates, targets) on the map with what can colour them (under `current` settings) and what their
    hover shows."""
    coords = studio.map()
    selection = studio.selection(current)
    pool = coords[coords["group"] < 0]
    rows = pool["index"].to_numpy()
    candidates = pd.DataFrame(
        {
            "x": pool["x"].to_numpy(),
            "y": pool["y"].to_numpy(),
            "row": rows,
            "score": selection.score[rows],
            "source": [studio.sources[i] for i in rows],  # not the whole list as an array (1M: 0.2 s)
            "selection": np.where(selection.selected[rows], "selected", "not selected"),
            "preview": [explore.preview(studio.pool.records[i], 100) for i in rows],
        }
    )
    target_rows = coords[coords["group"] >= 0]
    targets = pd.DataFrame(
        {
            "x": target_rows["x"],
            "y": target_rows["y"],
            "group": [studio.target_names[g] for g in target_rows["group"]],
            "preview": [
                explore.preview(studio.targets[g].records[i], 100)
                for g, i in zip(target_rows["group"], target_rows["index"])
            ],
        }
    )
    return candidates, targets


def render(studio: Studio) -> None:
    st.title("Overlap map")
    st.caption(
        "Each point is a sample's token-mean activations over every neuron, reduced by PCA then UMAP "
        "(computed once per pool and targets, cached in the store folder). Close points fire alike."
    )
    exactness.note(
        studio,
        "the map's positions and the per-neuron overlap",
        "the scores and selection that colour the points",
    )
    current = settings()
    candidates, targets = points(studio, current)
    n = len(studio.pool)
    if studio.compact:
        st.info(
            f"Map of {exactness.sample_text(studio)} (exact values; {len(candidates):,} of the {n:,} candidates) "
            f"and every target sample: a compact pool keeps no per-neuron values for the rest."
        )
    elif len(candidates) < n:
        st.info(
            f"Showing a random sample of {len(candidates):,} of the {n:,} candidates (and all target samples) "
            f"so the map stays fast."
        )
    urlstate.follow(
        urlstate.Choice("color", "map_color", COLOURS[0], urlstate.one_of(COLOURS)),
        urlstate.Choice("row", "map_row", None, urlstate.number_in(0, n - 1)),
        urlstate.Choice("box", "map_box", None, lambda v: urlstate.rows_from(v, n)),
    )
    if urlstate.new_url():  # a new chart: the browser's old box or lasso is not this URL's
        st.session_state["map_chart_version"] = st.session_state.get("map_chart_version", 0) + 1
        st.session_state["map_drawn"] = False
    cols = st.columns([3, 1])
    color = cols[0].radio("Colour candidates by", COLOURS, horizontal=True, key="map_color")
    row = cols[1].number_input(
        "Mark record",
        0,
        n - 1,
        key="map_row",
        placeholder="pool row",
        help="marks this pool record on the map with a star (a link `map?row=N` does too)",
    )
    urlstate.put("color", color, COLOURS[0])
    urlstate.put("row", row)
    if row is not None and row not in set(candidates["row"]):
        st.caption(f"Record {row} is not among the candidates shown on the map.")
    fig = charts.overlap_map(
        candidates,
        targets,
        color,
        "Candidates (dots) and targets (crosses) in activation space",
        ["row", "source", "score", "selection", "preview"],
        highlight=row,
        labels={"score": combined_name(settings(), len(studio.features))},
    )
    # One key per colouring (the traces, and so the selected points' curve numbers, differ between them) and
    # per URL followed.
    key = f"map_chart_{color}_{st.session_state.get('map_chart_version', 0)}"
    event = st.plotly_chart(fig, on_select="rerun", selection_mode=("box", "lasso"), key=key)
    drawn = chosen_rows(event.selection.points if event else [], charts.point_rows(fig))
    if drawn or st.session_state.get("map_drawn"):  # a box or lasso drawn, or one just cleared
        st.session_state["map_box"] = drawn or None
    st.session_state["map_drawn"] = bool(drawn)
    chosen = st.session_state.get("map_box") or []
    urlstate.put("box", urlstate.rows_text(chosen))
    _chosen(studio, chosen, candidates, row)
    _overlap(studio, current)


def nearest(candidates: pd.DataFrame, row: int, k: int = NEAREST) -> list[int]:
    """Pool row `row` and the `k` candidates closest to it on the map (2-D distance), nearest first."""
    xy = candidates[["x", "y"]].to_numpy()
    at = candidates["row"].to_numpy() == row
    if not at.any():
        return []
    distance = np.linalg.norm(xy - xy[at][0], axis=1)
    return [int(r) for r in candidates["row"].to_numpy()[np.argsort(distance, kind="stable")[: k + 1]]]


def linked(candidates: pd.DataFrame, rows: list[int], score: str = "score") -> pd.DataFrame:
    """These candidates as a table whose `row` opens the record on the Sample explorer and whose `map` column
    marks it on this map; the score column named `score` (what it is: `combined_name`)."""
    table = candidates.set_index("row").loc[rows, ["source", "score", "selection", "preview"]].reset_index()
    table = table.rename(columns={"score": score})
    table.insert(1, "map", [urlstate.map_link(r) for r in rows])
    return neuron_card.with_record_links(table)


LINKS = {
    "row": neuron_card.record_link_column(),
    "map": st.column_config.LinkColumn("map", display_text="mark", help="marks this record on the map"),
    "preview": st.column_config.TextColumn(width="large"),
}


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


def _chosen(studio: Studio, chosen: list[int], candidates: pd.DataFrame, row: int | None) -> None:
    if chosen:
        st.markdown(
            f"**{len(chosen):,} candidates chosen** with the box or lasso (click a row number to open the "
            f"record on the Sample explorer)"
        )
        st.dataframe(
            linked(candidates, chosen, combined_name(settings(), len(studio.features))),
            hide_index=True,
            width="stretch",
            height=220,
            key="map_chosen",
            column_config=LINKS,
        )
        st.button(
            f"Use these {len(chosen):,} records on the other pages",
            key="map_use",
            on_click=_use,
            args=(chosen,),
            help="filters the Sample explorer, and adds them as a group to the Neuron explorer and to "
            "the per-neuron overlap below",
        )
    else:
        st.caption("Draw a box or lasso on the map to choose candidates.")
        around = nearest(candidates, row) if row is not None else []
        if around:  # nothing chosen: the marked record and its neighbours on the map say what its region holds
            st.markdown(
                f"**Record {row} and its {len(around) - 1} nearest candidates on the map** (click a row "
                f"number to open the record on the Sample explorer)"
            )
            st.dataframe(
                linked(candidates, around, combined_name(settings(), len(studio.features))),
                hide_index=True,
                width="stretch",
                height=220,
                key="map_nearest",
                column_config=LINKS,
            )
    current = st.session_state.get("map_filter")
    if current is not None:
        st.caption(
            f"{len(current):,} records chosen here filter the Sample explorer and form a group on the "
            f"Neuron explorer and in the overlap below."
        )
        st.button("Clear that filter", key="map_clear", on_click=_use, args=(None,))


def _overlap(studio: Studio, current: Settings) -> None:
    st.subheader("Per-neuron overlap")
    cols = st.columns([2, 1])
    names = studio.target_names
    urlstate.follow(
        urlstate.Choice("target", "map_feature", names[0], urlstate.one_of(names)),
        urlstate.Choice("per_layer", "map_per_layer", 1, urlstate.number_in(1, 5)),
    )
    target = cols[0].selectbox("Target feature", names, key="map_feature")
    per_layer = cols[1].number_input("Top neurons per layer", 1, 5, key="map_per_layer")
    urlstate.put("target", target, names[0])
    urlstate.put("per_layer", int(per_layer), 1)
    g = studio.target_names.index(target)
    threshold = current.options.fire_threshold
    feature = studio.features[g]
    every = studio.thresholds(threshold)
    top = explore.firing_top_neurons(
        explore.feature_weights(feature, studio.pool_mean), feature.profile, every, per_layer=int(per_layer)
    )
    if top.empty:
        st.info(f"No neuron of {target} fires at threshold {threshold}: lower the threshold on Select & export.")
        return
    neurons = list(zip(top["layer"], top["index"]))
    thresholds = every[top["layer"], top["index"]]
    pool = studio.pool_neuron_values(neurons)  # a compact pool: its exact sample's
    selected = studio.selection(current).selected[studio.neuron_rows]
    groups = {
        f"targets ({target})": studio.neuron_values(studio.target_stores[g], neurons),
        "candidates": pool,
        "selected": pool[selected],
        "rest": pool[~selected],
    }
    if st.session_state.get("map_filter") is not None:
        groups["chosen on the map"] = pool[studio.exact_positions(st.session_state["map_filter"])]
    shares = explore.firing_shares(groups, thresholds)
    shares.columns = top["neuron"]
    st.plotly_chart(
        charts.share_heatmap(
            shares, f"Share of samples firing the top neurons of {target} that it fires (threshold {threshold})"
        ),
        key="map_shares",
    )
    st.markdown(
        "Open a neuron of this chart on the Neuron explorer: "
        + " · ".join(f"[{n}]({urlstate.neuron_link(n)})" for n in top["neuron"])
    )
