"""Page 7, Outcomes: the results of `nait eval` (fine-tune on each selection, measure the held-out targets).

Reads a results folder (`results.json`, rewritten after every arm), so a run still in progress can be
watched. Needs no loaded model: app.py skips the sidebar's setup on this page. Every number comes from
`nait_core.eval`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from nait_core import eval as evaluate
from nait_core.paths import OutsideRoot

from . import charts, guard, urlstate

DEFAULT_DIR = "runs/"
MAX_DEPTH = 3  # how deep below the folder to look for results.json


def default_dir() -> str:
    return os.environ.get("NAIT_EVAL_DIR") or DEFAULT_DIR


HOW_TO = (
    "Fine-tune on each selection and measure the held-out target with `nait eval`, e.g.\n\n"
    "```bash\nnait eval --candidates demo --target gsm8k --methods overlap,ifd --ratio 0.1 --out runs/gsm8k\n```\n\n"
    "Its results appear here as each arm finishes (the run may take an hour on a CPU; see docs/results.md)."
)


def _has_results(root: Path) -> bool:
    try:
        return root.is_dir() and bool(results_folders(root))
    except OSError:
        return False


def _readable(path: Path, allowed: list[Path]) -> bool:
    """Whether the page may read `path`: not a symlink (of it or a folder above) out of the data root."""
    try:
        guard.check_folder(path, "a results file", *allowed)
    except OutsideRoot:
        return False
    return True


def shipped_results() -> Path | None:
    """The recorded `nait eval` runs that ship with NAIT Studio: docs/results/ in a checkout, the `nait_app`
    copy in an installed wheel."""
    checkout = Path(__file__).resolve().parents[1] / "docs" / "results"
    if checkout.is_dir():
        return checkout
    from importlib.util import find_spec

    spec = find_spec("nait_app")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / "results").is_dir():
            return Path(folder) / "results"
    return None


def results_folders(root: Path) -> list[Path]:
    """`root` itself if it holds results.json, then its subfolders that do (up to MAX_DEPTH deep), sorted."""
    found = [root] if (root / "results.json").is_file() else []
    for depth in range(1, MAX_DEPTH + 1):
        found += sorted(p.parent for p in root.glob("/".join(["*"] * depth) + "/results.json") if p.is_file())
    return found


def metric_cell(metric: dict | None) -> str:
    """ "mean", or "mean ± std (n=k)" over seeds, as in results.md."""
    if metric is None:
        return ""
    return f"{metric['mean']:.4f}" + (f" ± {metric['std']:.4f} (n={metric['n']})" if metric["n"] > 1 else "")


def summary_frame(results: dict) -> pd.DataFrame:
    """Arm group × metric, from `evaluate.summary`."""
    rows = evaluate.summary(results)
    names = sorted({name for row in rows for name in row["metrics"]})
    return pd.DataFrame(
        [
            {
                "arm": row["arm"],
                "runs": row["runs"],
                "train records": "—" if row["train_records"] is None else str(row["train_records"]),
                **{name: metric_cell(row["metrics"].get(name)) for name in names},
            }
            for row in rows
        ],
        columns=["arm", "runs", "train records", *names],
    )


def status_frame(results: dict) -> pd.DataFrame:
    def seconds(value):
        return None if value is None else round(value, 1)

    return pd.DataFrame(
        [
            {
                "arm": s["arm"],
                "status": s["status"],
                "selection saved": "yes" if s["selection_saved"] else "—",
                "train records": "—" if s["train_records"] is None else str(s["train_records"]),
                "device": s["device"] or "",
                "precision": s["train_precision"] or "",
                "final train loss": s["final_train_loss"],
                "train s": seconds(s["train_seconds"]),
                "measure s": seconds(s["measure_seconds"]),
                "finished at": s["finished_at"] or "",
            }
            for s in evaluate.arm_status(results)
        ]
    )


def _settings(results: dict) -> None:
    raw = results["settings"]
    try:
        s = evaluate.settings_from_json(raw)
    except (TypeError, ValueError) as error:
        st.warning(f"These settings come from another version of nait ({error}); shown as saved.")
        st.json(raw, expanded=False)
        return
    ft, ms = s.finetune, s.measure
    targets = results.get("targets", {})

    def target(spec: str) -> str:
        info = targets.get(spec)
        if info is None:
            return spec
        excluded = info.get("heldout_excluded_seen_in_training_data", 0)
        return (
            f"{spec} ({len(info.get('feature', []))} build the feature, {len(info.get('heldout', []))} measured"
            + (f", {excluded} left out: seen in training data" if excluded else "")
            + ")"
        )

    pool = s.candidates + (f" (seeded sample of {s.candidates_limit})" if s.candidates_limit else "")
    length = f"{ft.max_steps} step{'s' * (ft.max_steps != 1)}" if ft.max_steps > 0 else f"{ft.epochs:g} epoch(s)"
    lora = f", LoRA r {ft.lora_r} α {ft.lora_alpha}" if ft.method == "lora" else ""
    generate = f", generation on the first {ms.generate_limit}" if ms.generate_limit else ""
    st.markdown(
        "\n".join(
            [
                f"- **Model** `{s.model}`{f' · {s.device}' if s.device else ''}{f' · {s.dtype}' if s.dtype else ''}",
                f"- **Pool** `{pool}` · **ratio** {s.ratio:g} · **merge** {s.merge}"
                + (f" · **score bins** {', '.join(s.bins)}" if len(s.bins) > 1 else ""),
                "- **Targets** " + "; ".join(target(t) for t in s.targets) + f" · split seed {s.split_seed}",
                f"- **Arms** {', '.join(a.name for a in evaluate.arms_of(s))}",
                f"- **Fine-tuning** {ft.method}{lora}, {length}, lr {ft.lr:g}, batch {ft.batch_size}×{ft.grad_accum}, "
                f"{ft.max_length} tokens, seed {ft.seed}",
                f"- **Measurement** {ms.max_new_tokens} new tokens (greedy){generate}, loss on {ms.max_length} tokens",
            ]
        )
    )
    with st.expander("All settings (as saved)"):
        st.json(raw, expanded=False)


# ---------------------------------------------------------------- paired comparison and composition


def comparison_frame(results: dict, target: str, reference: str) -> pd.DataFrame:
    """Each arm group against `reference`, problem by problem (`evaluate.paired_comparison`)."""
    rows = evaluate.paired_comparison(results, target, reference)
    return pd.DataFrame(
        [
            {
                "arm": f"{r['arm']} ({r['runs']} run{'s' * (r['runs'] != 1)})",
                "loss difference (arm − reference)": f"{r['difference']:+.4f}",
                "95 % interval": f"[{r['low']:+.4f}, {r['high']:+.4f}]",
                "interval": verdict(r),
                "problems: arm lower / higher / tie": f"{r['wins']} / {r['losses']} / {r['ties']}",
                "sign test p": f"{r['sign_p']:.3g}",
            }
            for r in rows
        ],
        columns=[
            "arm",
            "loss difference (arm − reference)",
            "95 % interval",
            "interval",
            "problems: arm lower / higher / tie",
            "sign test p",
        ],
    )


def verdict(row: dict) -> str:
    """Where the interval lies. Only over problems: not over training seeds, so it is no verdict alone."""
    if row["high"] < 0:
        return "interval below 0 (arm lower)"
    if row["low"] > 0:
        return "interval above 0 (arm higher)"
    return "interval holds 0"


def composition_frame(results: dict) -> pd.DataFrame:
    """Arm × (records, planted, count of each kind), from results.json's `composition`."""
    comp = results.get("composition") or {}
    kinds = list(dict.fromkeys(k for c in comp.values() for k in c["kinds"]))
    return pd.DataFrame(
        [
            {"arm": name, "records": c["n"], "planted": c["planted"], **{k: c["kinds"].get(k, 0) for k in kinds}}
            for name, c in comp.items()
        ],
        columns=["arm", "records", "planted", *kinds],
    )


