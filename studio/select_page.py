"""Page 5, Select & export: method, cut and merge; live count and histogram; the file `nait select` writes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import streamlit as st

from nait_core import explain, explore
from nait_core import methods as registry
from nait_core.baselines import BASELINES
from nait_core.scoring import ScoreOptions
from nait_core.selection import (
    MERGES,
    Cut,
    check_output_paths,
    empty_reason,
    equal_scores,
    equal_scores_message,
    export,
    export_warnings,
    score_lines,
    selected_lines,
)

from . import charts, exactness, guard
from .session import USER_ERRORS, Settings, Studio, combined_name, set_settings, settings

COSTLY = ("ifd", "embed")  # run a model over the pool: compared only when chosen
CUTS = {"ratio": "share of the pool", "top": "number of records", "min_score": "minimum score"}
PREVIEW_ROWS = 20
PREPARE_ABOVE = 20_000  # selections larger than this are made into a file only when asked for
# How the columns of `explore.method_agreement` are labelled in the table of every pair.
AGREEMENT_LABELS = {
    "target": "target",
    "methods": "methods",
    "top_k": "top k",
    "shared_top_k": "shared share of top k",
    "spearman": "rank correlation",
}


def widget_values(now: Settings, methods, pool_size: int) -> dict:
    """Each Select widget's value under settings `now`, by widget key (the widgets read only these, so a
    URL change can set them all before they are drawn: urlstate.restore_settings)."""
    o, cut = now.options, now.cut
    return {
        "select_method": o.method if o.method in methods else methods[0],
        "select_threshold": o.fire_threshold,
        "select_centre": o.centre,
        "select_reduction": o.reduction,
        "select_layer_norm": o.layer_norm,
        "select_cut": next(k for k in CUTS if getattr(cut, k) is not None),
        "select_ratio": cut.ratio or 0.1,
        "select_top": min(cut.top or 10, pool_size),
        "select_min": cut.min_score or 0.0,
        "select_merge": now.merge,
    }


def controls(studio: Studio) -> Settings:
    """The scoring and selection widgets, initialised from the current settings; raises ValueError."""
    methods = list(studio.methods)
    if st.session_state.get("select_method") not in (None, *methods):  # e.g. jaccard, chosen on an exact pool
        del st.session_state["select_method"]
    # Widgets take their values from session state only, never a default as well: a Back/Forward resets
    # these keys from the URL, and a widget given both a default and a state value warns in the log.
    for key, value in widget_values(settings(), methods, len(studio.pool)).items():
        st.session_state.setdefault(key, value)
    cols = st.columns(3)
    method = cols[0].radio(
        "Scoring method",
        methods,
        key="select_method",
        help="; ".join(f"{m}: {registry.get(m).help}" for m in methods),
    )
    if note := unavailable_note(studio.unavailable_methods):
        cols[0].caption(note)
    threshold = cols[1].text_input(
        "Firing threshold",
        key="select_threshold",
        help="a number (absolute), or qQ for each neuron's Q-quantile over the pool (q0.99); "
        "used by jaccard and by every firing share",
    )
    centre = cols[1].checkbox("Centre on the pool mean (overlap)", key="select_centre")
    reduction = cols[2].selectbox(
        "Candidate summary (nait-pca)", ["last-first", "mean", "last"], key="select_reduction"
    )
    layer_norm = cols[2].selectbox("Layer norm (nait-pca)", ["none", "z"], key="select_layer_norm")
    cols = st.columns(3)
    kind = cols[0].radio("Cut by", list(CUTS), format_func=CUTS.get, key="select_cut")
    if kind == "ratio":
        value = cols[1].slider("Ratio kept per target", 0.01, 1.0, step=0.01, key="select_ratio")
    elif kind == "top":
        value = cols[1].number_input("Records kept per target", 1, len(studio.pool), key="select_top")
    else:
        value = cols[1].number_input("Minimum score", format="%.4f", key="select_min")
    merge = cols[2].selectbox(
        "Merge targets",
        MERGES,
        key="select_merge",
        disabled=len(studio.features) < 2,
        help="union: chosen for any target (paper); intersection: the core subset chosen for "
        "every target; mean-z: one cut on the average z-scored score",
    )
    options = ScoreOptions(
        method=method, centre=centre, fire_threshold=threshold.strip(), reduction=reduction, layer_norm=layer_norm
    )
    return Settings(options, Cut(**{kind: value}), merge)


def unavailable_note(unavailable: dict[str, str]) -> str:
    """ "jaccard, overlap-z is not offered: why." per reason: the methods the pool cannot serve, and why."""
    by_reason: dict[str, list[str]] = {}
    for method, why in unavailable.items():
        by_reason.setdefault(why, []).append(method)
    return " ".join(
        f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} not offered: {why}."
        for why, names in by_reason.items()
    )


def render(studio: Studio) -> None:
    st.title("Select & export")
    exactness.note(
        studio,
        "per-neuron reasons of the records in the exact sample",
        "scores, the selection, the histogram, method agreement and per-layer reasons",
    )
    try:
        new = controls(studio)
        selection = studio.selection(new)
    except USER_ERRORS as error:
        st.error(f"These settings do not work: {error}")
        return
    set_settings(new)
    kept = int(selection.selected.sum())
    cols = st.columns(3)
    cols[0].metric("Selected records", f"{kept:,}")
    cols[1].metric("Share of the pool", f"{kept / len(studio.pool):.1%}")
    cols[2].metric("Targets", len(studio.features))
    note = explain.share_note(studio.target_masks(new), new.cut, new.merge)
    if note:
        st.caption(f"Why this share: {note}.")
    if equal := equal_scores(selection):  # in nait select's words: such scores cannot rank
        st.warning(equal_scores_message(equal))
    _histogram(studio, new, selection)
    _agreement(studio, new, kept)
    if kept == 0:
        st.warning(f"Nothing is selected: {empty_reason(selection, new.cut, new.merge)}.")
        return
    _preview(studio, new, selection)
    _export(studio, new, selection)


def _histogram(studio: Studio, s: Settings, selection) -> None:
    names = list(selection.per_target)
    which = st.selectbox("Histogram of", (["combined"] if len(names) > 1 else []) + names, key="select_hist")
    if which == "combined":
        values, mask = selection.score, selection.selected
        label = combined_name(s, len(names))
    else:
        values, mask = selection.per_target[which], studio.target_masks(s)[which]
        label = f"{s.options.method} score for {which}"
    cut = float(np.min(values[mask])) if mask.any() else None
    st.plotly_chart(
        charts.score_histogram(
            {which: values}, cut, f"Scores of the {len(values):,} candidates ({which}); {int(mask.sum()):,} kept", label
        ),
        key="select_histogram",
    )


def _agreement(studio: Studio, s: Settings, kept: int) -> None:
    if not st.toggle("Compare methods", value=len(studio.pool) <= 5000, key="select_compare"):
        return
    offered = list(studio.methods) + list(BASELINES)
    chosen = st.multiselect(
        "Methods compared",
        offered,
        [m for m in offered if m not in COSTLY],
        key="select_compare_methods",
        help="Every method but the baselines scores against each target; the baselines (ifd, length, random) "
        "score each record alone. ifd (two forward passes) and embed (a sentence encoder) run a model over the "
        "pool once, then are cached.",
    )
    if len(chosen) < 2:
        st.info("Choose two methods or more to compare.")
        return
    scores = {
        m: studio.score_vectors(replace(s.options, method=m))  # the page's own options for the method's settings
        if registry.get(m).target
        else dict.fromkeys(studio.target_names, studio.baseline_scores(m))
        for m in chosen
    }
    ratio = s.cut.ratio or max(kept, 1) / len(studio.pool)
    table = explore.method_agreement(scores, ratio)
    st.markdown(f"**How far the methods agree** on each target's top {ratio:.0%} (1 = the same records)")
    names = studio.target_names
    target = st.selectbox("Target", names, key="select_compare_target") if len(names) > 1 else names[0]
    st.plotly_chart(
        charts.matrix_heatmap(
            explore.agreement_matrix(table, target),
            f"Shared share of the top {ratio:.0%} for {target}",
            "shared share",
            0,
            1,
            "%{y} and %{x}: %{z:.0%} of the top records shared",
            axis="method",
        ),
        key="select_agreement_matrix",
    )
    with st.expander("Every pair, with rank correlations"):
        st.dataframe(
            agreement_table(table),
            hide_index=True,
            width="stretch",
            column_config={
                AGREEMENT_LABELS["shared_top_k"]: st.column_config.ProgressColumn(
                    min_value=0, max_value=1, format="%.2f"
                )
            },
        )


def agreement_table(table: pd.DataFrame) -> pd.DataFrame:
    """`explore.method_agreement`'s fields as the table shows them: one "a vs b" column, labelled columns."""
    shown = table.assign(methods=table["method_a"] + " vs " + table["method_b"])
    return shown[list(AGREEMENT_LABELS)].rename(columns=AGREEMENT_LABELS)


