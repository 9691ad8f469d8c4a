"""What a `nait eval` results record says: each arm's status, the arm × metric table, Plotly charts, what
each arm trained on, and paired comparisons (a paired bootstrap interval of the difference in held-out loss
and a sign test, problem by problem); `results_markdown` is results.md."""

from __future__ import annotations

import math

import numpy as np

from .settings import BINS, arms_of, settings_from_json


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


# ---------------------------------------------------------------- paired comparison


def group_per_problem(results: dict, target: str) -> dict[str, dict]:
    """Per arm group with per-problem losses for `target`: `nll` per held-out problem (the mean over the
    group's runs, e.g. random seeds), `tokens`, and `runs`. Arms from runs that kept no per-problem
    losses (older results) are left out."""
    groups: dict[str, list[dict]] = {}
    for arm in results["arms"].values():
        detail = (arm.get("per_problem") or {}).get(target)
        if detail and detail.get("nll") is not None:
            groups.setdefault(arm["group"], []).append(detail)
    out = {}
    for group, details in groups.items():
        tokens = details[0]["tokens"]
        if any(d["tokens"] != tokens for d in details):
            raise ValueError(f"arm {group!r}: its runs measured different held-out tokens for {target}")
        out[group] = {
            "nll": np.mean([d["nll"] for d in details], axis=0),
            "tokens": np.asarray(tokens, dtype=np.float64),
            "runs": len(details),
        }
    return out