def _evidence(results: dict) -> None:
    """The paired comparison of held-out losses and what each arm trained on; runs made before nait
    kept per-problem losses or compositions say so instead."""
    st.subheader("Paired comparison")
    targets = [t for t in (results["settings"].get("targets") or []) if evaluate.group_per_problem(results, t)]
    if not targets:
        st.info(
            "This run kept no per-problem held-out losses (made by an older `nait eval`), so arms cannot be "
            "compared problem by problem. Rerun it in a new folder to get them."
        )
    else:
        left, right = st.columns(2)
        target = left.selectbox("Target", targets, key="outcomes_compare_target")
        groups = list(evaluate.group_per_problem(results, target))
        preferred = evaluate.comparison_references(results, target)[0]
        reference = right.selectbox("Reference arm", groups, index=groups.index(preferred), key="outcomes_reference")
        st.caption(
            f"Each arm's token-weighted held-out loss on {target} minus `{reference}`'s, over the same problems; "
            "negative = lower loss than the reference. The 95 % interval is a paired bootstrap over problems "
            "(10,000 resamples, seed 0); an arm of several runs (random seeds) uses each problem's mean loss over "
            "them, so the interval covers the choice of problems, not the spread between seeds. The sign test "
            "counts problems where the arm's loss is lower or higher. Neither covers the training seed: rerun with "
            "another `--seed` before reading a small difference as a win."
        )
        st.table(comparison_frame(results, target, reference).set_index("arm"))
        _bins(results, target)
    st.subheader("What each arm trained on")
    comp = results.get("composition")
    if not comp:
        st.info("This run did not record what each arm selected (made by an older `nait eval`).")
        return
    st.caption(
        "Records of each kind (a record's `origin`, else its source); planted = records marked "
        '`"planted": true` by `bench/make_rare_pool.py`. `full-matched` can draw on the whole pool; its '
        "steps see a seeded sample of it."
    )
    st.table(composition_frame(results).set_index("arm"))
    with st.expander("General records each arm picked (first few, pool order)"):
        for name, c in comp.items():
            if c.get("general_examples") and name not in ("full", "full-matched"):
                st.markdown(
                    f"**{name}**\n\n" + "\n".join(f"- `{e['kind']}` {e['preview']}" for e in c["general_examples"])
                )


