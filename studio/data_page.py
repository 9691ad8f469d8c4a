"""Page 1, Data & model: what is loaded, the capture status, and the feature library."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from nait_core.data import sample_rows
from nait_core.features import PCA_REDUCTIONS, FeatureError, build_feature, library
from nait_core.sketch import bytes_per_sample
from nait_core.words import counted

from . import exactness
from .session import Studio, store_bytes, store_listing


def _capture_rows(studio: Studio) -> pd.DataFrame:
    rows = []
    for role, data, report in [
        ("pool", studio.pool, studio.pool_report),
        *[("target", d, r) for d, r in zip(studio.targets, studio.target_reports)],
    ]:
        rows.append(
            {
                "role": role,
                "data": data.name,
                "records": len(data),
                "status": "reused from cache" if report.reused else f"captured ({report.tokens_per_second:,.0f} tok/s)",
                "truncated": report.truncated,
                "skipped invalid": len(report.skipped),
                "store size (MB)": round(store_bytes(report.store) / 1e6, 1),
                "store": report.store.path.name,
            }
        )
    if studio.compact and studio.exact is not None:  # the compact pool's exact sample: its own store
        sample, pool_rows = studio.exact
        rows.insert(
            1,
            {
                "role": "pool, exact sample",
                "data": sample.manifest["data"]["name"],
                "records": len(pool_rows),
                "status": "captured with the pool (exact)",
                "truncated": int(sample.per_sample("truncated").sum()),
                "skipped invalid": 0,
                "store size (MB)": round(store_bytes(sample) / 1e6, 1),
                "store": sample.path.name,
            },
        )
    return pd.DataFrame(rows)


def render(studio: Studio) -> None:
    st.title("Data & model")
    model = studio.model
    cols = st.columns(4)
    cols[0].metric("Model", model.name)
    cols[1].metric("Neurons", f"{model.n_layers} × {model.neurons_per_layer:,}", help="layers × MLP neurons per layer")
    cols[2].metric("Pool records", f"{len(studio.pool):,}")
    cols[3].metric("Target sets", len(studio.targets))
    if studio.compact:
        _compact(studio)

    st.subheader("Capture status")
    st.caption(
        "Each data set's per-sample neuron summaries live in a store on disk; a store is captured once, "
        "then reused. Change the model or the data in the sidebar."
    )
    st.dataframe(_capture_rows(studio), hide_index=True, width="stretch")
    skipped = [line for r in [studio.pool_report, *studio.target_reports] for line in r.skipped]
    if skipped:
        with st.expander(f"{len(skipped)} invalid records were skipped"):
            st.code("\n".join(skipped[:200]))
    with st.expander("Every store in the store folder"):
        st.dataframe(pd.DataFrame(store_listing(studio.config.root)), hide_index=True, width="stretch")

    st.subheader("Feature library")
    st.caption(
        "A capability feature summarises a target set: its expected activation of every neuron, and the "
        "paper's PCA direction per layer. Features are small files you can reuse on any pool."
    )
    folder = Path(studio.config.root) / "features"
    _build_form(studio, folder)
    features = pd.DataFrame(library(studio.config.root))  # each target store's own, then the ones built here
    if features.empty:
        st.info("No features yet.")
    else:
        st.dataframe(features, hide_index=True, width="stretch")


def _compact(studio: Studio) -> None:
    """What a compact pool keeps: K per layer, bytes per sample against an exact store, its exact sample."""
    store, k = studio.pool_store, studio.sketch.k
    exactness.note(
        studio,
        "per-neuron views (Neuron explorer, neuron tables, the map, shared neurons)",
        "scores and selections",
    )
    n = max(store.n_samples, 1)
    exact_bytes = bytes_per_sample(store.n_layers, store.n_neurons, len(store.reductions))
    cols = st.columns(3)
    cols[0].metric(
        "Pool summaries",
        f"compact, K = {k}",
        help=f"{k} seeded random projections per layer and reduction ({', '.join(store.reductions)}) instead "
        f"of {store.n_neurons:,} neurons (sketch seed {studio.sketch.seed}, {studio.sketch.kind})",
    )
    cols[1].metric(
        "Bytes per sample",
        f"{store_bytes(store) / n:,.0f} B",
        help=f"on disk, counts and headers included; exact summaries would take {exact_bytes:,} B "
        f"({exact_bytes / bytes_per_sample(store.n_layers, store.n_neurons, len(store.reductions), k):.1f}× more)",
    )
    sample = studio.exact
    cols[2].metric(
        "Exact sample",
        f"{len(sample[1]):,} records" if sample else "none",
        help="seeded pool records also captured exactly (`--exact-sample`), for the per-neuron views"
        + (f": store {sample[0].path.name}" if sample else ""),
    )


def _build_form(studio: Studio, folder: Path) -> None:
    with st.form("data_build"):
        st.markdown("**Build a new feature** from a loaded target set")
        names = studio.target_names
        target = st.selectbox("Target set", names, key="data_target")
        store = studio.target_stores[names.index(target)]
        if store.n_samples > 2:
            size = st.slider("Target samples used", 2, store.n_samples, store.n_samples, key="data_size")
        else:  # a slider needs min < max; a feature needs 2 samples, so a 2-sample target uses both
            size = store.n_samples
            st.caption(f"Target samples used: all {size} (a feature needs at least 2)")
        reductions = st.multiselect(
            "PCA reductions",
            PCA_REDUCTIONS,
            ["last-first", "mean"],
            key="data_reductions",
            help="last-first: last token minus first token (Eq. 2); mean: token mean; last: last token",
        )
        name = st.text_input("Feature name", f"{target}-n{size}", key="data_name")
        if not st.form_submit_button("Build feature"):
            return
    try:
        if not reductions:
            raise FeatureError("choose at least one reduction")
        indices = sample_rows(store.n_samples, size, seed=0)
        feature = build_feature(store, name.strip() or target, indices, tuple(reductions))
        path = feature.save(folder / f"{Path(name.strip() or target).name}.safetensors")
    except (FeatureError, ValueError, OSError) as error:
        st.error(f"Could not build the feature: {error}")
        return
    st.success(f"Built {feature.name} from {counted(size, 'sample')} of {target}: {path}")
