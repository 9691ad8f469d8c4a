"""`nait eval`'s command line: its options, the settings they give, and a progress log on stderr."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Callable

from .. import atomic
from ..eval import ARM_METHODS, BINS, FULL_STEPS, ArmProgress, EvalSettings, results_figures, results_table, run_eval
from ..finetune import FINETUNE_METHODS, FinetuneSettings
from ..metrics import MeasureSettings
from ..selection import MERGES
from .options import add_model_args


def _csv(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def add_eval_parser(subparsers) -> None:
    """Define `nait eval` on an argparse subparsers object."""
    defaults, ft, ms = EvalSettings(), FinetuneSettings(), MeasureSettings()
    p = subparsers.add_parser("eval", help="fine-tune on each selection and measure the target skill")
    p.add_argument("--out", required=True, type=Path, help="results folder (results.json, results.md); rerun to resume")
    add_model_args(p)
    p.add_argument(
        "--candidates", default=defaults.candidates, help="candidate pool: a file or built-in name (default: demo)"
    )
    p.add_argument("--candidates-limit", type=int, help="use a seeded random sample of this many pool records")
    p.add_argument(
        "--target", action="append", help="target set, a file or built-in name; repeat for several (default: gsm8k)"
    )
    p.add_argument(
        "--methods", default=",".join(defaults.methods), help=f"comma-separated arms from {','.join(ARM_METHODS)}"
    )
    p.add_argument(
        "--ratio", type=float, default=defaults.ratio, help="share of the pool each method and random arm keeps"
    )
    p.add_argument(
        "--bins",
        default=",".join(defaults.bins),
        help=f"score bins of each target-scoring method, from {','.join(BINS)}: besides the method's own arm (its "
        "top), arms `<method>@middle` and `<method>@bottom` train on as many records from the middle and the "
        "bottom of its ranking (does closeness predict gain?); default: top only",
    )
    p.add_argument("--random-seeds", default=",".join(map(str, defaults.random_seeds)), help="seeds of the random arms")
    p.add_argument("--no-full", action="store_true", help="leave out the full-pool arms")
    p.add_argument(
        "--full-steps",
        choices=FULL_STEPS,
        default=defaults.full_steps,
        help="full pool at its own epochs (`full`), step-matched to a selection arm (`full-matched`), or both",
    )
    p.add_argument("--no-base", action="store_true", help="leave out the untuned base arm")
    p.add_argument(
        "--subset", action="append", default=[], help="a JSONL subset to train on as an arm; repeat for several"
    )
    p.add_argument(
        "--feature-size", type=int, default=defaults.feature_size, help="target records that build the feature"
    )
    p.add_argument(
        "--heldout-size",
        type=int,
        default=defaults.heldout_size,
        help="target records measured, never selected or trained on",
    )
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
    g.add_argument(
        "--max-new-tokens", type=int, default=ms.max_new_tokens, help="greedy generation length (GSM8K, HumanEval)"
    )
    g.add_argument("--gen-batch-size", type=int, default=ms.batch_size)
    g.add_argument(
        "--gen-limit",
        type=int,
        help="generation metrics (GSM8K, HumanEval) on the first N held-out records only (0: none, the "
        "loss only); the loss uses all",
    )
    p.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=10.0,
        help="save an arm's training state under OUT/checkpoints every M minutes, so an interrupted arm "
        "resumes mid-way on the next run (0: never); removed once the arm is measured",
    )
    p.set_defaults(func=cmd_eval)


def settings_from_args(args) -> EvalSettings:
    return EvalSettings(
        model=args.model,
        device=args.device,
        dtype=args.dtype,
        neuron_module=args.neuron_module,
        trust_remote_code=args.trust_remote_code,
        candidates=args.candidates,
        candidates_limit=args.candidates_limit,
        targets=tuple(args.target or ("gsm8k",)),
        methods=_csv(args.methods),
        ratio=args.ratio,
        bins=_csv(args.bins),
        random_seeds=tuple(int(s) for s in _csv(args.random_seeds)),
        full=not args.no_full,
        full_steps=args.full_steps,
        base=not args.no_base,
        subsets=tuple(args.subset),
        feature_size=args.feature_size,
        heldout_size=args.heldout_size,
        split_seed=args.split_seed,
        merge=args.merge,
        store_dir=args.store_dir,
        finetune=FinetuneSettings(
            method=args.finetune,
            epochs=args.epochs,
            max_steps=args.max_steps,
            learning_rate=args.lr,
            batch_size=args.batch_size,
            grad_accum=args.grad_accum,
            max_length=args.max_length,
            lora_r=args.lora_r,
            lora_alpha=args.lora_alpha,
            seed=args.seed,
        ),
        measure=dataclasses.replace(
            MeasureSettings(),
            max_new_tokens=args.max_new_tokens,
            batch_size=args.gen_batch_size,
            generate_limit=args.gen_limit,
        ),
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
    results = run_eval(settings, args.out, progress=progress_printer(), checkpoint_minutes=args.checkpoint_minutes)
    print(results_table(results))
    charts = Path(args.out) / "charts.html"
    atomic.write_text(
        charts,
        "\n".join(
            f.to_html(full_html=False, include_plotlyjs=i == 0) for i, f in enumerate(results_figures(results).values())
        ),
    )
    print(f"results: {Path(args.out) / 'results.json'}, charts: {charts}", file=sys.stderr)
