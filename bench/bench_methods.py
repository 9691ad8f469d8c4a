"""Sanity check of the scoring methods: do they rank GSM8K problems of the demo pool first?

The built-in `demo` pool (1,000 records) holds 250 GSM8K problems; the built-in `gsm8k` target is the
held-out part of GSM8K, disjoint from the demo. Each method scores the demo pool against a feature built
from `--target-size` GSM8K problems (seed 0, as `nait select --target gsm8k --target-size N` does), and
the AUROC says how well the score puts the GSM8K records above the rest (1.0 = all first, 0.5 = chance).
A random score and two length scores are the baselines.

    .venv/bin/python bench/bench_methods.py                       # target size 64
    .venv/bin/python bench/bench_methods.py --sizes 16,64,256      # also the sweep

Stores are captured into (or reused from) `cached_features/` with the CLI's default capture options.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nait_core import methods, pipeline  # noqa: E402
from nait_core.features import build_feature  # noqa: E402
from nait_core.models import load_model  # noqa: E402
from nait_core.scoring import ScoreOptions, score_store  # noqa: E402
from nait_core.selection import auroc  # noqa: E402

capture_module = importlib.import_module("nait_core.capture")  # `nait_core.capture` is also a function name

# (label, options); the first row of each method is its CLI default.
METHODS = [
    ("overlap, centred (default)", ScoreOptions("overlap")),
    ("overlap, uncentred (--no-centre)", ScoreOptions("overlap", centre=False)),
    ("jaccard, absolute T = 0 (default)", ScoreOptions("jaccard", fire_threshold="0")),
    ("jaccard, absolute T = 0.1", ScoreOptions("jaccard", fire_threshold="0.1")),
    ("jaccard, per-neuron quantile q0.9", ScoreOptions("jaccard", fire_threshold="q0.9")),
    ("jaccard, per-neuron quantile q0.99", ScoreOptions("jaccard", fire_threshold="q0.99")),
    ("nait-pca, last-first, layer-norm none (Eq. 2-5 as published)", ScoreOptions("nait-pca", reduction="last-first")),
    ("nait-pca, last-first, layer-norm z", ScoreOptions("nait-pca", reduction="last-first", layer_norm="z")),
    ("nait-pca, mean, layer-norm none", ScoreOptions("nait-pca", reduction="mean")),
    ("nait-pca, mean, layer-norm z", ScoreOptions("nait-pca", reduction="mean", layer_norm="z")),
    ("nait-pca, last, layer-norm none", ScoreOptions("nait-pca", reduction="last")),
    ("nait-pca, last, layer-norm z", ScoreOptions("nait-pca", reduction="last", layer_norm="z")),
    ("overlap, layers 0-9 (--layers 0-9)", ScoreOptions("overlap", layers=tuple(range(0, 10)))),
    ("overlap, layers 10-19", ScoreOptions("overlap", layers=tuple(range(10, 20)))),
    ("overlap, layers 20-29", ScoreOptions("overlap", layers=tuple(range(20, 30)))),
    ("overlap, last layer only (--layers 29)", ScoreOptions("overlap", layers=(29,))),
    ("overlap-balanced (each layer's cosine, averaged)", ScoreOptions("overlap-balanced")),
    ("overlap-z (neurons standardised by the pool)", ScoreOptions("overlap-z")),
    ("rds (RDS+: final hidden state, max over target records)", ScoreOptions("rds")),
    ("rds, mean over target records (--rds-pool mean)", ScoreOptions("rds", rds_pool="mean")),
    ("embed (all-MiniLM-L6-v2, cosine to the target mean)", ScoreOptions("embed")),
]
SWEEP = (
    "overlap, centred (default)",
    "nait-pca, last-first, layer-norm none (Eq. 2-5 as published)",
    "nait-pca, last-first, layer-norm z",
    "jaccard, absolute T = 0 (default)",
    "jaccard, per-neuron quantile q0.9",
)


def baselines(pool, positive: np.ndarray, seed: int, draws: int = 1000) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    random_scores = [auroc(rng.random(len(positive)), positive) for _ in range(draws)]
    lo, hi = np.percentile(random_scores, [5, 95])
    return [
        (f"random (seed {seed})", f"{random_scores[0]:.3f}"),
        (f"random, {draws} draws: mean [5%, 95%]", f"{np.mean(random_scores):.3f} [{lo:.3f}, {hi:.3f}]"),
        (
            "response length (tokens, longer first)",
            f"{auroc(pool.per_sample('response_tokens').astype(float), positive):.3f}",
        ),
        ("sample length (tokens, longer first)", f"{auroc(pool.per_sample('tokens').astype(float), positive):.3f}"),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64", help="target sizes, comma-separated (the first gets the full table)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --target-size sample (as in the CLI)")
    parser.add_argument("--store-dir", default="cached_features")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    started = time.perf_counter()
    model = load_model()
    demo = pipeline.load_data("demo")
    pool = capture_module.capture(model, demo, args.store_dir).store
    positive = np.array([r.source == "gsm8k" for r in demo.records])
    print(f"pool: built-in demo, {len(demo)} records, {positive.sum()} of them GSM8K; store {pool.path}")

    results: dict[int, dict[str, str]] = {}
    for size in sizes:
        target = pipeline.load_data("gsm8k", limit=size, seed=args.seed)
        store = capture_module.capture(model, target, args.store_dir).store
        feature = build_feature(store, target.name, reductions=("last-first", "mean", "last"))
        rows = METHODS if size == sizes[0] else [m for m in METHODS if m[0] in SWEEP]
        results[size] = {}
        for label, options in rows:
            reads = methods.get(options.method).reads
            try:
                if reads == "neurons":
                    scores = score_store(pool, [feature], options)
                else:  # rds: the target store's hidden states; embed: the records' text
                    inputs = (pool, [store]) if reads == "hidden" else (demo, [target])
                    scores = methods.get(options.method).scorer()(*inputs, [target.name], options, args.store_dir)
                results[size][label] = f"{auroc(scores[0].score, positive):.3f}"
            except ValueError as error:  # e.g. jaccard: no neuron fires for most target samples
                results[size][label] = f"refused ({error})".replace("|", "/")
        print(f"target: {target.name} ({len(target)} records), store {store.path}")

    first = sizes[0]
    print(
        f"\nAUROC of the {positive.sum()} GSM8K records of the demo pool against the other "
        f"{(~positive).sum()}; target gsm8k, --target-size {first}, seed {args.seed}\n"
    )
    print("| score | AUROC |\n|---|---|")
    for label, value in baselines(pool, positive, args.seed):
        print(f"| {label} | {value} |")
    for label, value in results[first].items():
        print(f"| {label} | {value} |")
    if len(sizes) > 1:
        print("\nAUROC by target size (--target-size N, seed %d)\n" % args.seed)
        print("| method | " + " | ".join(f"N = {s}" for s in sizes) + " |")
        print("|---|" + "---|" * len(sizes))
        for label in SWEEP:
            print(
                f"| {label} | "
                + " | ".join(results[s][label] if len(results[s][label]) < 10 else "refused" for s in sizes)
                + " |"
            )
    print(f"\n({time.perf_counter() - started:.0f} s in all, captures included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