def bins_frame(rows: list[dict]) -> pd.DataFrame:
    """`evaluate.bin_rows` as the page's table shows it."""

    def signed(value):
        return "—" if value is None else f"{value:+.4f}"

    return pd.DataFrame(
        [
            {
                "method": r["method"],
                "bin": r["bin"],
                "train records": "—" if r["train_records"] is None else str(r["train_records"]),
                "held-out loss": "—" if r["loss"] is None else f"{r['loss']:.4f}",
                "against": r["against"] or "—",
                "difference": signed(r["difference"]),
                "95 % interval": "—" if r["low"] is None else f"[{r['low']:+.4f}, {r['high']:+.4f}]",
            }
            for r in rows
        ]
    )


def _bins(results: dict, target: str) -> None:
    """Does closeness predict gain? Held-out loss per score bin (`nait eval --bins`); nothing without bins."""
    rows = evaluate.bin_rows(results, target)
    if not rows:
        return
    st.subheader("Does closeness predict gain?")
    st.caption(
        "Each method's ranking cut into bins of the same number of records: its top (the method's own arm), "
        "its middle (centred on the median rank) and its bottom. If being closer to the target helps, the loss "
        "rises from top to bottom. Bars: the paired 95 % interval (over held-out problems) of each bin's "
        "difference from random, drawn around the bin's loss; dashed line: random's loss."
    )
    st.plotly_chart(charts.score_bins(rows, f"Held-out loss on {target} per score bin"), key="outcomes_bins")
    st.markdown(evaluate.bins_finding(rows, target))
    with st.expander("The figures"):
        st.table(bins_frame(rows).set_index(["method", "bin"]))


def informative(folder: Path) -> tuple[int, int]:
    """How much a run can show: its most arm groups with per-problem losses on one target (what the paired
    comparison compares), then its arms; (-1, -1) for a file that cannot be read."""
    try:
        return _informative(str(folder / "results.json"), (folder / "results.json").stat().st_mtime_ns)
    except OSError:
        return (-1, -1)


@st.cache_data(show_spinner=False, max_entries=64)
def _informative(path: str, mtime_ns: int) -> tuple[int, int]:
    try:
        results = evaluate.read_results(Path(path).parent)
        paired = max((len(evaluate.group_per_problem(results, t)) for t in results["settings"]["targets"]), default=0)
    except (OSError, ValueError, KeyError, TypeError):
        return (-1, -1)
    return (paired, len(results["arms"]))


def run_name(folder: Path, root: Path) -> str:
    """A run's name in the URL (`?run=`): its folder below the results folder ("." for the folder itself)."""
    return str(folder.relative_to(root))