def _preview(studio: Studio, s: Settings, selection) -> None:
    rows = selection.indices[np.argsort(selection.rank[selection.indices])][:PREVIEW_ROWS]
    method = registry.get(s.options.method)
    table = {
        "row": rows,
        "rank": selection.rank[rows],
        combined_name(s, len(selection.per_target)): selection.score[rows],
        "source": [studio.sources[i] for i in rows],
        "preview": [explore.preview(studio.pool.records[i], 120) for i in rows],
    }
    if method.explains:
        st.markdown(
            f"**The {len(rows)} best ranked chosen records**, with the reason (top contributing layers and neurons)"
            + (
                f"{exactness.label(studio, False)} layers estimated; neurons only for records of "
                f"{exactness.sample_text(studio)}{exactness.label(studio, True)}"
                if studio.compact
                else ""
            )
        )
        table["reason"] = studio.reasons(list(rows), s.options)
    else:  # rds, embed, overlap-max, the layer variants: a score that does not split into neurons
        st.markdown(f"**The {len(rows)} best ranked chosen records**")
        st.caption(
            f"`{method.name}` ({method.help}) has no per-neuron split of its scores, so no reason is given; "
            f"{' or '.join(registry.names(explains=True))} show which neurons carry a score."
        )
    st.dataframe(
        pd.DataFrame(table),
        hide_index=True,
        width="stretch",
        column_config={"reason": st.column_config.TextColumn(width="large")} if method.explains else None,
    )


