"""Page 2, Sample explorer: search and filter the pool, then see why one sample scores as it does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from nait_core import explain
from nait_core.neuron_ids import parse_neuron_id

from . import charts, exactness, neuron_card, urlstate
from .session import NoExactSample, Settings, Studio, combined_name, settings

TABLE_ROWS = 500
STATUS = ["all", "selected", "not selected"]


def pool_table(studio: Studio, current: Settings) -> pd.DataFrame:
    """Records with their combined score, rank, selection and per-target scores under `current` settings,
    best ranked first (index: pool row). Made once per settings (kept for the last few): at a million
    records, building and sorting it took most of a rerun."""
    return studio.kept((current, "samples table"), lambda: _ranked(studio.records_table, studio.selection(current)))


def _ranked(records: pd.DataFrame, selection) -> pd.DataFrame:
    table = records.assign(score=selection.score, rank=selection.rank, selected=selection.selected)
    for name, values in selection.per_target.items():
        table[f"score: {name}"] = values
    return table.iloc[np.argsort(selection.rank, kind="stable")]


def _filters(studio: Studio, table: pd.DataFrame) -> np.ndarray:
    """The widgets that filter the pool; the positions in `table` (ranked) of the records that pass."""
    sources = sorted(table["source"].unique())
    urlstate.follow(
        urlstate.Choice("q", "samples_query", ""),
        urlstate.Choice(
            "sources", "samples_sources", [], lambda v: [urlstate.one_of(sources)(x) for x in v.split(",")]
        ),
        urlstate.Choice("status", "samples_status", STATUS[0], urlstate.one_of(STATUS)),
    )
    cols = st.columns([3, 2, 2])
    query = cols[0].text_input("Search text", key="samples_query", placeholder="words in the prompt or response")
    chosen = cols[1].multiselect("Source", sources, key="samples_sources", placeholder="all sources")
    status = cols[2].radio("Selection", STATUS, horizontal=True, key="samples_status")
    urlstate.put("q", query.strip() or None)
    urlstate.put("sources", ",".join(chosen) or None)
    urlstate.put("status", status, STATUS[0])
    low, high = float(np.nanmin(table["score"])), float(np.nanmax(table["score"]))
    kept = st.session_state.get("samples_score")
    if kept is not None and not (low <= kept[0] <= kept[1] <= high):
        del st.session_state["samples_score"]  # the scores changed under the old range
    if high > low:
        name = combined_name(settings(), len(studio.features))
        urlstate.follow(urlstate.Choice("score", "samples_score", (low, high), urlstate.span_in(low, high)))
        full = (low, high)
        low, high = st.slider(f"Combined score ({name})", low, high, key="samples_score")
        urlstate.put("score", f"{low:.6g},{high:.6g}" if (low, high) != full else None)
    mask = table["score"].between(low, high)
    if query.strip():
        mask &= table["text"].str.contains(query.strip().lower(), regex=False)
    if chosen:
        mask &= table["source"].isin(chosen)
    if status != "all":
        mask &= table["selected"] == (status == "selected")
    chosen_on_map = st.session_state.get("map_filter")
    if chosen_on_map is not None and st.checkbox(
        f"Only the {len(chosen_on_map):,} points chosen on the map", value=True, key="samples_map_only"
    ):
        mask &= table.index.isin(chosen_on_map)
    return np.flatnonzero(mask.to_numpy())


def render(studio: Studio) -> None:
    st.title("Sample explorer")
    st.caption(
        "Filter the candidate pool; pick a row (or type its number) to see which neurons it fires and "
        "which layers make its score. The score is the one set on Select & export."
    )
    exactness.note(
        studio,
        "the neuron heatmap, the neurons that set a record apart and its nearest targets, for records in the "
        "exact sample (any other record: one live forward pass, on request)",
        "scores, ranks, the selection and each layer's share of a score",
    )
    _target_record(studio)
    current = settings()
    table = pool_table(studio, current)
    found = _filters(studio, table)  # positions in the ranked table
    st.write(
        f"**{len(found):,}** of {len(studio.pool):,} records match"
        + (f"; the {TABLE_ROWS} best ranked are listed" if len(found) > TABLE_ROWS else "")
    )
    shown = table.iloc[found[:TABLE_ROWS]].drop(columns="text")
    shown = shown.rename(columns={"score": combined_name(current, len(studio.features))})
    event = st.dataframe(
        shown,
        width="stretch",
        height=280,
        on_select="rerun",
        selection_mode="single-row",
        key="samples_table",
        column_config={"preview": st.column_config.TextColumn(width="large")},
    )
    picked = [int(shown.index[i]) for i in (event.selection.rows if event else []) if i < len(shown)]
    first = int(table.index[found[0]]) if len(found) else 0  # without a row in the link: the best match
    urlstate.follow(urlstate.Choice("row", "samples_row", first, urlstate.number_in(0, len(studio.pool) - 1)))
    if picked and picked != st.session_state.get("samples_picked"):  # a new pick in the table
        st.session_state["samples_row"] = picked[0]
    st.session_state["samples_picked"] = picked
    if not 0 <= st.session_state["samples_row"] < len(studio.pool):  # e.g. kept from another pool
        st.session_state["samples_row"] = first
    row = st.number_input("Pool row", 0, len(studio.pool) - 1, key="samples_row")
    urlstate.put("row", int(row), first)
    sample(studio, int(row), current)


def _target_record(studio: Studio) -> None:
    """A target record opened from a link (`?tset=NAME&trow=N`, from the Neuron explorer's target tables and
    the neuron card): its text, above the pool."""
    names = studio.target_names
    urlstate.follow(
        urlstate.Choice("tset", "samples_tset", None, urlstate.one_of(names)),
        urlstate.Choice("trow", "samples_trow", None, int),
    )
    name, row = st.session_state["samples_tset"], st.session_state["samples_trow"]
    if name is None or row is None:
        return
    records = studio.targets[names.index(name)].records
    if not 0 <= row < len(records):
        st.warning(
            f"Ignoring trow={row} in the link: target {name} has {len(records):,} records (0–{len(records) - 1})"
        )
        return
    urlstate.put("tset", name)
    urlstate.put("trow", row)
    record = records[row]
    with st.container(border=True):
        st.markdown(f"#### Target {name}, record {row} · {record.source}")
        st.caption(record.where)
        for turn in record.conversation:
            st.markdown(f"**{turn['role']}**")
            st.text(turn["content"][:4000] + ("…" if len(turn["content"]) > 4000 else ""))


def sample(studio: Studio, row: int, current: Settings) -> None:
    """Everything about one pool record, scored under `current` settings."""
    record = studio.pool.records[row]
    st.subheader(f"Record {row} · {record.source}")
    st.caption(record.where)
    st.markdown(f"[Mark it on the Overlap map]({urlstate.map_link(row)}) (a star among the candidates and targets)")
    for turn in record.conversation:
        st.markdown(f"**{turn['role']}**")
        st.text(turn["content"][:4000] + ("…" if len(turn["content"]) > 4000 else ""))

    contributions = studio.layer_contributions(row, current.options)
    try:
        x, where = neuron_card.record_values(studio, row, current.options, key="samples_exact_live")
    except NoExactSample as error:
        x, where = None, None
        st.warning(f"No neuron-level view of this record: {error}")
    top = pd.DataFrame({"neuron": []})
    if x is not None:
        if where:
            st.caption(f"Neuron values of record {row}: {where}.")
        top = _contrastive(studio, row, current, x)
        _heatmap(studio, row, x["mean"])
    if any(len(v) > 1 for v in contributions.values()):  # rds and embed: one number, no layers to chart
        st.plotly_chart(
            charts.layer_contributions(contributions, f"Record {row}: each layer's share of its score"),
            key="samples_layers",
        )
    if studio.compact:
        st.caption(f"Layer shares{exactness.label(studio, False)}: estimated from the pool's K projections per layer.")
    if x is not None:
        neuron_card.nearest(studio, row, x["mean"])
    _tokens(studio, row, top)


def _heatmap(studio: Studio, row: int, x) -> None:
    """Record `row`'s token-mean activations x [layers, neurons] as a heatmap (against a target or the pool)."""
    names = studio.target_names
    urlstate.follow(
        urlstate.Choice("target", "samples_target", names[0], urlstate.one_of(names)),
        urlstate.Choice("view", "samples_view", VIEWS[0], urlstate.one_of(VIEWS)),
    )
    cols = st.columns(2)
    target = cols[0].selectbox("Target feature", names, key="samples_target")
    view = cols[1].radio("Heatmap", VIEWS, horizontal=True, key="samples_view")
    urlstate.put("target", target, names[0])
    urlstate.put("view", view, VIEWS[0])
    profile = studio.features[studio.target_names.index(target)].profile
    z = {"sample": x, "target expected": profile, "sample − target expected": x - profile}.get(view)
    centre, label = float(np.median(studio.pool_mean)), "activation"
    if z is None:  # the contrastive view: how unusual each neuron is for the pool
        z, centre, label = explain.zscores(x, studio.pool_mean, neuron_card.pool_std(studio)), 0.0, "z vs pool"
    elif view == "sample − target expected":
        centre = 0.0
    limits = explain.robust_limits(z, centre)
    st.plotly_chart(
        charts.layer_neuron_heatmap(z, f"Record {row}: {view} ({target}), every layer and neuron", label, limits),
        key="samples_heatmap",
    )
    st.caption(
        f"Colour limits {limits[0]:.3g} … {limits[1]:.3g}: the 1st–99th percentile range around "
        f"{'0' if centre == 0 else f'the pool median {centre:.3g}'}; values beyond it saturate, so a few "
        f"massive activations cannot blank the map."
    )


