"""`nait eval`: fine-tune the same base model on each selection ("arm") and measure the target skill.

Arms: each scoring method at a ratio (NAIT methods through `pipeline.run_select`, `ifd`/`length` from
`baselines`), `random#<seed>` at the same ratio for several seeds, `full` (the whole pool at the set
epochs), `full-matched` (the whole pool, stopped after as many optimiser steps as a selection arm
takes: the Trainer's seeded shuffle decides which records those steps see), `subset:<file>` (a JSONL
subset the user brings), and `base` (the model without tuning).

Per held-out record, each arm's summed response loss and token count are kept (`per_problem`), so two
arms can be compared problem by problem (`paired_comparison`: a paired bootstrap interval of the
difference in loss and a sign test). What each arm selected is counted by kind (`composition`: a
record's `origin` field, as `bench/make_rare_pool.py` writes it, else its source) and planted records
(`"planted": true`).

Each target set is split once, by seed, into a feature part (builds the capability feature) and a
held-out part (measured); the held-out part is never given to selection or training, and held-out
records that also occur in the pool or a subset are left out of the measurement and counted.

Two phases. Phase 1 computes every arm's selection with one loaded model and saves the indices;
phase 2 trains and measures one arm at a time on a freshly loaded model. `results.json` (every number
and the exact settings) and `results.md` (the table) are rewritten atomically after each step, so an
interrupted run resumes at the next unfinished arm and finished arms are never lost.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from .baselines import BASELINES, baseline_scores
from .capture import DEFAULT_STORE_ROOT
from .data import Dataset, content_hash, read_records
from .finetune import FINETUNE_METHODS, FinetuneSettings, TrainProgress, finetune, planned_steps
from .metrics import MeasureSettings, measure_per_problem
from .models import BUNDLED_MODEL, LoadedModel, add_model_args, model_from_args
from .pipeline import load_data, run_select, unique_names
from .progress import ProgressCallback
from .scoring import METHODS, ScoreOptions
from .selection import MERGES, Cut

ARM_METHODS = METHODS + BASELINES
FULL_STEPS = ("epoch", "matched", "both")  # which full-pool arms: its own epochs, step-matched, or both


@dataclass(frozen=True)
class EvalSettings:
    model: str = BUNDLED_MODEL
    device: str | None = None
    dtype: str | None = None
    neuron_module: str | None = None
    trust_remote_code: bool = False
    candidates: str = "demo"
    candidates_limit: int | None = None  # seeded random sample of the pool (split_seed)
    targets: tuple[str, ...] = ("gsm8k",)
    methods: tuple[str, ...] = ("overlap", "nait-pca", "ifd", "random")
    ratio: float = 0.1
    random_seeds: tuple[int, ...] = (0, 1, 2)
    full: bool = True
    full_steps: str = "epoch"  # FULL_STEPS
    base: bool = True
    subsets: tuple[str, ...] = ()  # JSONL files, each trained on as it is
    feature_size: int = 64  # target records that build the feature
    heldout_size: int = 100  # target records measured (never selected or trained on)
    split_seed: int = 0
    merge: str = "union"
    store_dir: str = str(DEFAULT_STORE_ROOT)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    measure: MeasureSettings = field(default_factory=MeasureSettings)

    def __post_init__(self):
        unknown = set(self.methods) - set(ARM_METHODS)
        if unknown:
            raise ValueError(f"unknown methods {sorted(unknown)}; choose from {', '.join(ARM_METHODS)}")
        Cut(ratio=self.ratio)  # validates the ratio
        if self.merge not in MERGES:
            raise ValueError(f"unknown merge {self.merge!r}; choose from {', '.join(MERGES)}")
        if self.full_steps not in FULL_STEPS:
            raise ValueError(f"unknown full-steps {self.full_steps!r}; choose from {', '.join(FULL_STEPS)}")

    def to_json(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


@dataclass(frozen=True)
class Arm:
    name: str  # "base", "full", "full-matched", "overlap", "random#1", "subset:mine"
    kind: str  # "base", "full", "full-matched", "method", "random", "subset"
    method: str | None = None
    seed: int | None = None
    path: str | None = None

    @property
    def group(self) -> str:
        """Arms that differ only by seed share a group (a row of the table)."""
        return self.name.split("#")[0]


def arms_of(settings: EvalSettings) -> list[Arm]:
    arms = [Arm("base", "base")] if settings.base else []
    for method in settings.methods:
        if method == "random":
            arms += [Arm(f"random#{s}", "random", "random", s) for s in settings.random_seeds]
        else:
            arms.append(Arm(method, "method", method))
    if settings.full and settings.full_steps in ("epoch", "both"):
        arms.append(Arm("full", "full"))
    if settings.full and settings.full_steps in ("matched", "both"):
        arms.append(Arm("full-matched", "full-matched"))
    arms += [Arm(name, "subset", path=p) for name, p in zip(subset_names(settings), settings.subsets)]
    return arms


def subset_names(settings: EvalSettings) -> list[str]:
    """`subset:<file stem>`, with `-2`, `-3`… for repeated stems ('#' is kept for seeds)."""
    return [name.replace("#", "-") for name in unique_names([f"subset:{Path(p).stem}" for p in settings.subsets])]


# ---------------------------------------------------------------- data

def _key(record) -> str:
    return json.dumps(record.conversation, sort_keys=True)


def split_target(dataset: Dataset, feature_size: int, heldout_size: int, seed: int) -> tuple[Dataset, Dataset]:
    """Disjoint (feature part, held-out part) of a target, drawn by seed, each kept in input order."""
    order = np.random.default_rng(seed).permutation(len(dataset))
    feature, heldout = np.sort(order[:feature_size]), np.sort(order[feature_size: feature_size + heldout_size])
    if len(feature) == 0 or len(heldout) == 0:
        raise ValueError(f"target {dataset.name!r} has {len(dataset)} records: too few for a feature part of "
                         f"{feature_size} and a held-out part")
    return (dataset.subset(feature, f"{dataset.name}-feature-n{len(feature)}-s{seed}"),
            dataset.subset(heldout, f"{dataset.name}-heldout-n{len(heldout)}-s{seed}"))


@dataclass
class EvalData:
    pool: Dataset
    features: list[Dataset]  # per target: the part that builds the feature
    heldout: list[Dataset]  # per target: the part measured, minus records seen in the pool or a subset
    excluded: list[int]  # per target: held-out records left out because the pool or a subset holds them
    subsets: dict[str, Dataset]


def data_fingerprint(data: EvalData) -> dict:
    """Content hashes of every input: saved selections are indices into the pool, so a resumed run
    must see the very same data."""
    digest = lambda d: content_hash(_key(r) for r in d.records)  # noqa: E731
    return {"pool": digest(data.pool), "features": [digest(d) for d in data.features],
            "heldout": [digest(d) for d in data.heldout], "subsets": {k: digest(d) for k, d in data.subsets.items()}}


def load_eval_data(settings: EvalSettings) -> EvalData:
    pool = load_data(settings.candidates, limit=settings.candidates_limit, seed=settings.split_seed)
    subsets = {name: read_records(p) for name, p in zip(subset_names(settings), settings.subsets)}
    seen = {_key(r) for d in [pool, *subsets.values()] for r in d.records}
    features, heldout, excluded = [], [], []
    for spec in settings.targets:
        feature, held = split_target(load_data(spec), settings.feature_size, settings.heldout_size, settings.split_seed)
        clean = [i for i, r in enumerate(held.records) if _key(r) not in seen]
        if not clean:  # nothing left to measure: say so before any selection or training
            raise ValueError(f"target {spec!r}: all {len(held)} held-out records are also in the pool or a subset, "
                             "so nothing is left to measure; use a target that is not part of the pool")
        features.append(feature)
        heldout.append(held.subset(clean))
        excluded.append(len(held) - len(clean))
    return EvalData(pool, features, heldout, excluded, subsets)


# ---------------------------------------------------------------- selections

def selection_indices(arm: Arm, data: EvalData, settings: EvalSettings, model: LoadedModel | None,
                      progress: ProgressCallback | None = None) -> list[int] | None:
    """Indices into the pool that `arm` trains on (None for base and subset arms). Only the feature
    parts of the targets are ever given to selection."""
    cut = Cut(ratio=settings.ratio)
    if arm.kind in ("full", "full-matched"):
        return list(range(len(data.pool)))
    if arm.kind == "random":
        return np.nonzero(cut.mask(baseline_scores("random", None, data.pool, seed=arm.seed)))[0].tolist()
    if arm.kind != "method":
        return None
    if arm.method in BASELINES:
        scores = baseline_scores(arm.method, model, data.pool, max_length=settings.finetune.max_length,
                                 progress=progress)
        return np.nonzero(cut.mask(scores))[0].tolist()
    result = run_select(model, data.pool, data.features, ScoreOptions(method=arm.method), cut, settings.merge,
                        settings.store_dir, progress=progress)
    return result.selection.indices.tolist()


def matched_steps(settings: EvalSettings, pool_size: int) -> int:
    """Optimiser steps of a selection arm at the ratio (single target, no record dropped by truncation):
    the length of the step-matched full arm."""
    return planned_steps(max(1, round(settings.ratio * pool_size)), settings.finetune)


def arm_finetune_settings(arm: Arm, settings: EvalSettings, pool_size: int) -> FinetuneSettings:
    if arm.kind == "full-matched":
        return dataclasses.replace(settings.finetune, max_steps=matched_steps(settings, pool_size))
    return settings.finetune


def training_set(arm: Arm, data: EvalData, indices: list[int] | None) -> Dataset | None:
    if arm.kind == "subset":
        return data.subsets[arm.name]
    return None if indices is None else data.pool.subset(indices, f"{data.pool.name}-{arm.name}")


# ---------------------------------------------------------------- results

def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def load_results(out: Path, settings: EvalSettings, fingerprint: dict) -> dict:
    """The results so far in `out`, or a fresh record. Refuses results made with other settings or data."""
    path = out / "results.json"
    if path.exists():
        results = json.loads(path.read_text(encoding="utf-8"))
        saved = {"settings": settings_from_json(results.get("settings") or {}).to_json(), "data": results.get("data")}
        for name, now in (("settings", settings.to_json()), ("data", fingerprint)):
            if saved[name] != now:
                raise ValueError(f"{path} was made with other {name}; give another output folder to start afresh "
                                 f"(or the same {name} to resume)")
        results["settings"] = settings.to_json()
        return results
    return {"settings": settings.to_json(), "data": fingerprint, "selections": {}, "arms": {}}


def save_results(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "results.json", json.dumps(results, indent=1))
    _atomic_write(out / "results.md", results_markdown(results) + "\n")


def settings_from_json(data: dict) -> EvalSettings:
    """The settings `EvalSettings.to_json` wrote (keys this version does not know are ignored)."""
    def build(cls, values: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names})

    top = {k: v for k, v in data.items() if k not in ("finetune", "measure")}
    return dataclasses.replace(build(EvalSettings, top), finetune=build(FinetuneSettings, data.get("finetune") or {}),
                               measure=build(MeasureSettings, data.get("measure") or {}))


def read_results(out: Path | str) -> dict:
    """`out/results.json` as written by `run_eval` (finished or still running). Raises FileNotFoundError
    or ValueError (not JSON, or not a results record) with a message for the user."""
    path = Path(out) / "results.json"
    if not Path(out).is_dir():
        raise FileNotFoundError(f"no folder {out}")
    if not path.is_file():
        raise FileNotFoundError(f"no results.json in {out}")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(results, dict) or not isinstance(results.get("settings"), dict) \
            or not isinstance(results.get("arms"), dict):
        raise ValueError(f"{path} is not a `nait eval` results file (it needs 'settings' and 'arms')")
    return results


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
        rows.append({"arm": name, "status": "finished" if arm else "pending",
                     "selection_saved": name in results.get("selections", {}),
                     "train_records": (arm or {}).get("n_train"),
                     "final_train_loss": (arm or {}).get("final_train_loss"),
                     "train_seconds": (arm or {}).get("train_seconds"),
                     "measure_seconds": (arm or {}).get("measure_seconds"),
                     "finished_at": (arm or {}).get("finished_at")})
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
            row["metrics"][name] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                                    "n": int(len(values))}
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
        runs = [(arm["group"], arm["metrics"][target][metric], run)
                for run, arm in results["arms"].items() if metric in arm["metrics"].get(target, {})]
        figure = go.Figure([
            go.Scatter(x=[row["arm"] for row in have], y=[row["metrics"][name]["mean"] for row in have], mode="markers",
                       name="mean", marker={"symbol": "diamond", "size": 13},
                       hovertext=[f"mean of {row['runs']} run(s), {row['train_records'] or 0} train records" for row in have]),
            go.Scatter(x=[g for g, _, _ in runs], y=[v for _, v, _ in runs], mode="markers", name="each run",
                       marker={"size": 7, "opacity": 0.6}, hovertext=[n for _, _, n in runs]),
        ])
        figure.update_layout(title=name, xaxis_title="arm", yaxis_title=metric, template="plotly_white")
        figures[name] = figure
    return figures


# ---------------------------------------------------------------- what each arm selected

def record_kind(record) -> str:
    """A record's kind for composition counts: its `origin` field if it has one, else its source."""
    origin = record.raw.get("origin")
    return origin if isinstance(origin, str) and origin else record.source