def _export(studio: Studio, s: Settings, selection) -> None:
    st.subheader("Export")
    st.caption("The selected records exactly as read, in input order: the same file `nait select` writes.")
    st.code(studio.command(s), language="bash")
    kept = len(selection.indices)
    # Files are made before they are offered, the same bytes for the same settings (so the same file id
    # across reruns), and a click does not rerun: a file made on click (a callable) is revoked by any rerun
    # that redraws its button, so a click during a rerun failed with only a MediaFileStorageError in the log.
    cols = st.columns(2)
    # A large selection (100,000 lines of a 1M pool: seconds) is made only when asked for, as the scores are.
    if (
        kept <= PREPARE_ABOVE
        or (s, "selected") in studio.downloads
        or cols[0].button(
            f"Prepare the selection ({kept:,} lines, JSONL)",
            key="select_prepare_selected",
            help="made once per settings",
        )
    ):
        data, notes = _download(studio, s, "selected", lambda: selected_lines(studio.pool.records, selection))
        cols[0].download_button(
            "Download the selection (JSONL)",
            data,
            file_name=export_name(studio.pool.name, s, "selected"),
            mime="application/jsonl",
            key="select_download",
            on_click="ignore",
        )
        _export_warnings(selection, notes)
    # The scores file has a line per pool record (1.6 s for 52,000 records): made only when asked for.
    if (s, "scores") in studio.downloads or cols[1].button(
        "Prepare all scores (JSONL)", key="select_prepare_scores", help="one line per record; made once per settings"
    ):
        cols[1].download_button(
            "Download all scores (JSONL)",
            _download(studio, s, "scores", lambda: (score_lines(selection), []))[0],
            file_name=export_name(studio.pool.name, s, "scores"),
            mime="application/jsonl",
            key="select_download_scores",
            on_click="ignore",
        )
    if guard.read_only():
        st.caption("This app is read-only (`nait app --read-only`): download the files instead of writing them.")
        return
    with st.form("select_write"):
        path = st.text_input("…or write it to a path", "out/selected.jsonl", key="select_path")
        scores_path = st.text_input("and the scores to (optional)", "", key="select_scores_path")
        replace = st.checkbox("Replace an existing file", False, key="select_replace")
        if not st.form_submit_button("Write"):
            return
    _write(studio, selection, path.strip() or None, scores_path.strip() or None, replace)


