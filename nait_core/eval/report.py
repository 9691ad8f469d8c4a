"""What a `nait eval` results record says: each arm's status, the arm × metric table, Plotly charts and what
each arm trained on; `results_markdown` is results.md, with the paired comparisons of `compare`."""

from __future__ import annotations

import numpy as np

from .compare import bin_rows, bins_finding, bins_table, comparison_references, comparison_table, paired_comparison
from .settings import arms_of, settings_from_json


def arm_status(results: dict) -> list[dict]:
    """Every arm the run's settings call for, in run order, with its status: `finished` (trained and
    measured) or `pending` (`selection_saved` when its selection is already computed)."""
    try:
        planned = [a.name for a in arms_of(settings_from_json(results["settings"]))]
    except (TypeError, ValueError):  # settings from another version: the arms on file only
        planned = []
    rows = []
    for name in planned + [n for n in results["arms"] if n not in planned]:
        arm = results["arms"].get(name)
        rows.append(
            {
                "arm": name,
                "status": "finished" if arm else "pending",
                "selection_saved": name in results.get("selections", {}),
                "train_records": (arm or {}).get("n_train"),
                "device": (arm or {}).get("device"),
                "train_precision": (arm or {}).get("train_precision"),
                "final_train_loss": (arm or {}).get("final_train_loss"),
                "train_seconds": (arm or {}).get("train_seconds"),
                "measure_seconds": (arm or {}).get("measure_seconds"),
                "finished_at": (arm or {}).get("finished_at"),
            }
        )
    return rows


def summary(results: dict) -> list[dict]:
    """One row per arm group: each metric's mean, spread (sample std over seeds) and count."""
    groups: dict[str, list[dict]] = {}
    for arm in results["arms"].values():
        groups.setdefault(arm["group"], []).append(arm)
    rows = []
    for group, arms in groups.items():
        row = {"arm": group, "runs": len(arms), "train_records": arms[0].get("n_train"), "metrics": {}}
        names = {f"{t}/{m}" for a in arms for t, ms in a["metrics"].items() for m in ms}
        for name in sorted(names):
            target, metric = name.rsplit("/", 1)
            values = np.array([a["metrics"][target][metric] for a in arms if metric in a["metrics"].get(target, {})])
            row["metrics"][name] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "n": int(len(values)),
            }
        rows.append(row)
    return rows


