"""What every page says on a compact pool (`nait capture --sketch K`): one line under its title, the same
on every page, naming which of its views are exact and which approximate. An exact pool shows nothing."""

from __future__ import annotations

import streamlit as st

from .session import Studio

METHODS_DOC = "docs/methods.md, section “Compact summaries”"


def sample_text(studio: Studio) -> str:
    """'the 2,000-record exact sample' (or why there is none)."""
    if studio.exact is None:
        return "no exact sample (captured with --exact-sample 0)"
    return f"the {len(studio.exact[1]):,}-record exact sample"


def note(studio: Studio, exact: str, approximate: str) -> None:
    """The page's line on a compact pool: `exact` views (over the exact sample, or a live pass) and
    `approximate` ones (estimated from the K projections per layer)."""
    if not studio.compact:
        return
    k = studio.sketch.k
    line = (
        f":orange-badge[Compact pool · K = {k}] **Approximate:** {approximate} (estimated from {k} random "
        f"projections per layer; agreement with exact scores: {METHODS_DOC}). "
    )
    if studio.exact is None:
        line += f"**Exact:** none: this pool has {sample_text(studio)}, so per-neuron views are unavailable."
    else:
        line += f"**Exact:** {exact}, over {sample_text(studio)} of {len(studio.pool):,} records."
    st.caption(line)


def label(studio: Studio, exact: bool) -> str:
    """A short tag for one view on a compact pool: 'exact' or 'approximate' ('' on an exact pool)."""
    if not studio.compact:
        return ""
    return " :green-badge[exact]" if exact else " :orange-badge[approximate]"
