"""Transfer page, shared neurons: for two or more targets, per layer how far their features agree, the
neurons that mark out all of them, and the candidates jointly high for every one with the shared neurons'
share of their scores (`nait_core.explain.shared_view`); and the core subset's reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from nait_core import explain, explore
from nait_core.scoring import ScoreOptions
from nait_core.words import counted, verb

from . import exactness, neuron_card, urlstate
from .session import NoExactSample, Studio

TOP = 50  # the default of both number boxes: top neurons per layer and target, shared neurons listed
CORE_REASONS = 200  # core-subset records given a reason (the rest are listed without)


@st.cache_resource(show_spinner="Finding the neurons the targets share…", max_entries=16)
def _shared(
    store_path: str, names: tuple, feature_keys: tuple, options_key: str, k: int, n: int, rows: int, _studio, _options
):
    picked = [_studio.target_names.index(name) for name in names]
    store, pool_rows = _studio.neuron_store, _studio.neuron_rows  # a compact pool: its exact sample
    scores = _studio.scores(_options)
    if _studio.compact:
        scores = explore.subset_scores(scores, pool_rows)
    features, scores = [_studio.features[i] for i in picked], [scores[i] for i in picked]
    if neuron_card.splits(_options.method):
        view = explain.shared_view(store, features, scores, _options, _studio.neuron_records, k=k, n=n, candidates=rows)
    else:  # rds, embed, overlap-max…: the same neurons (they do not depend on the method), candidates' scores only
        view = _unsplit_view(store, features, scores, _studio.neuron_records, k, n, rows)
    if _studio.compact:
        view.candidates["row"] = pool_rows[view.candidates["row"].to_numpy()]
    return view


def _unsplit_view(store, features, scores, records, k: int, n: int, rows: int) -> explain.Shared:
    """`explain.shared_view` for a score that does not split into neurons: the layers and the marking neurons
    (the targets' profiles against the pool), and the jointly high candidates with their scores, no shares."""
    mean, std = store.mean("mean"), explain.pool_std(store)
    marked = {f.name: explain.marks(f.profile, mean, std) for f in features}
    centred = {f.name: f.profile - mean for f in features}
    joint = explain.joint_candidates(scores, rows)
    candidates = pd.DataFrame({"row": joint, **{f"score: {s.feature}": s.score[joint] for s in scores}})
    candidates["source"] = [records[r].source for r in joint]
    candidates["preview"] = [explore.preview(records[r], 80) for r in joint]
    layers = explain.shared_layers(marked, centred, k)
    return explain.Shared([f.name for f in features], layers, explain.shared_neurons(marked, n), candidates, k)


def shared(
    studio: Studio, names: list[str], options: ScoreOptions, k: int = TOP, n: int = TOP, rows: int = 10
) -> explain.Shared:
    """The neurons the `names` targets share and the candidates jointly high for all, scored by `options` (cached)."""
    keys = tuple(f.meta["target_hash"] + f.name for f in studio.features)
    return _shared(str(studio.pool_store.path), tuple(names), keys, repr(options), k, n, rows, studio, options)


@st.cache_resource(show_spinner="Explaining the core subset…", max_entries=16)
def _core_reasons(
    store_path: str, rows: tuple, feature_keys: tuple, options_key: str, neurons: tuple, _studio, _options, _shared
):
    scores, at = _studio.scores(_options), list(rows)
    if _studio.compact:  # only the core records of the exact sample get a reason
        scores = explore.subset_scores(scores, _studio.neuron_rows)
        at = [int(p) for p in _studio.exact_positions(rows)]
    table = explain.shared_share(
        _studio.neuron_store,
        at,
        _studio.features,
        scores,
        _options,
        _shared,
        with_scores=False,  # the core subset's table shows the shares and the neurons, not the scores
    )
    if _studio.compact:
        table["row"] = _studio.neuron_rows[table["row"].to_numpy()] if len(table) else table["row"]
    return table


def core_reasons(studio: Studio, core, view: explain.Shared, options: ScoreOptions) -> pd.DataFrame:
    """For the first CORE_REASONS core records: the shared neurons' share of each target's score (scored by
    `options`) and the shared neurons that carry it most (cached)."""
    rows = tuple(int(r) for r in core[:CORE_REASONS])
    keys = tuple(f.meta["target_hash"] + f.name for f in studio.features)
    return _core_reasons(
        str(studio.pool_store.path),
        rows,
        keys,
        repr(options),
        tuple(view.neurons["neuron"]),
        studio,
        options,
        view.neurons,
    )


COSINE = "centred cosine (mean)"


def signed_colour(value: float) -> str:
    """A cell's background for a value in [-1, 1]: blue below 0, red above, stronger further from 0 (a
    progress bar from -1 drew -0.5 as a quarter full, its sign unseen)."""
    if not np.isfinite(value):
        return ""
    alpha = min(abs(float(value)), 1.0) * 0.6
    return f"background-color: rgba({'220,40,40' if value > 0 else '40,80,220'},{alpha:.2f})"


def signed_cells(table: pd.DataFrame, columns: list[str]):
    """`table` with these signed columns shown with their sign (+0.12, -0.40) and coloured by it."""
    return table.style.map(signed_colour, subset=columns).format("{:+.2f}", subset=columns)


def render(studio: Studio, options: ScoreOptions) -> None:
    st.subheader("Shared neurons")
    names = studio.target_names
    urlstate.follow(
        urlstate.Choice(
            "targets", "transfer_targets", names, lambda v: [urlstate.one_of(names)(x) for x in v.split(",")]
        ),
        urlstate.Choice("k", "transfer_k", TOP, urlstate.number_in(5, 500)),
        urlstate.Choice("n", "transfer_n", TOP, urlstate.number_in(5, 500)),
    )
    chosen = st.multiselect("Targets compared", names, key="transfer_targets")
    cols = st.columns(2)
    k = int(
        cols[0].number_input(
            "Top neurons per layer and target",
            5,
            500,
            key="transfer_k",
            help="each target's neurons that most mark it out (expected activation minus the "
            "pool's, in pool standard deviations) compared per layer",
        )
    )
    n = int(cols[1].number_input("Shared neurons listed", 5, 500, key="transfer_n"))
    urlstate.put("targets", ",".join(chosen), ",".join(names))
    urlstate.put("k", k, TOP)
    urlstate.put("n", n, TOP)
    if len(chosen) < 2:
        st.info("Choose two targets or more to see the neurons they share.")
        return
    try:
        view = shared(studio, chosen, options, k, n)
    except NoExactSample as error:
        st.warning(f"No shared-neuron view: {error}")
        return
    if studio.compact:
        st.caption(
            f"Neurons, their shares and the jointly high candidates{exactness.label(studio, True)}: over "
            f"{exactness.sample_text(studio)} (its records' exact values)."
        )
    st.caption(
        f"{' × '.join(chosen)}: for each layer, how many of each target's top {k} marking neurons are the "
        f"same for all (|∩| / |∪|), and the cosine of their profiles centred on the pool (what `overlap` "
        f"compares). 0 overlap and 0 cosine: the layer tells these targets apart; 1: it sees them alike."
    )
    st.dataframe(
        signed_cells(view.layers, [COSINE]),
        hide_index=True,
        width="stretch",
        key="transfer_layers",
        column_config={f"top-{k} overlap": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f")},
    )
    if len(view.neurons):
        st.markdown(
            f"**{counted(len(view.neurons), 'neuron')} {verb(len(view.neurons), 'marks', 'mark')} out every one of these "
            f"targets** (ranked by their smallest z "
            f"over the targets; only those at least {explain.MARK_Z:g} pool standard deviations above the pool "
            f"for all). Click one to open its card."
        )
        st.dataframe(
            neuron_card.with_neuron_links(view.neurons),
            hide_index=True,
            width="stretch",
            key="transfer_neurons",
            column_config={"neuron": neuron_card.neuron_link_column()},
        )
    else:
        st.markdown(
            f"**No neuron marks out every one of these targets**: none is {explain.MARK_Z:g} pool standard "
            f"deviations above the pool for all of them (the per-layer table above says where they differ)."
        )
    if not neuron_card.splits(options.method):
        st.caption(neuron_card.unsplit_note(options.method))
    if not len(view.candidates):
        st.markdown("**No candidate is jointly high for every target**: none scores above the pool's mean for all.")
        return
    st.markdown(
        "**Candidates jointly high for every target** (ranked by their worst percentile over the targets; only "
        "those above the pool's mean score for each)"
        + (
            ", with the share of each target's score that the shared neurons carry"
            if neuron_card.splits(options.method)
            else f", with their `{options.method}` scores"
        )
    )

    st.dataframe(
        neuron_card.with_record_links(view.candidates),
        hide_index=True,
        width="stretch",
        key="transfer_joint",
        column_config={"row": neuron_card.record_link_column()},
    )