def paired_bootstrap(
    nll_a, nll_b, tokens, resamples: int = 10000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Difference in token-weighted mean loss, A − B, over the same problems, and its percentile
    bootstrap interval: problems resampled with replacement, each keeping its pair (A's and B's loss
    of the same problem), so what the two arms share (problem difficulty) cancels."""
    diff, tokens = np.asarray(nll_a, float) - np.asarray(nll_b, float), np.asarray(tokens, float)
    observed = float(diff.sum() / tokens.sum())
    rng = np.random.default_rng(seed)
    stats = []
    for start in range(0, resamples, 1000):  # chunks bound the index matrix's memory
        rows = rng.integers(0, len(diff), size=(min(1000, resamples - start), len(diff)))
        stats.append(diff[rows].sum(1) / tokens[rows].sum(1))
    low, high = np.quantile(np.concatenate(stats), [(1 - level) / 2, (1 + level) / 2])
    return observed, float(low), float(high)


def sign_test(nll_a, nll_b) -> tuple[int, int, int, float]:
    """Problems where A's loss is lower (wins), higher (losses), equal (ties), and the exact two-sided
    binomial p-value of wins vs losses (ties dropped) under "either arm equally likely to win"."""
    a, b = np.asarray(nll_a, float), np.asarray(nll_b, float)
    wins, losses = int((a < b).sum()), int((a > b).sum())
    n = wins + losses
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n if n else 1.0
    return wins, losses, len(a) - n, min(1.0, 2 * tail)


def paired_comparison(results: dict, target: str, reference: str, resamples: int = 10000, seed: int = 0) -> list[dict]:
    """Every other arm group against `reference` on `target`'s held-out loss, problem by problem: the
    difference (arm − reference; negative = the arm has the lower loss) with its 95 % paired bootstrap
    interval, and a sign test over problems. Groups of several runs use each problem's mean loss over
    their runs: the interval covers the choice of problems, not the spread between seeds."""
    groups = group_per_problem(results, target)
    if reference not in groups:
        return []
    ref = groups[reference]
    rows = []
    for group, g in groups.items():
        if group == reference:
            continue
        if not np.array_equal(g["tokens"], ref["tokens"]):
            raise ValueError(f"arms {group!r} and {reference!r} measured different held-out tokens for {target}")
        diff, low, high = paired_bootstrap(g["nll"], ref["nll"], ref["tokens"], resamples, seed)
        wins, losses, ties, p = sign_test(g["nll"], ref["nll"])
        rows.append(
            {
                "arm": group,
                "reference": reference,
                "target": target,
                "runs": g["runs"],
                "reference_runs": ref["runs"],
                "problems": len(ref["tokens"]),
                "difference": diff,
                "low": low,
                "high": high,
                "wins": wins,
                "losses": losses,
                "ties": ties,
                "sign_p": p,
            }
        )
    return rows


def comparison_references(results: dict, target: str) -> list[str]:
    """The arms other arms are compared with in results.md: `overlap` and `random` where present, else
    the first arm with per-problem losses."""
    groups = list(group_per_problem(results, target))
    return [g for g in ("overlap", "random") if g in groups] or groups[:1]


def comparison_table(rows: list[dict]) -> str:
    lines = [
        "| arm | vs | problems | loss difference (arm − vs) | 95 % interval | arm lower / higher / tie | sign test p |",
        "|---" * 7 + "|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arm']} ({r['runs']}) | {r['reference']} ({r['reference_runs']}) | {r['problems']} | "
            f"{r['difference']:+.4f} | [{r['low']:+.4f}, {r['high']:+.4f}] | "
            f"{r['wins']} / {r['losses']} / {r['ties']} | {r['sign_p']:.3g} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- does closeness predict gain? (score bins)


def bin_rows(results: dict, target: str, resamples: int = 10000, seed: int = 0) -> list[dict]:
    """Held-out loss on `target` per score bin of each method run with bins (`nait eval --bins`): per method,
    a row per bin in BINS order (its arm, train records, token-weighted loss and, when the run has random
    arms, the paired difference arm − random with its 95 % interval), then a row `bottom vs top`: the bottom
    bin's loss minus the top's, paired over the same problems. Methods with one finished bin are left out."""
    groups = group_per_problem(results, target)
    by_method: dict[str, dict[str, str]] = {}
    for name, arm in results["arms"].items():
        if arm.get("kind") == "method" and name in groups:  # results from before bins: every method arm is top
            by_method.setdefault(arm["method"], {})[arm.get("bin") or "top"] = name
    random = groups.get("random")

    def paired(a: dict, b: dict, names: tuple[str, str]) -> tuple[float, float, float]:
        if not np.array_equal(a["tokens"], b["tokens"]):
            raise ValueError(f"arms {names[0]!r} and {names[1]!r} measured different held-out tokens for {target}")
        return paired_bootstrap(a["nll"], b["nll"], b["tokens"], resamples, seed)

    rows = []
    for method, bins in by_method.items():
        if len(bins) < 2:
            continue
        for b in (b for b in BINS if b in bins):
            g, name = groups[bins[b]], bins[b]
            diff = low = high = None
            if random is not None:
                diff, low, high = paired(g, random, (name, "random"))
            rows.append(
                {
                    "method": method,
                    "bin": b,
                    "arm": name,
                    "train_records": results["arms"][name].get("n_train"),
                    "loss": float(g["nll"].sum() / g["tokens"].sum()),
                    "against": "random" if random is not None else None,
                    "against_loss": None if random is None else float(random["nll"].sum() / random["tokens"].sum()),
                    "difference": diff,
                    "low": low,
                    "high": high,
                }
            )
        if "top" in bins and "bottom" in bins:
            diff, low, high = paired(groups[bins["bottom"]], groups[bins["top"]], (bins["bottom"], bins["top"]))
            rows.append(
                {
                    "method": method,
                    "bin": "bottom vs top",
                    "arm": None,
                    "train_records": None,
                    "loss": None,
                    "against": "top",
                    "against_loss": None,
                    "difference": diff,
                    "low": low,
                    "high": high,
                }
            )
    return rows


def bins_table(rows: list[dict]) -> str:
    """Markdown of `bin_rows`."""
    lines = [
        "| method | bin | train records | held-out loss | against | difference | 95 % interval |",
        "|---" * 7 + "|",
    ]
    for r in rows:
        loss = "—" if r["loss"] is None else f"{r['loss']:.4f}"
        records = "—" if r["train_records"] is None else str(r["train_records"])
        if r["difference"] is None:
            paired = "— | — | —"
        else:
            paired = f"{r['against']} | {r['difference']:+.4f} | [{r['low']:+.4f}, {r['high']:+.4f}]"
        lines.append(f"| {r['method']} | {r['bin']} | {records} | {loss} | {paired} |")
    return "\n".join(lines)


def bins_finding(rows: list[dict], target: str) -> str:
    """One plain sentence per method on what its `bottom vs top` row shows, and what the interval covers."""
    sentences = []
    tops = {r["method"]: r for r in rows if r["bin"] == "top" and r["difference"] is not None}
    for r in rows:
        if r["bin"] != "bottom vs top":
            continue
        figures = f"bottom − top {r['difference']:+.4f}, 95 % interval [{r['low']:+.4f}, {r['high']:+.4f}]"
        if r["low"] > 0:
            what = "its top bin (the closest records) gave a lower held-out loss than its bottom bin"
        elif r["high"] < 0:
            what = "its bottom bin (the farthest records) gave a lower held-out loss than its top bin: closeness did not predict gain"
        else:
            what = "the interval holds 0: these figures do not show that closeness predicts gain"
        sentences.append(f"`{r['method']}` on {target}: {what} ({figures}){_against_random(tops.get(r['method']))}.")
    if sentences:
        sentences.append("The intervals are paired over held-out problems; they do not cover the training seed.")
    return " ".join(sentences)


def _against_random(top: dict | None) -> str:
    """The clause saying whether the top bin beat random records, so "closer is better" is never read as "better
    than no selection" when it is not."""
    if top is None:
        return ""
    figures = f"top − random {top['difference']:+.4f} [{top['low']:+.4f}, {top['high']:+.4f}]"
    if top["high"] < 0:
        return f"; its top bin also beat random records ({figures})"
    if top["low"] > 0:
        return f"; but random records did better than its top bin ({figures})"
    return f"; its top bin and random records tie ({figures})"


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
