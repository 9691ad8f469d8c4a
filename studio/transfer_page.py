"""Page 6, Transfer: how the targets' selections overlap, correlate, and which sources they draw from."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from nait_core import explore

from . import charts, exactness, neuron_card, shared_view
from .session import NoExactSample, Studio, settings


def render(studio: Studio) -> None:
    st.title("Transfer")
    exactness.note(
        studio,
        "the shared neurons and their shares of the scores",
        "every selection, overlap, correlation, source count and the core subset",
    )
    s = settings()
    st.caption(f"Each target selects on its own with the cut set on Select & export ({s.options.describe()}).")
    scores = studio.score_vectors(s.options)
    masks = studio.target_masks(s)
    composition = studio.kept(
        (s.options, s.cut, "composition"), lambda: explore.source_composition(studio.sources, masks)
    )
    st.plotly_chart(
        charts.composition_bars(composition, "Where each target's selection comes from (by source)"),
        key="transfer_sources",
    )
    if len(masks) < 2:
        st.info("Add a second target set in the sidebar to compare selections across targets.")
        return
    cols = st.columns(2)
    cols[0].plotly_chart(
        charts.matrix_heatmap(
            explore.overlap_matrix(masks),
            "Overlap of the selections",
            "share shared",
            0,
            1,
            "%{z:.0%} of the records chosen for %{y} are also chosen for %{x}",
        ),
        key="transfer_overlap",
    )
    cols[1].plotly_chart(
        charts.matrix_heatmap(
            studio.kept((s.options, "correlations"), lambda: explore.score_correlations(scores)),
            "Rank correlation of the scores",
            "Spearman ρ",
            -1,
            1,
            "Spearman correlation of %{y} and %{x} scores: %{z:.2f}",
        ),
        key="transfer_correlation",
    )
    core = studio.selection(replace(s, merge="intersection")).indices  # chosen for every target
    st.subheader(f"Core subset: {len(core):,} records chosen for every target")
    if len(core):
        table = pd.DataFrame(
            {
                "row": core,
                "source": [studio.sources[i] for i in core],
                **{f"score: {n}": v[core] for n, v in scores.items()},
                "preview": [explore.preview(studio.pool.records[i], 120) for i in core],
            }
        )
        below = [n for n, v in scores.items() if (v[core] <= v.mean()).any()]
        if below:  # chosen for every target at this cut, but not above the pool for each: say so
            st.caption(
                f"At this cut some core records score below the pool's mean for {', '.join(below)}: they are "
                f"chosen for every target only because the cut keeps that much of the pool."
            )
        try:
            view = shared_view.shared(studio, studio.target_names, s.options)
            if not neuron_card.splits(s.options.method):
                st.caption(f"No reason: {neuron_card.unsplit_note(s.options.method)}")
            elif len(view.neurons):
                table = table.merge(shared_view.core_reasons(studio, core, view, s.options), on="row", how="left")
                st.caption(
                    "Its reason: the neurons that mark out every target (see Shared neurons below), their "
                    "share of each target's score, and the ones that carry most"
                    + (
                        f" (given for the first {shared_view.CORE_REASONS})"
                        if len(core) > shared_view.CORE_REASONS
                        else ""
                    )
                    + (
                        f"; on this compact pool only for core records in {exactness.sample_text(studio)}"
                        if studio.compact
                        else ""
                    )
                )
            else:
                st.caption("No shared reason: no neuron marks out every target (see Shared neurons below).")
        except NoExactSample as error:
            st.caption(f"No reasons: {error}")
        st.dataframe(
            neuron_card.with_record_links(table),
            hide_index=True,
            width="stretch",
            key="transfer_core",
            column_config={"row": neuron_card.record_link_column()},
        )
    else:
        st.caption("No record is chosen for every target at this cut; raise the ratio to find a core.")
    shared_view.render(studio, s.options)
