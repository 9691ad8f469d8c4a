"""Page 3, Neuron explorer: one neuron's activations in candidates and targets, and its top samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from nait_core import explain, explore
from nait_core.neuron_ids import neuron_id, parse_neuron_id
from nait_core.words import counted, verb

from . import charts, exactness, neuron_card, urlstate
from .session import Studio, settings

NEURON_FORM = "L<layer>.N<index>"
COUNT, TOP_K = 20, 10  # the defaults of "How many" top neurons and of the samples listed


def _parse(studio: Studio, text: str) -> tuple[int, int]:
    """A neuron id of this model, or ValueError naming the accepted form and its range."""
    layers, neurons = studio.model.n_layers, studio.model.neurons_per_layer
    accepted = f"type {NEURON_FORM}, layer 0–{layers - 1}, index 0–{neurons - 1} (e.g. L12.N345)"
    try:
        layer, index = parse_neuron_id(text)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a neuron id: {accepted}") from None
    if not (0 <= layer < layers and 0 <= index < neurons):
        raise ValueError(f"{text.strip()} is outside this model's {layers} layers × {neurons} neurons: {accepted}")
    return layer, index


def _show(name: str) -> None:
    """Make `name` the neuron of the "any neuron" choice (its id box and its layer and index), before they are
    drawn: a callback's or the URL's choice."""
    layer, index = parse_neuron_id(name)
    st.session_state.update(neurons_id=name, neurons_layer=layer, neurons_index=index)


def _keep_shown() -> None:
    """Switching to "any neuron" keeps the neuron on show (not L0.N0)."""
    if st.session_state.get("neurons_mode") == "any neuron" and "neurons_shown" in st.session_state:
        _show(st.session_state["neurons_shown"])


def _from_id() -> None:
    """A typed id moves the layer and index boxes along (a bad one leaves them: the page says why)."""
    try:
        layer, index = parse_neuron_id(st.session_state["neurons_id"])
    except ValueError:
        return
    st.session_state.update(neurons_layer=layer, neurons_index=index)


def _from_form() -> None:
    _show(neuron_id(int(st.session_state["neurons_layer"]), int(st.session_state["neurons_index"])))


def _from_url(studio: Studio) -> None:
    """On a new URL, as a reload: a neuron id in it (`?neuron=L12.N345`) opens that neuron; without one, the
    top neurons of a feature."""
    if not urlstate.new_url():
        return
    st.session_state["neurons_mode"] = "top neurons of a feature"
    value = st.query_params.get("neuron")
    if value is None:
        return
    try:
        layer, index = _parse(studio, value)
    except ValueError as error:
        st.warning(f"Ignoring the neuron in the link: {error}")
        return
    st.session_state["neurons_mode"] = "any neuron"
    _show(neuron_id(layer, index))


def _any(studio: Studio) -> tuple[int, int] | None:
    """The "any neuron" choice: an id box that jumps straight to a neuron, or a layer and an index chosen
    together (a form: choosing the layer alone computes nothing)."""
    st.session_state.setdefault("neurons_id", st.session_state.get("neurons_shown", "L0.N0"))
    cols = st.columns([2, 3])
    text = cols[0].text_input(
        "Neuron id",
        key="neurons_id",
        on_change=_from_id,
        placeholder="L12.N345",
        help=f"{NEURON_FORM}: layer 0–{studio.model.n_layers - 1}, index 0–{studio.model.neurons_per_layer - 1}",
    )
    shown = parse_neuron_id(st.session_state.get("neurons_shown", "L0.N0"))
    st.session_state.setdefault("neurons_layer", shown[0])
    st.session_state.setdefault("neurons_index", shown[1])
    with cols[1].form("neurons_form", border=False):
        inner = st.columns([2, 2, 1], vertical_alignment="bottom")
        inner[0].number_input("Layer", 0, studio.model.n_layers - 1, key="neurons_layer")
        inner[1].number_input("Index", 0, studio.model.neurons_per_layer - 1, key="neurons_index")
        inner[2].form_submit_button("Show", on_click=_from_form)
    try:
        layer, index = _parse(studio, text)
    except ValueError as error:
        st.error(str(error))
        return None
    return layer, index


def _pick(studio: Studio) -> tuple[int, int] | None:
    names = studio.target_names
    _from_url(studio)
    urlstate.follow(
        urlstate.Choice("feature", "neurons_feature", names[0], urlstate.one_of(names)),
        urlstate.Choice("count", "neurons_count", COUNT, urlstate.number_in(5, 200)),
    )
    mode = st.radio(
        "Neuron", ["top neurons of a feature", "any neuron"], horizontal=True, key="neurons_mode", on_change=_keep_shown
    )
    if mode == "any neuron":
        return _any(studio)
    cols = st.columns([2, 1])
    target = cols[0].selectbox("Feature", names, key="neurons_feature")
    count = int(cols[1].number_input("How many", 5, 200, key="neurons_count"))
    urlstate.put("feature", target, names[0])
    urlstate.put("count", count, COUNT)
    top = _top(studio, target, count)
    neurons = list(top["neuron"])
    if st.session_state.get("neurons_pick") not in neurons:  # another feature's neuron: this one's first
        st.session_state["neurons_pick"] = neurons[0]
    urlstate.follow(urlstate.Choice("pick", "neurons_pick", neurons[0], urlstate.one_of(neurons)))
    with st.expander(
        f"The {counted(int(count), 'neuron')} that most {verb(int(count), 'marks', 'mark')} out {target} "
        f"(its expected activation minus the pool's, in pool standard deviations)"
    ):
        st.dataframe(
            neuron_card.with_neuron_links(top),
            hide_index=True,
            width="stretch",
            column_config={"neuron": neuron_card.neuron_link_column()},
        )
    chosen = st.selectbox("Show neuron", neurons, key="neurons_pick")
    urlstate.put("pick", chosen, neurons[0])
    row = top[top["neuron"] == chosen].iloc[0]
    return int(row["layer"]), int(row["index"])


def _top(studio: Studio, target: str, count: int) -> pd.DataFrame:
    """The `count` neurons that most mark out `target` (made once per target and count)."""

    def make():
        profile = studio.features[studio.target_names.index(target)].profile
        marks = explain.marks(profile, studio.pool_mean, neuron_card.pool_std(studio))
        top = explore.top_neurons(marks, total=count).rename(columns={"weight": "z vs pool"})
        top["difference"] = (profile - studio.pool_mean)[top["layer"], top["index"]]
        return top

    return studio.kept((target, count, "neurons top"), make)


METRICS_PER_ROW = 4  # six metrics in a row cut "Density: target humaneval-n16-s0" to "Density: targ…"


def density_label(group: str) -> str:
    """A density metric's label: the group's own name (the row's heading says what the numbers are)."""
    return {"selected candidates": "selected"}.get(group, group.removeprefix("target "))


def _examples(records, values, k: int, label: str, rows=None) -> pd.DataFrame:
    """The k records of `values` with the highest; `rows`: the pool rows of `values`' (an exact sample)."""
    best = explore.top_samples(values, k)
    return pd.DataFrame(
        {
            "row": best if rows is None else rows[best],
            label: [records[i].source for i in best],
            "activation": values[best],
            "preview": [explore.preview(records[i], 160) for i in best],
        }
    )


def render(studio: Studio) -> None:
    st.title("Neuron explorer")
    st.caption(
        "Activations are token means per sample (what `overlap` and `jaccard` compare). A neuron fires in a "
        "sample when its activation exceeds the firing threshold set on Select & export."
    )
    exactness.note(
        studio,
        "every activation, density, histogram and top record",
        "which candidates are selected (from estimated scores)",
    )
    picked = _pick(studio)
    if picked is None:
        return
    layer, index = picked
    name = neuron_id(layer, index)
    st.session_state["neurons_shown"] = name
    if st.session_state["neurons_mode"] == "any neuron":
        urlstate.put("neuron", name)
    current = settings()
    threshold_text = current.options.fire_threshold
    threshold = float(studio.thresholds(threshold_text)[layer, index])
    selection = studio.selection(current)
    pool_values = studio.pool_neuron_values([(layer, index)])[:, 0]  # a compact pool: its exact sample's
    groups = {"candidates": pool_values, "selected candidates": pool_values[selection.selected[studio.neuron_rows]]}
    chosen_on_map = st.session_state.get("map_filter")
    if chosen_on_map is not None:  # a box or lasso choice on the Overlap map
        groups["chosen on the map"] = pool_values[studio.exact_positions(chosen_on_map)]
    for target, store in zip(studio.target_names, studio.target_stores):
        groups[f"target {target}"] = studio.neuron_values(store, [(layer, index)])[:, 0]

    st.subheader(f"Neuron {name}")
    st.markdown(f"**Firing density**: the share of each group's samples where {name} exceeds {threshold:.3g}")
    densities = list(explain.densities(groups, threshold).items())
    for start in range(0, len(densities), METRICS_PER_ROW):  # a short label per metric, room for it in a row
        cols = st.columns(METRICS_PER_ROW)
        for col, (group, density) in zip(cols, densities[start : start + METRICS_PER_ROW]):
            col.metric(
                density_label(group),
                "–" if np.isnan(density) else f"{density:.1%}",
                help=f"share of the {group} samples where {name} exceeds {threshold:.3g} (threshold {threshold_text})",
            )
    st.plotly_chart(
        charts.value_histogram(
            groups, threshold, f"{name}: activation in candidates and targets", "token-mean activation"
        ),
        key="neurons_hist",
    )
    with st.container(border=True):
        st.markdown(f"#### Neuron card: {name}")
        neuron_card.card(studio, layer, index, threshold_text, key="neurons_card")
    urlstate.follow(urlstate.Choice("k", "neurons_k", TOP_K, urlstate.number_in(3, 50)))
    k = st.slider("Top-activating samples to list", 3, 50, key="neurons_k")
    urlstate.put("k", k, TOP_K)
    st.markdown(
        f"**Top-activating candidates** for {name}"
        + (f" in {exactness.sample_text(studio)}{exactness.label(studio, True)}" if studio.compact else "")
    )
    top = _examples(studio.neuron_records, pool_values, k, "source", studio.neuron_rows if studio.compact else None)
    top.insert(1, "map", [urlstate.map_link(r) for r in top["row"]])
    st.dataframe(
        neuron_card.with_record_links(top),
        hide_index=True,
        width="stretch",
        column_config={
            "row": neuron_card.record_link_column(),
            "map": st.column_config.LinkColumn("map", display_text="mark", help="marks the record on the Overlap map"),
        },
    )
    for target, dataset in zip(studio.target_names, studio.targets):
        st.markdown(f"**Top-activating targets: {target}**")
        table = _examples(dataset.records, groups[f"target {target}"], k, "source")
        table["row"] = [urlstate.target_link(target, r) for r in table["row"]]
        st.dataframe(table, hide_index=True, width="stretch", column_config={"row": neuron_card.target_link_column()})