def _results(folder: Path) -> None:
    try:
        results = evaluate.read_results(folder)
    except (OSError, ValueError) as error:
        st.error(f"Could not read the results: {error}")
        return
    status = evaluate.arm_status(results)
    done = sum(s["status"] == "finished" for s in status)
    st.progress(
        done / max(len(status), 1),
        text=f"{done} of {len(status)} arms finished"
        + ("" if done == len(status) else " (the run is in progress or was interrupted)"),
    )
    st.subheader("Settings")
    _settings(results)
    st.subheader("Held-out metrics")
    if not done:
        st.info("No arm has finished yet; this page shows each arm as soon as it is measured.")
    else:
        st.caption(
            "Mean over the finished runs of each arm; random arms: mean ± sample std over seeds (n runs). "
            "Loss: lower is better; exact_match, pass@1, accuracy: higher is better."
        )
        st.dataframe(summary_frame(results), hide_index=True, width="stretch", key="outcomes_table")
        if note := evaluate.device_note(results):  # a run resumed elsewhere: say which arms ran where
            st.caption(note)
        figures = evaluate.results_figures(results)
        columns = st.columns(2)
        for i, (name, figure) in enumerate(figures.items()):
            figure.update_layout(height=380, margin=dict(l=10, r=10, t=50, b=10))
            columns[i % 2].plotly_chart(figure, key=f"outcomes_chart_{name}")
    st.subheader("Arms")
    st.dataframe(status_frame(results), hide_index=True, width="stretch", key="outcomes_status")
    if done:
        try:
            _evidence(results)
        except (KeyError, TypeError, ValueError) as error:  # a results file of another version or a broken one
            st.warning(f"Cannot compare the arms problem by problem: {error}")


def render() -> None:
    st.title("Outcomes")
    st.caption("What fine-tuning on each selection did to the held-out target metrics (`nait eval --out <folder>`).")
    root_text = st.text_input(
        "Results folder",
        default_dir(),
        key="outcomes_root",
        help="a folder written by `nait eval --out`, or a folder holding several",
    )
    root = Path(root_text.strip() or ".").expanduser()
    shipped = shipped_results()
    allowed = [shipped] if shipped else []
    try:
        guard.check_folder(root, "the results folder", *allowed)
    except OutsideRoot as error:
        st.error(f"Not read: {error}")
        return
    if root_text == default_dir() and not _has_results(root):
        # Nothing run yet: open on the recorded runs rather than an error.
        st.info(
            f"No `nait eval` results in `{root}` yet. "
            + HOW_TO
            + ("\n\nMeanwhile, the recorded runs that ship with NAIT Studio:" if shipped else "")
        )
        if shipped is None or not results_folders(shipped):
            return
        root = shipped
    if not root.is_dir():
        st.error(f"No folder {root}. Give the folder `nait eval --out` wrote (or set NAIT_EVAL_DIR).")
        return
    try:
        folders = [f for f in results_folders(root) if _readable(f / "results.json", allowed)]
        if root == shipped:  # the recorded runs: the one with the most to compare
            first = max(range(len(folders)), key=lambda i: informative(folders[i]), default=0)
        else:  # the user's runs: the newest, maybe still running
            first = max(range(len(folders)), key=lambda i: (folders[i] / "results.json").stat().st_mtime, default=0)
    except OSError as error:
        st.error(f"Could not list the runs in {root}: {error}")
        return
    if not folders:
        st.error(f"No results.json in {root} or its subfolders. Run `nait eval --out {root / 'my-run'}` first.")
        return
    by_name = {run_name(f, root): f for f in folders}

    def listed(name: str) -> Path:  # a URL's run is only ever matched against the runs listed, never a path
        if name not in by_name:
            raise ValueError(f"not one of the runs listed in {root}")
        return by_name[name]

    urlstate.restore_settings()  # no session.show here (no pool needed): the link's scoring settings stay in it
    urlstate.follow(urlstate.Choice("run", "outcomes_run", folders[first], listed))
    if st.session_state.get("outcomes_run") not in folders:  # kept from another results folder
        st.session_state["outcomes_run"] = folders[first]
    folder = st.selectbox(
        "Run",
        folders,
        key="outcomes_run",
        help="the newest run is picked first"
        if root != shipped
        else "the recorded run with the most arms to compare is picked first",
        format_func=lambda p: f"{root} (this folder)" if p == root else run_name(p, root),
    )
    urlstate.put("run", run_name(folder, root))
    auto = st.toggle("Refresh every 15 s (watch a run in progress)", key="outcomes_auto")
    if st.button("Refresh now", key="outcomes_refresh"):
        pass  # the click itself reruns the page and rereads the file
    if auto:
        st.fragment(_results, run_every=15)(folder)
    else:
        _results(folder)
    urlstate.publish()