VIEWS = ["sample z vs pool", "sample − target expected", "sample", "target expected"]


def _contrastive(studio: Studio, row: int, current: Settings, x: dict) -> pd.DataFrame:
    """The record's neurons that set it apart (z vs the pool), linked; a picked row opens its card here."""
    top, makers = neuron_card.contrastive(studio, row, current.options, x)
    if makers is None:  # rds, embed, overlap-max…: the scores and ranks, and why nothing more
        st.markdown("**Its score** for each target, and its rank in the pool by that target")
        st.caption(neuron_card.unsplit_note(current.options.method))
        st.dataframe(_scores_and_ranks(studio, row, current), hide_index=True, key="samples_makers")
    else:
        st.markdown(
            "**What makes its score**, for each target: the neurons and layers that carry most of it, each as a "
            "share of the score (in scientific notation when the score is about 0)"
        )
        st.dataframe(
            makers,
            hide_index=True,
            width="stretch",
            key="samples_makers",
            column_config={"made by": st.column_config.TextColumn(width="large")},
        )
    st.markdown(
        "**Neurons that set this record apart** (a contrastive view, not the ones that make its score): ranked "
        "by z, how many pool standard deviations its token-mean activation sits above the pool's mean for that "
        "neuron (not by raw size, which the same few massive-activation neurons top in every record)"
        + (", with each one's share of the score" if makers is not None else "")
        + ". Click a neuron id to open it on the Neuron explorer, or pick a row to see "
        "its card here."
    )
    shares = [c for c in top.columns if c.startswith("share of score: ")]
    event = st.dataframe(
        neuron_card.with_neuron_links(top),
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="samples_top",
        column_config={
            "neuron": neuron_card.neuron_link_column(),
            **{c: st.column_config.NumberColumn(format="percent") for c in shares},
        },
    )
    picked = [top["neuron"].iloc[i] for i in (event.selection.rows if event else []) if i < len(top)]
    urlstate.follow(urlstate.Choice("neuron", "samples_card", ""))  # Back to no card closes it, as a reload does
    if picked and picked != st.session_state.get("samples_top_picked"):  # a new pick in the table
        st.session_state["samples_card"] = picked[0]
    st.session_state["samples_top_picked"] = picked
    neuron = st.text_input("Neuron card", key="samples_card", placeholder="pick a row above, or type e.g. L12.N345")
    if neuron.strip():
        try:
            layer, index = parse_neuron_id(neuron)
        except ValueError as error:
            st.error(str(error))
        else:
            urlstate.put("neuron", neuron.strip())
            with st.container(border=True):
                st.markdown(f"#### Neuron card: [{neuron.strip()}]({urlstate.neuron_link(neuron.strip())})")
                neuron_card.card(studio, layer, index, current.options.fire_threshold, key="samples_card")
    return top


