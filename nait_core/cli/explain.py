"""`nait explain`: a neuron card or the shared-neuron table, as text or JSON, for scripted reports.

nait explain neuron L12.N345 --candidates demo --target gsm8k --target-size 64
nait explain shared --candidates demo --target gsm8k --target humaneval --target mmlu --json
"""

from __future__ import annotations

import json
import math

import numpy as np

from .. import explain
from ..capture import capture
from ..neuron_ids import parse_neuron_id
from ..pipeline import run_select, unique_names
from ..scoring import fire_thresholds
from ..spec import DEFAULT_CUT, DEFAULT_MERGE
from .options import (
    add_capture_args,
    add_data_args,
    add_model_args,
    add_score_args,
    capture_options,
    model_from_args,
    print_report,
    read_data,
    score_options,
    tqdm_progress,
)


def _jsonable(value):
    """Plain JSON: NumPy scalars become numbers, NaN becomes null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _print(obj, as_json: bool) -> None:
    print(json.dumps(_jsonable(obj.to_dict()), indent=2, ensure_ascii=False) if as_json else obj.text())


def cmd_neuron(args):
    layer, index = parse_neuron_id(args.neuron)
    candidates = read_data(args, args.candidates)
    targets = [read_data(args, t, target=True) for t in args.target or []]
    model = model_from_args(args)
    if not (0 <= layer < model.n_layers and 0 <= index < model.neurons_per_layer):
        raise ValueError(f"{args.neuron} is outside {model.n_layers} layers × {model.neurons_per_layer} neurons")
    reports = [
        capture(model, d, args.store_dir, capture_options(args), tqdm_progress()) for d in [candidates, *targets]
    ]
    for report, label in zip(reports, ["candidates"] + [f"target {t.name}" for t in targets]):
        print_report(report, label)
    pool = reports[0].store
    groups = {"pool": (pool.neuron_values("mean", layer, index), candidates.records)}
    for name, dataset, report in zip(unique_names([t.name for t in targets]), targets, reports[1:]):
        groups[f"target {name}"] = (report.store.neuron_values("mean", layer, index), dataset.records)
    threshold = float(fire_thresholds(pool, args.fire_threshold)[layer, index])
    card = explain.neuron_card(model, layer, index, groups, threshold, args.fire_threshold, k=args.top, live=args.live)
    _print(card, args.json)


def cmd_shared(args):
    if not args.target or len(args.target) < 2:
        raise ValueError("nait explain shared needs two --target sets or more")
    candidates = read_data(args, args.candidates)
    targets = [read_data(args, t, target=True) for t in args.target]
    result = run_select(
        model_from_args(args),
        candidates,
        targets,
        score_options(args),
        DEFAULT_CUT,
        DEFAULT_MERGE,
        args.store_dir,
        capture_options(args),
        tqdm_progress(),
    )
    for report, label in zip(result.reports, ["candidates"] + [f"target {t.name}" for t in targets]):
        print_report(report, label)
    view = explain.shared_view(
        result.pool,
        result.features,
        result.scores,
        score_options(args),
        candidates.records,
        k=args.top_k,
        n=args.neurons,
        candidates=args.rows,
    )
    _print(view, args.json)


def add_explain_parser(sub) -> None:
    parser = sub.add_parser("explain", help="explain a neuron (card) or the neurons several targets share")
    kinds = parser.add_subparsers(dest="explain", required=True)

    p = kinds.add_parser(
        "neuron", help="a neuron card: promoted/suppressed tokens, density, top records and their firing tokens"
    )
    p.add_argument("neuron", help="neuron id, e.g. L12.N345")
    p.add_argument("--candidates", default="demo", help="candidate pool: a file or built-in name (default demo)")
    p.add_argument(
        "--target", action="append", help="a target set whose density and top records to show; repeat for several"
    )
    p.add_argument("--top", type=int, default=3, help="top-activating records per group (default 3)")
    p.add_argument(
        "--live", type=int, default=3, help="of those, how many get a live pass for their firing tokens (default 3)"
    )
    p.add_argument(
        "--fire-threshold", default="0", help="density threshold: absolute T, or qQ for the neuron's pool quantile"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_model_args(p), add_data_args(p), add_capture_args(p)
    p.set_defaults(func=cmd_neuron)

    p = kinds.add_parser(
        "shared",
        help="per layer, how far several targets' features agree; the neurons they share; "
        "the candidates jointly high for all, with the shared neurons' share of their scores",
    )
    p.add_argument("--candidates", default="demo", help="candidate pool: a file or built-in name (default demo)")
    p.add_argument("--target", action="append", help="target set; give two or more")
    p.add_argument(
        "--top-k", type=int, default=50, help="top marking neurons per layer and target compared (default 50)"
    )
    p.add_argument("--neurons", type=int, default=50, help="shared neurons listed and used for the share (default 50)")
    p.add_argument("--rows", type=int, default=10, help="candidates jointly high for every target listed (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_model_args(p), add_data_args(p), add_capture_args(p), add_score_args(p)
    p.set_defaults(func=cmd_shared)
