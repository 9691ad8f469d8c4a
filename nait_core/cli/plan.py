"""`nait plan`: what `nait select` (or `nait capture`) with the same options will cost, before any weights
load: records, tokens, store bytes, free disk, time per device; refused (exit 2) when it cannot fit."""

from __future__ import annotations

import json
import sys

from ..baselines import BASELINES
from ..plan import check_fit, describe_seconds, load_tokenizer, make_plan, model_shape
from .capture import narrow_reductions
from .options import (
    DATA_SPECS,
    add_capture_args,
    add_data_args,
    add_model_args,
    add_score_args,
    capture_options,
    model_from_args,
    read_data,
)


def _size(n: int | None) -> str:
    if n is None:
        return "unknown"
    return f"{n / 1e9:,.2f} GB" if n >= 1e8 else f"{n / 1e6:,.2f} MB"


def print_plan(plan) -> None:
    shape = plan.shape
    print(
        f"model     {plan.model}: {shape.layers} layers x {shape.neurons:,} neurons, {shape.params / 1e9:,.2f}B params"
    )
    print(
        f"records   {plan.records:,} in the pool"
        + (
            f", {sum(s.records for s in plan.stores[1:]):,} in {len(plan.stores) - 1} target set(s)"
            if plan.stores[1:]
            else ""
        )
    )
    if plan.tokens is not None:
        print(f"tokens    {plan.tokens:,} (pool and targets, after truncation; {plan.truncated:,} records truncated)")
    for title, stores in (("store", plan.stores), ("compact", plan.compact)):
        pool = stores[0]
        how = f"--sketch {pool.sketch_k} " if pool.sketch_k else ""
        print(f"{title:<9} {_size(pool.bytes)} for the pool ({how}--reductions {','.join(pool.reductions)})")
        for s in stores:
            state = "reused" if s.reused else (f"{_size(s.on_disk)} on disk, resumes" if s.on_disk else "new")
            print(f"            {s.label}: {s.records:,} records, {_size(s.bytes)} ({state})")
        print(f"            to write: {_size(sum(s.need for s in stores))}")
    print(f"free      {_size(plan.free)} at {plan.root}")
    print(f"fits      {'yes' if plan.fits else 'NO'}")
    for note in plan.notes:
        print(f"note      {note}")
    if plan.times:
        print("time      expected capture time of these tokens:")
        for row in plan.times:
            gpus = f"{row['gpus']} x " if row["gpus"] else ""
            print(
                f"            {gpus}{row['device']:<20} {row['tok_s']:>12,.0f} tok/s  {describe_seconds(row['seconds']):>8}"
                f"  ({row['basis']})"
            )


def cmd_plan(args):
    if args.method in BASELINES:
        raise ValueError(f"--method {args.method} captures no store: there is nothing to plan")
    pool = read_data(args, args.candidates)
    targets = [read_data(args, t, target=True) for t in args.target or []]
    model = model_from_args(args)  # its name and fingerprint only: never loaded here
    shape = model_shape(args.model, args.neuron_module, args.trust_remote_code)
    narrow_reductions(args, model, pool, shape)
    tokenizer = load_tokenizer(args.model, args.trust_remote_code)
    plan = make_plan(model, pool, targets, args.store_dir, capture_options(args), shape, tokenizer)
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        print_plan(plan)
    sys.stdout.flush()
    check_fit(plan)


def add_plan_parser(sub) -> None:
    p = sub.add_parser("plan", help="what a capture will cost (records, tokens, disk, time), before any weights load")
    p.add_argument("--candidates", "--data", dest="candidates", required=True, help=f"candidate pool: {DATA_SPECS}")
    p.add_argument("--target", action="append", help="target set; repeat for several (as nait select)")
    p.add_argument(
        "--json", action="store_true", help="print the plan as JSON (records, tokens, store_bytes, free_bytes, fits, …)"
    )
    add_model_args(p), add_data_args(p), add_capture_args(p), add_score_args(p)
    p.set_defaults(func=cmd_plan)