def _scores_and_ranks(studio: Studio, row: int, current: Settings) -> pd.DataFrame:
    """Record `row`'s score for each target under `current` settings and its rank (1: best) by that score."""
    orders = studio.orders(current.options)
    return pd.DataFrame(
        {
            "target": list(orders),
            "score": [float(v[row]) for v in studio.score_vectors(current.options).values()],
            "rank": [int(np.flatnonzero(order == row)[0]) + 1 for order in orders.values()],
        }
    )


def _tokens(studio: Studio, row: int, top: pd.DataFrame) -> None:
    st.markdown("**Per-token activation** of one neuron (one live forward pass of this record)")
    options = list(top["neuron"])
    urlstate.follow(
        urlstate.Choice("tpick", "samples_neuron", options[0] if options else None, urlstate.one_of(options)),
        urlstate.Choice("tneuron", "samples_neuron_id", ""),
        urlstate.Choice("tokens", "samples_live", False, urlstate.flag),
    )
    if st.session_state["samples_neuron"] not in options:  # another record's neuron: its own first
        st.session_state["samples_neuron"] = options[0] if options else None
    cols = st.columns([2, 2, 1])
    picked = cols[0].selectbox("Neuron", options, key="samples_neuron", help="one of its top-firing neurons")
    typed = cols[1].text_input("…or any neuron id", key="samples_neuron_id", placeholder="e.g. L12.N345")
    live = cols[2].toggle("Show", key="samples_live")
    urlstate.put("tpick", picked, options[0] if options else None)
    urlstate.put("tneuron", typed.strip() or None)
    urlstate.put("tokens", "1" if live else None)
    neuron = typed or picked
    if not live:
        return
    if not neuron:
        st.info("Type a neuron id, e.g. L12.N345.")
        return
    try:
        layer, index = parse_neuron_id(neuron)
        if not (0 <= layer < studio.model.n_layers and 0 <= index < studio.model.neurons_per_layer):
            raise ValueError(
                f"{neuron} is outside {studio.model.n_layers} layers × {studio.model.neurons_per_layer} neurons"
            )
    except ValueError as error:
        st.error(str(error))
        return
    tokens, acts, template, start = neuron_card.layer_tokens(studio, "pool", row, layer)
    values = acts[:, index]
    st.html(neuron_card.highlight(tokens, values, start, template))
    st.caption(neuron_card.scale_caption(values, template))
    st.plotly_chart(
        charts.token_activation_line(tokens, values, start, f"{neuron} at each token of record {row}"),
        key="samples_token_line",
    )