def composition(dataset: Dataset, general_except: tuple[str, ...] = (), examples: int = 5) -> dict:
    """What a training set holds: its size, how many records are planted (`"planted": true`), the count
    of each kind (most common first), and the first `examples` general records: neither planted nor of
    a kind in `general_except` (the targets' names)."""
    kinds: dict[str, int] = {}
    for record in dataset.records:
        kinds[record_kind(record)] = kinds.get(record_kind(record), 0) + 1
    general = [r for r in dataset.records if r.raw.get("planted") is not True and record_kind(r) not in general_except]
    return {"n": len(dataset), "planted": sum(r.raw.get("planted") is True for r in dataset.records),
            "kinds": dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
            "general_examples": [{"where": r.where, "kind": record_kind(r), "preview": r.preview(160)}
                                 for r in general[:examples]]}


def compositions(results: dict, data: EvalData, settings: EvalSettings) -> dict:
    """`composition` of every arm's training set (selected records; a subset's own records). For
    `full-matched` it is the whole pool, of which the arm's steps see a seeded sample."""
    out = {}
    for arm in arms_of(settings):
        train = training_set(arm, data, results["selections"].get(arm.name))
        if train is not None:
            out[arm.name] = composition(train, tuple(settings.targets))
    return out


def composition_table(results: dict) -> str:
    """Markdown: arm × (records, planted, each kind's count)."""
    comp = results.get("composition") or {}
    if not comp:
        return ""
    kinds = list(dict.fromkeys(k for c in comp.values() for k in c["kinds"]))
    lines = ["| arm | records | planted | " + " | ".join(kinds) + " |", "|---" * (3 + len(kinds)) + "|"]
    for name, c in comp.items():
        lines.append(f"| {name} | {c['n']} | {c['planted']} | " + " | ".join(str(c["kinds"].get(k, 0)) for k in kinds) + " |")
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
        out[group] = {"nll": np.mean([d["nll"] for d in details], axis=0), "tokens": np.asarray(tokens, dtype=np.float64),
                      "runs": len(details)}
    return out


