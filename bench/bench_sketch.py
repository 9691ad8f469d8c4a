"""Compact vs exact: how well do scores from a sketched pool agree with the exact scores?

The exact demo pool and GSM8K target stores are read from `--store-dir` (capture them first, e.g. with
`bench/bench_methods.py` or `nait capture --data demo` and `nait capture --data gsm8k --target-size 64`;
`NAIT_DEMO_SIZE` shrinks the demo as everywhere else). For each K and seed, the pool's stored float16
values are projected post hoc with the very matrices the capture hook would use (`sketch.Sketch`), written
as a real compact store, and scored against the exact feature (projected by the scoring engine). A test
(tests/test_sketch.py) shows capture-time projection equals this post-hoc projection within float16
rounding, so the table is what a `--sketch K` capture gives. Each compact store is scored twice: with the
plain projection (no exact sample) and calibrated on an exact sample of N seeded pool records
(`--exact-samples`, as `--exact-sample N` captures it; `sketch.Calibration`). Reported per method:
Spearman's rank correlation with the exact scores (over the whole pool, and over the records outside the
exact sample) and the demo sanity AUROC (GSM8K records of the pool ranked above the rest).

    .venv/bin/python bench/bench_sketch.py --ks 64,128,256,512 --seeds 0,1,2 --exact-samples 0,200,400
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nait_core.data import sample_rows  # noqa: E402
from nait_core.datasets import load_builtin  # noqa: E402
from nait_core.features import build_feature  # noqa: E402
from nait_core.scoring import ScoreOptions, score_store  # noqa: E402
from nait_core.selection import auroc  # noqa: E402
from nait_core.sketch import RECOMMENDED_K, Sketch, bytes_per_sample, compact_copy, largest_k  # noqa: E402
from nait_core.store import Store, list_stores  # noqa: E402

METHODS = [
    ("overlap, centred (default)", ScoreOptions("overlap")),
    ("nait-pca, last-first, layer-norm none (published)", ScoreOptions("nait-pca", reduction="last-first")),
    ("nait-pca, last-first, layer-norm z", ScoreOptions("nait-pca", reduction="last-first", layer_norm="z")),
]
SHAPES = (("bundled SmolLM2-135M", 30, 1536), ("LLaMA-2-7B", 32, 11008))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))  # scores are continuous: no ties
    return float(np.corrcoef(ra, rb)[0, 1])


def find_store(root: Path, data: str) -> Store:
    for info in list_stores(root):
        if (
            info.get("data") == data
            and info.get("complete")
            and "sketch" not in json.loads((Path(info["path"]) / "manifest.json").read_text())["options"]
        ):
            return Store.open(Path(info["path"]), verify=False)
    raise SystemExit(f"no complete exact store of {data!r} under {root}; capture it first (see the docstring)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store-dir", default="cached_features")
    parser.add_argument("--target", default="gsm8k-n64-s0", help="data name of the exact target store")
    parser.add_argument("--ks", default="32,64,128,256,512")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--kind", default="gaussian")
    parser.add_argument("--exact-samples", default="0,400", help="exact sample sizes N (0: the plain projection)")
    args = parser.parse_args(argv)
    ks, seeds = [int(k) for k in args.ks.split(",")], [int(s) for s in args.seeds.split(",")]
    sizes = [int(n) for n in args.exact_samples.split(",")]

    print("bytes per sample, float16, default 3 reductions (mean, last, first):\n")
    print("| model (layers × neurons) | exact | " + " | ".join(f"K = {k}" for k in ks) + " | largest K in 32 KB |")
    print("|---|---|" + "---|" * len(ks) + "---|")
    for label, layers, neurons in SHAPES:
        print(
            f"| {label} ({layers} × {neurons:,}) | {bytes_per_sample(layers, neurons, 3):,} B | "
            + " | ".join(f"{bytes_per_sample(layers, neurons, 3, k):,} B" for k in ks)
            + f" | {largest_k(layers, 3, 32 * 1024)} |"
        )

    demo = load_builtin("demo")
    root = Path(args.store_dir)
    pool, target = find_store(root, demo.name), find_store(root, args.target)
    positive = np.array([r.source == "gsm8k" for r in demo.records])
    assert pool.n_samples == len(demo)
    feature = build_feature(target, args.target, reductions=("last-first",))
    exact = {label: score_store(pool, [feature], options)[0].score for label, options in METHODS}
    print(
        f"\npool {demo.name} ({len(demo)} records, {positive.sum()} GSM8K), target {args.target} "
        f"({target.n_samples} records); sketch kind {args.kind}, seeds {seeds}\n"
    )
    results = {}  # (label, k, n) -> (spearman, held-out spearman, auroc) per seed
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nait-sketch-") as tmp:
        for k in ks:
            for seed in seeds:
                for n in sizes:
                    compact = compact_copy(
                        Path(tmp) / f"k{k}-s{seed}-n{n}" / "pool", pool, Sketch(k, seed, args.kind), n
                    )
                    held = np.setdiff1d(np.arange(len(demo)), sample_rows(len(demo), n, seed) if n else [])
                    for label, options in METHODS:
                        score = score_store(compact, [feature], options)[0].score
                        results.setdefault((label, k, n), []).append(
                            (
                                spearman(score, exact[label]),
                                spearman(score[held], exact[label][held]),
                                auroc(score, positive),
                            )
                        )
                    shutil.rmtree(Path(tmp) / f"k{k}-s{seed}-n{n}")
    print(
        "| method | exact AUROC | K | exact sample N | B/sample (7B, 3 reductions) | Spearman vs exact, mean (min) "
        "| Spearman outside the sample, min | AUROC, mean (min–max) | ΔAUROC, worst |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, _ in METHODS:
        exact_auc = auroc(exact[label], positive)
        for k in ks:
            for n in sizes:
                rho, held_rho, auc = (np.array(column) for column in zip(*results[(label, k, n)]))
                print(
                    f"| {label} | {exact_auc:.3f} | {k} | {n or 'none (plain)'} | {bytes_per_sample(32, 11008, 3, k):,} "
                    f"| {rho.mean():.4f} ({rho.min():.4f}) | {held_rho.min():.4f} "
                    f"| {auc.mean():.3f} ({auc.min():.3f}–{auc.max():.3f}) | {np.abs(auc - exact_auc).max():.3f} |"
                )
    print(
        f"\n(recommended K = {RECOMMENDED_K}; {time.perf_counter() - started:.0f} s for the compact stores and scores)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
