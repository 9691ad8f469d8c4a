"""The shared sidebar: a form to pick the model, the candidate pool and the target sets (names, paths or
uploads), and a summary of what is loaded. Runs once per rerun from app.py, before the page.

A setup that fails to load is reported with st.error and the last working one is kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import streamlit as st

from nait_core import atomic
from nait_core.data import FORMATS
from nait_core.datasets import DEMO_RECORDS
from nait_core.models import BUNDLED_MODEL
from nait_core.sketch import RECOMMENDED_K
from nait_core.store import DEFAULT_REDUCTIONS

from . import guard
from .session import DEFAULT_EXACT_SAMPLE, USER_ERRORS, Config, Studio, forget_other_pool, load, settings, summary

DATA_HELP = (
    "a built-in name (demo, gsm8k, humaneval, mmlu, mmlu:<subject>); a file (.jsonl, .json, .parquet, "
    ".csv, .arrow); a folder written by datasets' save_to_disk (one split's folder for a DatasetDict); "
    "or a Hugging Face hub data set as hf:ID[:CONFIG[:SPLIT]], e.g. hf:openai/gsm8k:main:test"
)
UPLOAD_TYPES = ["jsonl", "json", "parquet", "csv", "arrow"]


def _save_upload(upload, root: str) -> str:
    """Keep an uploaded file under <root>/uploads/ (named by content) and return its path."""
    data = upload.getvalue()
    folder = Path(root) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:12]}-{Path(upload.name).name}"
    if not path.exists():  # atomically: a session never trusts a half-written upload
        atomic.write_bytes(path, data)
    return str(path)


def _form(current: Config) -> Config | None:
    """The setup form; returns the new config when submitted."""
    with st.sidebar.expander("Model and data", expanded=False), st.form("sb_form"):
        model = st.text_input(
            "Model",
            current.model,
            key="sb_model",
            help=f"'{BUNDLED_MODEL}' (bundled), a local Hugging Face folder, a hub id or a .gguf file",
        )
        pool = st.text_input("Candidate pool", current.pool, key="sb_pool", help=DATA_HELP)
        writable = not guard.read_only()  # a read-only app takes no uploads
        pool_upload = writable and st.file_uploader("…or upload a pool", type=UPLOAD_TYPES, key="sb_pool_upload")
        targets = st.text_area(
            "Target sets, one per line", "\n".join(current.targets), key="sb_targets", help=DATA_HELP
        )
        target_uploads = writable and st.file_uploader(
            "…and/or upload target files", type=UPLOAD_TYPES, accept_multiple_files=True, key="sb_target_uploads"
        )
        st.caption(f"Files and folders are read from inside the data root {guard.data_root()}.")
        size = st.number_input("Target samples (0 = all)", 0, 100_000, current.target_size, key="sb_target_size")
        fmt = st.selectbox(
            "Record format",
            ["auto", *FORMATS],
            key="sb_format",
            index=0 if current.fmt is None else 1 + FORMATS.index(current.fmt),
        )
        text_field = st.text_input("Text field (plain-text records)", current.text_field or "", key="sb_text_field")
        skip = st.checkbox("Skip invalid records (and list them)", current.skip_invalid, key="sb_skip_invalid")
        cols = st.columns(2)
        sketch = cols[0].number_input(
            "Compact pool: K (0 = exact)",
            0,
            65_536,
            current.sketch,
            key="sb_sketch",
            help=f"store K random projections per layer instead of every neuron, as `nait capture --sketch K` "
            f"(recommended {RECOMMENDED_K}): scores are estimates, per-neuron views use an exact sample; "
            "0 keeps every neuron",
        )
        exact_sample = cols[1].number_input(
            "Exact sample",
            0,
            1_000_000,
            current.exact_sample,
            key="sb_exact_sample",
            help="compact pools: this many seeded pool records are also captured exactly, for the per-neuron "
            "views and to calibrate the scores (`--exact-sample N`; 0: none). It is part of the pool's store key "
            "(scores depend on it), so a new size captures the pool again",
        )
        reductions = st.text_input(
            "Pool reductions",
            ",".join(current.reductions),
            key="sb_reductions",
            help="per-sample summaries stored, as `--reductions` (recommended for compact pools: mean,last-first)",
        )
        if not st.form_submit_button("Load"):
            return None
    target_list = [t.strip() for t in targets.splitlines() if t.strip()]
    target_list += [_save_upload(u, current.root) for u in target_uploads or []]
    return replace(
        current,
        model=model.strip(),
        pool=_save_upload(pool_upload, current.root) if pool_upload else pool.strip(),
        targets=tuple(target_list),
        target_size=int(size),
        fmt=None if fmt == "auto" else fmt,
        text_field=text_field.strip() or None,
        skip_invalid=skip,
        sketch=int(sketch),
        exact_sample=int(exact_sample),
        reductions=tuple(r.strip() for r in reductions.split(",") if r.strip()) or DEFAULT_REDUCTIONS,
    )


def _default_config() -> Config:
    """The setup the environment names (NAIT_*); a compact setting it gets wrong is said, and left out."""
    try:
        return Config()
    except ValueError as error:
        st.error(f"{error}: opening the pool exact")
        return Config(sketch=0, exact_sample=DEFAULT_EXACT_SAMPLE)


def sidebar() -> Studio | None:
    """Draw the sidebar, load (or reuse) the session, and keep it for the page. None if nothing loads."""
    st.session_state.pop("studio_summary_slot", None)  # a slot of an earlier run draws nowhere
    current = st.session_state.get("studio_config") or _default_config()
    wanted = _form(current) or current
    loaded = st.session_state.get("studio") if wanted == current else None
    for config in dict.fromkeys([wanted, current]) if loaded is None else []:  # new setup, else the last working one
        try:
            loaded = load(config)
            break
        except USER_ERRORS as error:
            st.error(f"Could not load this setup: {error}")
            if config != current:
                st.info("Keeping the previous setup.")
    if loaded is None:
        st.session_state.pop("studio_config", None)  # start again from the defaults next time
        return None
    st.session_state["studio_config"] = loaded.config
    st.session_state["studio"] = loaded
    forget_other_pool(loaded)
    s = st.sidebar
    s.caption(
        f"**Model** {loaded.model.name} · {loaded.model.n_layers} layers × {loaded.model.neurons_per_layer:,} neurons"
    )
    shrunk = loaded.pool.name == f"demo-{len(loaded.pool)}"  # the built-in demo at NAIT_DEMO_SIZE (datasets.py)
    part = f" of the demo's {DEMO_RECORDS:,} (NAIT_DEMO_SIZE)" if shrunk else ""
    s.caption(f"**Pool** {loaded.pool.name}: {len(loaded.pool):,} records{part}")
    if loaded.compact:
        sample = loaded.exact
        s.caption(
            f"**Compact pool** K = {loaded.sketch.k}: scores approximate; per-neuron views exact over "
            + (f"a {len(sample[1]):,}-record sample" if sample else "no sample (none was captured)")
        )
    s.caption("**Targets** " + ", ".join(f"{n} ({len(t)})" for n, t in zip(loaded.target_names, loaded.targets)))
    # A slot the Select & export page redraws when it changes the settings (this runs before the page).
    slot = s.empty()
    slot.caption(summary(settings()))
    st.session_state["studio_summary_slot"] = slot
    return loaded