def paired_bootstrap(nll_a, nll_b, tokens, resamples: int = 10000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float]:
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
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2 ** n if n else 1.0
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
        rows.append({"arm": group, "reference": reference, "target": target, "runs": g["runs"],
                     "reference_runs": ref["runs"], "problems": len(ref["tokens"]), "difference": diff,
                     "low": low, "high": high, "wins": wins, "losses": losses, "ties": ties, "sign_p": p})
    return rows


def comparison_references(results: dict, target: str) -> list[str]:
    """The arms other arms are compared with in results.md: `overlap` and `random` where present, else
    the first arm with per-problem losses."""
    groups = list(group_per_problem(results, target))
    return [g for g in ("overlap", "random") if g in groups] or groups[:1]


def comparison_table(rows: list[dict]) -> str:
    lines = ["| arm | vs | problems | loss difference (arm − vs) | 95 % interval | arm lower / higher / tie | sign test p |",
             "|---" * 7 + "|"]
    for r in rows:
        lines.append(f"| {r['arm']} ({r['runs']}) | {r['reference']} ({r['reference_runs']}) | {r['problems']} | "
                     f"{r['difference']:+.4f} | [{r['low']:+.4f}, {r['high']:+.4f}] | "
                     f"{r['wins']} / {r['losses']} / {r['ties']} | {r['sign_p']:.3g} |")
    return "\n".join(lines)