def results_table(results: dict) -> str:
    """Markdown table, arm × metric, "mean ± std (n)" where an arm has several seeds."""
    rows = summary(results)
    names = sorted({name for row in rows for name in row["metrics"]})
    lines = ["| arm | runs | train records | " + " | ".join(names) + " |", "|---" * (3 + len(names)) + "|"]
    for row in rows:
        cells = []
        for name in names:
            m = row["metrics"].get(name)
            cells.append("" if m is None else f"{m['mean']:.4f}" + (f" ± {m['std']:.4f}" if m["n"] > 1 else ""))
        train = "—" if row["train_records"] is None else str(row["train_records"])
        lines.append(f"| {row['arm']} | {row['runs']} | {train} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_figures(results: dict) -> dict:
    """One Plotly dot chart per metric: each arm group's mean (diamond) and every run of it (dots, one per
    seed). Dots rather than bars from 0: arms differ by little next to a loss's size, and a ± sd bar would
    reach below 0 for a rate."""
    import plotly.graph_objects as go

    rows = summary(results)
    figures = {}
    for name in sorted({n for row in rows for n in row["metrics"]}):
        target, metric = name.rsplit("/", 1)
        have = [row for row in rows if name in row["metrics"]]
        runs = [
            (arm["group"], arm["metrics"][target][metric], run)
            for run, arm in results["arms"].items()
            if metric in arm["metrics"].get(target, {})
        ]
        figure = go.Figure(
            [
                go.Scatter(
                    x=[row["arm"] for row in have],
                    y=[row["metrics"][name]["mean"] for row in have],
                    mode="markers",
                    name="mean",
                    marker={"symbol": "diamond", "size": 13},
                    hovertext=[
                        f"mean of {row['runs']} run(s), {row['train_records'] or 0} train records" for row in have
                    ],
                ),
                go.Scatter(
                    x=[g for g, _, _ in runs],
                    y=[v for _, v, _ in runs],
                    mode="markers",
                    name="each run",
                    marker={"size": 7, "opacity": 0.6},
                    hovertext=[n for _, _, n in runs],
                ),
            ]
        )
        figure.update_layout(title=name, xaxis_title="arm", yaxis_title=metric, template="plotly_white")
        figures[name] = figure
    return figures


def _device(name: str | None) -> str:
    # "cuda" (a setting) and "cuda:0" (the model's device) are the same card
    return name.removesuffix(":0") if name else "an unrecorded device"


def device_note(results: dict) -> str:
    """Where arms ran, when they did not all run on one device (a run resumed elsewhere), and which
    arms' training itself was resumed on another device; else ""."""
    arms = results["arms"]
    lines = []
    if len({_device(arm.get("device")) for arm in arms.values()}) > 1:
        where: dict[str, list[str]] = {}
        for name, arm in arms.items():
            precision = arm.get("train_precision")
            label = _device(arm.get("device")) + (f", trained in {precision}" if precision else "")
            where.setdefault(label, []).append(name)
        lines.append(
            "Arms ran on more than one device: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in where.items()) + "."
        )
    for name, arm in arms.items():
        segments = arm.get("train_segments")
        if segments and len({(_device(s["device"]), s["precision"]) for s in segments}) > 1:
            stretches = [
                f"steps {s['steps'][0]}–{s['steps'][1]} on {_device(s['device'])}"
                + (f" in {s['precision']}" if s["precision"] else "")
                for s in segments
            ]
            lines.append(f"{name} was trained in stretches: " + ", ".join(stretches) + ".")
        elif arm.get("train_resumed_at_step") and not segments:  # resumed before stretches were recorded
            step = arm["train_resumed_at_step"]
            lines.append(f"{name} resumed at step {step} from a checkpoint; where steps 1–{step} ran is not recorded.")
    return " ".join(lines)


def composition_table(results: dict) -> str:
    """Markdown: arm × (records, planted, each kind's count)."""
    comp = results.get("composition") or {}
    if not comp:
        return ""
    kinds = list(dict.fromkeys(k for c in comp.values() for k in c["kinds"]))
    lines = ["| arm | records | planted | " + " | ".join(kinds) + " |", "|---" * (3 + len(kinds)) + "|"]
    for name, c in comp.items():
        lines.append(
            f"| {name} | {c['n']} | {c['planted']} | " + " | ".join(str(c["kinds"].get(k, 0)) for k in kinds) + " |"
        )
    return "\n".join(lines)


def results_markdown(results: dict) -> str:
    """results.md: the metric table, the paired comparisons per target, and what each arm selected."""
    parts = [results_table(results)] + [note for note in [device_note(results)] if note]
    for target in (results.get("settings") or {}).get("targets") or []:
        try:
            for reference in comparison_references(results, target):
                rows = paired_comparison(results, target, reference)
                if rows:
                    parts.append(
                        f"Paired comparison on {target} held-out loss, against `{reference}` "
                        "(negative: lower loss than it; runs in brackets):\n\n" + comparison_table(rows)
                    )
            if rows := bin_rows(results, target):
                parts.append(
                    f"Held-out loss per score bin on {target} (does closeness predict gain? each bin the ratio's "
                    "count of records from the top, the middle or the bottom of the method's ranking; paired "
                    "intervals over problems):\n\n" + bins_table(rows) + "\n\n" + bins_finding(rows, target)
                )
        except ValueError as error:  # arms measured on other tokens: say so, never lose the table above
            parts.append(f"No paired comparison on {target}: {error}")
    if results.get("composition"):
        parts.append("What each arm trained on (records by kind):\n\n" + composition_table(results))
    return "\n\n".join(parts)
