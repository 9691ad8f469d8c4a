"""Paired comparisons of `nait eval` arms, problem by problem: a paired bootstrap interval of the difference in
held-out loss and a sign test, against a reference arm and across score bins (does closeness predict gain?).
`report` puts them in results.md."""

from __future__ import annotations

import math

import numpy as np

from .settings import BINS

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