def results_markdown(results: dict) -> str:
    """results.md: the metric table, the paired comparisons per target, and what each arm selected."""
    parts = [results_table(results)]
    for target in (results.get("settings") or {}).get("targets") or []:
        try:
            for reference in comparison_references(results, target):
                rows = paired_comparison(results, target, reference)
                if rows:
                    parts.append(f"Paired comparison on {target} held-out loss, against `{reference}` "
                                 "(negative: lower loss than it; runs in brackets):\n\n" + comparison_table(rows))
        except ValueError as error:  # arms measured on other tokens: say so, never lose the table above
            parts.append(f"No paired comparison on {target}: {error}")
    if results.get("composition"):
        parts.append("What each arm trained on (records by kind):\n\n" + composition_table(results))
    return "\n\n".join(parts)


# ---------------------------------------------------------------- the run

@dataclass
class ArmProgress:
    arm: str
    index: int  # 1-based position among all arms
    total: int
    stage: str  # "select", "train", "measure", "done", "skip"
    train: TrainProgress | None = None
    detail: str = ""  # e.g. the capture's progress while selecting

    def describe(self) -> str:
        text = f"[{self.index}/{self.total}] {self.arm}: {self.stage}"
        return text + (f" · {self.train.describe()}" if self.train else "") + (f" · {self.detail}" if self.detail else "")