def export_name(pool: str, s: Settings, kind: str) -> str:
    """A download's file name that says what it holds (every export was `demo-selected.jsonl`), e.g.
    `demo-overlap-top10-union-selected.jsonl`."""
    cut_kind, value = next((k, v) for k, v in vars(s.cut).items() if v is not None)
    cut = {"ratio": "ratio", "top": "top", "min_score": "min"}[cut_kind] + f"{value:g}"
    return f"{pool}-{s.options.method}-{cut}-{s.merge}-{kind}.jsonl"


def _write(studio: Studio, selection, out: str | None, scores: str | None, replace: bool) -> None:
    """The write form's export, by the rules `nait select --out/--scores [--force]` follows, inside the data
    root only; says what was written, and only that."""
    c = studio.config
    try:
        if out is None and scores is None:
            raise ValueError("give a path to write the selection (or the scores) to")
        for path, what in ((out, "the selection path"), (scores, "the scores path")):
            if path is not None:
                guard.check_output(path, what, c.root)
        check_output_paths(
            {"the selection path": out, "the scores path": scores},
            {"the pool": [c.pool], "the target": list(c.targets)},
            force=replace,
        )
    except ValueError as error:
        hint = " (in the app, --force is “Replace an existing file”)" if "already exists" in str(error) else ""
        st.error(f"Not written: {error}{hint}")
        return
    try:
        notes = export(studio.pool.records, selection, out, scores)
    except OSError as error:
        st.error(f"Could not write the file: {error}")
        return
    if out is not None:
        st.success(f"Wrote {len(selection.indices):,} records to {out}")
    if scores is not None:
        st.success(f"Wrote the scores of {len(selection.score):,} records to {scores}")
    _export_warnings(selection, notes)


def _export_warnings(selection, notes: list[str]) -> None:
    """Say what `nait select` says after an export: never a silent change or a silently dropped record."""
    for headline, details in export_warnings(selection, notes):
        st.warning(headline + ("\n\n" + "\n".join(f"- {line}" for line in details) if details else ""))


def _download(studio: Studio, s: Settings, kind: str, made) -> tuple[bytes, list[str]]:
    """The JSONL bytes of the lines `made()` returns under settings `s`, with its notes; made once per
    settings (kept for the last few)."""
    key = (s, kind)
    if key not in studio.downloads:
        if len(studio.downloads) >= 8:
            studio.downloads.clear()
        lines, notes = made()
        studio.downloads[key] = ("".join(f"{line}\n" for line in lines).encode("utf-8"), notes)
    return studio.downloads[key]