def run_eval(settings: EvalSettings, out: Path | str, load: Callable[[], LoadedModel] | None = None,
             progress: Callable[[ArmProgress], None] | None = None) -> dict:
    """Run (or resume) every arm; returns the results record also written to `out/results.json`.

    `load` returns a fresh base model each call (default: `model_from_args(settings)`)."""
    out = Path(out)
    load = load or (lambda: model_from_args(settings))  # the settings carry the same model options as the CLI
    report = progress or (lambda p: None)
    data = load_eval_data(settings)
    arms = arms_of(settings)
    results = load_results(out, settings, data_fingerprint(data))
    results["targets"] = {spec: {"feature": [r.where for r in f.records], "heldout": [r.where for r in h.records],
                                 "heldout_excluded_seen_in_training_data": n}
                          for spec, f, h, n in zip(settings.targets, data.features, data.heldout, data.excluded)}
    pending = [a for a in arms if a.name not in results["arms"]]
    needs_selection = [a for a in pending if a.kind in ("method", "random", "full", "full-matched")
                       and a.name not in results["selections"]]
    if needs_selection:  # phase 1: one model for every selection
        model = load() if any(a.kind == "method" for a in needs_selection) else None
        for arm in needs_selection:
            position = arms.index(arm) + 1
            report(ArmProgress(arm.name, position, len(arms), "select"))
            results["selections"][arm.name] = selection_indices(
                arm, data, settings, model,
                lambda p, a=arm.name, i=position: report(ArmProgress(a, i, len(arms), "select", detail=p.describe())))
            save_results(out, results)
        del model
    results["composition"] = compositions(results, data, settings)
    save_results(out, results)
    for i, arm in enumerate(arms, start=1):  # phase 2: train and measure, one arm at a time
        if arm.name in results["arms"]:
            report(ArmProgress(arm.name, i, len(arms), "skip"))
            continue
        train_data = training_set(arm, data, results["selections"].get(arm.name))
        model = load()
        started = time.perf_counter()
        network, trained_info = model.model, {}
        if train_data is not None:
            report(ArmProgress(arm.name, i, len(arms), "train"))
            run = finetune(model, train_data, arm_finetune_settings(arm, settings, len(data.pool)),
                           lambda p, a=arm.name, i=i: report(ArmProgress(a, i, len(arms), "train", p)))
            network = run.network
            trained_info = {"train_examples": run.examples, "train_dropped_truncated": run.dropped,
                            "final_train_loss": run.final_loss, "train_steps": run.steps}
        trained = time.perf_counter()
        report(ArmProgress(arm.name, i, len(arms), "measure"))
        measured = {spec: measure_per_problem(network, model.tokenizer, held, settings.measure)
                    for spec, held in zip(settings.targets, data.heldout)}
        metrics = {spec: m for spec, (m, _) in measured.items()}
        results["arms"][arm.name] = {
            "group": arm.group, "kind": arm.kind, "method": arm.method, "seed": arm.seed, "path": arm.path,
            "n_train": None if train_data is None else len(train_data), **trained_info,
            "train_seconds": trained - started, "measure_seconds": time.perf_counter() - trained,
            "metrics": metrics, "per_problem": {spec: detail for spec, (_, detail) in measured.items()},
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        save_results(out, results)
        report(ArmProgress(arm.name, i, len(arms), "done"))
        del model, network
    return results


# ---------------------------------------------------------------- command line

def _csv(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def add_eval_parser(subparsers) -> None:
    """Define `nait eval` on an argparse subparsers object."""
    defaults, ft, ms = EvalSettings(), FinetuneSettings(), MeasureSettings()
    p = subparsers.add_parser("eval", help="fine-tune on each selection and measure the target skill")
    p.add_argument("--out", required=True, type=Path, help="results folder (results.json, results.md); rerun to resume")
    add_model_args(p)
    p.add_argument("--candidates", default=defaults.candidates, help="candidate pool: a file or built-in name (default: demo)")
    p.add_argument("--candidates-limit", type=int, help="use a seeded random sample of this many pool records")
    p.add_argument("--target", action="append", help="target set, a file or built-in name; repeat for several (default: gsm8k)")
    p.add_argument("--methods", default=",".join(defaults.methods), help=f"comma-separated arms from {','.join(ARM_METHODS)}")
    p.add_argument("--ratio", type=float, default=defaults.ratio, help="share of the pool each method and random arm keeps")
    p.add_argument("--random-seeds", default=",".join(map(str, defaults.random_seeds)), help="seeds of the random arms")
    p.add_argument("--no-full", action="store_true", help="leave out the full-pool arms")
    p.add_argument("--full-steps", choices=FULL_STEPS, default=defaults.full_steps,
                   help="full pool at its own epochs (`full`), step-matched to a selection arm (`full-matched`), or both")
    p.add_argument("--no-base", action="store_true", help="leave out the untuned base arm")
    p.add_argument("--subset", action="append", default=[], help="a JSONL subset to train on as an arm; repeat for several")
    p.add_argument("--feature-size", type=int, default=defaults.feature_size, help="target records that build the feature")
    p.add_argument("--heldout-size", type=int, default=defaults.heldout_size, help="target records measured, never selected or trained on")
    p.add_argument("--split-seed", type=int, default=defaults.split_seed)
    p.add_argument("--merge", choices=MERGES, default=defaults.merge)
    p.add_argument("--store-dir", default=defaults.store_dir)
    g = p.add_argument_group("fine-tuning")
    g.add_argument("--finetune", choices=FINETUNE_METHODS, default=ft.method, help="lora (default) or full")
    g.add_argument("--epochs", type=float, default=ft.epochs)
    g.add_argument("--max-steps", type=int, default=ft.max_steps, help="> 0 overrides --epochs")
    g.add_argument("--lr", type=float, help="learning rate (default 2e-4 LoRA, 2e-5 full)")
    g.add_argument("--batch-size", type=int, default=ft.batch_size)
    g.add_argument("--grad-accum", type=int, default=ft.grad_accum)
    g.add_argument("--max-length", type=int, default=ft.max_length, help="tokens per training sample")
    g.add_argument("--lora-r", type=int, default=ft.lora_r)
    g.add_argument("--lora-alpha", type=int, default=ft.lora_alpha)
    g.add_argument("--seed", type=int, default=ft.seed, help="training seed, the same for every arm")
    g = p.add_argument_group("measurement")
    g.add_argument("--max-new-tokens", type=int, default=ms.max_new_tokens, help="greedy generation length (GSM8K, HumanEval)")
    g.add_argument("--gen-batch-size", type=int, default=ms.batch_size)
    g.add_argument("--gen-limit", type=int, help="generation metrics (GSM8K, HumanEval) on the first N held-out records only; the loss uses all")
    p.set_defaults(func=cmd_eval)


def settings_from_args(args) -> EvalSettings:
    return EvalSettings(
        model=args.model, device=args.device, dtype=args.dtype, neuron_module=args.neuron_module,
        trust_remote_code=args.trust_remote_code, candidates=args.candidates,
        candidates_limit=args.candidates_limit, targets=tuple(args.target or ("gsm8k",)), methods=_csv(args.methods),
        ratio=args.ratio, random_seeds=tuple(int(s) for s in _csv(args.random_seeds)), full=not args.no_full,
        full_steps=args.full_steps,
        base=not args.no_base, subsets=tuple(args.subset), feature_size=args.feature_size,
        heldout_size=args.heldout_size, split_seed=args.split_seed, merge=args.merge, store_dir=args.store_dir,
        finetune=FinetuneSettings(method=args.finetune, epochs=args.epochs, max_steps=args.max_steps,
                                  learning_rate=args.lr, batch_size=args.batch_size, grad_accum=args.grad_accum,
                                  max_length=args.max_length, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
                                  seed=args.seed),
        measure=dataclasses.replace(MeasureSettings(), max_new_tokens=args.max_new_tokens, batch_size=args.gen_batch_size,
                                    generate_limit=args.gen_limit),
    )


def progress_printer(every: float = 5.0, clock: Callable[[], float] = time.monotonic) -> Callable[[ArmProgress], None]:
    """Print each arm's stage changes and training steps, and its selection progress (one report per
    batch) at most every `every` seconds: a readable log rather than one line per batch."""
    last = {"key": None, "at": -float("inf")}

    def show(p: ArmProgress) -> None:
        key, now = (p.arm, p.stage), clock()
        if p.stage == "select" and p.detail and key == last["key"] and now - last["at"] < every:
            return
        last.update(key=key, at=now)
        print(p.describe(), file=sys.stderr)
    return show


def cmd_eval(args) -> None:
    settings = settings_from_args(args)
    results = run_eval(settings, args.out, progress=progress_printer())
    print(results_table(results))
    charts = Path(args.out) / "charts.html"
    _atomic_write(charts, "\n".join(f.to_html(full_html=False, include_plotlyjs=i == 0)
                                     for i, f in enumerate(results_figures(results).values())))
    print(f"results: {Path(args.out) / 'results.json'}, charts: {charts}", file=sys.stderr)
