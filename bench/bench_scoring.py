"""Store size per sample and scoring throughput on a synthetic 52,000-sample pool.

1. Bytes per sample: the float16 layout (layers × neurons × 2 bytes per reduction, plus the per-sample
   counts), for the bundled model (30 × 1,536) and projected for LLaMA-2-7B (32 × 11,008), checked against
   a real store written by `Store.write_shard` (and the demo store in `cached_features/`, if captured).
2. Scoring throughput: a store of `--samples` samples with the bundled model's shape, random float16
   values (one random 512-sample block written into every shard, so generating data costs little), written
   with `Store.create` + `Store.write_shard` into a temporary folder; a 64-sample synthetic target store
   gives the feature (`features.build_feature`); each method is timed with `scoring.score_store`.
   To keep the disk footprint down, the pool is written twice, one after the other: with `mean` only
   (overlap, jaccard, nait-pca on the token mean), then with `last` + `first` only (nait-pca on
   ΔA = last − first). Each is deleted after use.

    .venv/bin/python bench/bench_scoring.py                 # 52,000 samples (about 4.8 + 9.6 GB on disk, in turn)
    .venv/bin/python bench/bench_scoring.py --samples 5000  # quick

Timings read a store that was just written, so it is mostly in the page cache (warm); a pool read from
a cold disk is bound by the disk instead.
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

from nait_core.features import build_feature  # noqa: E402
from nait_core.scoring import ScoreOptions, score_store  # noqa: E402
from nait_core.store import DEFAULT_REDUCTIONS, Store, list_stores  # noqa: E402

BUNDLED = (30, 1536)  # SmolLM2-135M-Instruct: layers × neurons (inputs of the down projections)
LLAMA2_7B = (32, 11008)
PAPER_POOL = 52_000  # Alpaca-GPT4
SHARD = 512
PER_SAMPLE_BYTES = 4 + 4 + 1  # tokens (int32), response_tokens (int32), truncated (bool)

METHODS_MEAN = [
    ("overlap, centred", ScoreOptions("overlap")),
    ("overlap, uncentred", ScoreOptions("overlap", centre=False)),
    ("jaccard, absolute T = 0", ScoreOptions("jaccard", fire_threshold="0")),
    # q0.6: on this synthetic data (target = pool + 0.3) the target fires for most samples on about half
    # of the neurons; a higher quantile leaves it none, which jaccard refuses. Cost does not depend on Q.
    ("jaccard, per-neuron quantile q0.6", ScoreOptions("jaccard", fire_threshold="q0.6")),
    ("nait-pca, mean, layer-norm none", ScoreOptions("nait-pca", reduction="mean")),
    ("nait-pca, mean, layer-norm z", ScoreOptions("nait-pca", reduction="mean", layer_norm="z")),
]
METHODS_DELTA = [
    ("nait-pca, last-first, layer-norm none", ScoreOptions("nait-pca", reduction="last-first")),
    ("nait-pca, last-first, layer-norm z", ScoreOptions("nait-pca", reduction="last-first", layer_norm="z")),
]


def manifest(name: str, n: int, reductions, shape=BUNDLED) -> dict:
    """The fields `capture.store_key` writes, for a synthetic data set."""
    return {
        "model": {"name": "synthetic-smollm2-135m-shape", "fingerprint": "synthetic", "dtype": "float32"},
        "data": {"name": name, "hash": f"synthetic-{name}-{n}", "n_samples": n},
        "options": {"reductions": list(reductions), "max_length": 1024},
        "shape": {"layers": shape[0], "neurons": shape[1]},
        "shard_size": SHARD,
    }


def write_store(path: Path, name: str, n: int, reductions, seed: int, offset: float = 0.0) -> Store:
    store = Store.create(path, manifest(name, n, reductions))
    rng = np.random.default_rng(seed)
    block = {r: (rng.standard_normal((SHARD, *BUNDLED), dtype=np.float32) + offset).astype(np.float16) for r in reductions}
    counts = rng.integers(20, 600, SHARD).astype(np.int32)
    for start, end in store.shard_ranges():
        k = end - start
        arrays = {r: block[r][:k] for r in reductions}
        arrays.update(tokens=counts[:k], response_tokens=counts[:k] // 2, truncated=np.zeros(k, bool))
        store.write_shard(start, end, arrays)
    return Store.open(path, verify=False)


def bytes_per_sample(shape, reductions: int) -> int:
    return reductions * shape[0] * shape[1] * 2 + PER_SAMPLE_BYTES


def time_methods(pool: Store, feature, methods) -> list[tuple[str, float]]:
    out = []
    for label, options in methods:
        t = time.perf_counter()
        score_store(pool, [feature], options)
        seconds = time.perf_counter() - t
        out.append((label, seconds))
        print(f"  {label}: {seconds:.1f} s, {pool.n_samples / seconds:,.0f} samples/s", flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=PAPER_POOL)
    parser.add_argument("--tmp", default=None, help="folder for the temporary stores (default: the system's)")
    parser.add_argument("--store-dir", default="cached_features", help="where to look for the captured demo store")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    # ---- 1. bytes per sample
    k = len(DEFAULT_REDUCTIONS)
    print("| model (layers × neurons) | per reduction | per sample, default 3 reductions | 52,000 samples |")
    print("|---|---|---|---|")
    for label, shape in (("bundled SmolLM2-135M (30 × 1,536)", BUNDLED), ("LLaMA-2-7B (32 × 11,008), projected", LLAMA2_7B)):
        one, total = shape[0] * shape[1] * 2, bytes_per_sample(shape, k)
        print(f"| {label} | {one:,} B | {total:,} B ({total / 1e6:.3f} MB) | {PAPER_POOL * total / 1e9:.1f} GB |")
    for info in list_stores(Path(args.store_dir)):
        if info.get("data") == "demo" and info.get("complete"):
            measured = Store(Path(info["path"]), json.loads((Path(info["path"]) / "manifest.json").read_text())).size_bytes()
            print(f"measured: captured demo store {Path(info['path']).name}: {measured:,} B for {info['samples']} samples, "
                  f"{measured / info['samples']:,.0f} B/sample (reductions {info['reductions']}; includes npy headers, "
                  f"checksums, manifest and any cached pool means)")

    free = shutil.disk_usage(args.tmp or tempfile.gettempdir()).free
    need = args.samples * bytes_per_sample(BUNDLED, 2)
    print(f"\nfree disk at {args.tmp or tempfile.gettempdir()}: {free / 1e9:.1f} GB; the largest temporary store needs {need / 1e9:.1f} GB")
    if need > free * 0.8:
        print("not enough free disk; use --samples or --tmp", file=sys.stderr)
        return 1

    # ---- 2. scoring throughput
    results = []
    with tempfile.TemporaryDirectory(prefix="nait-bench-", dir=args.tmp) as tmp:
        tmp = Path(tmp)
        target = write_store(tmp / "target", "target", 64, DEFAULT_REDUCTIONS, args.seed + 1, offset=0.3)
        t = time.perf_counter()
        feature = build_feature(target, "synthetic-target")
        print(f"feature from 64 target samples: {time.perf_counter() - t:.1f} s")

        for reductions, methods in ((("mean",), METHODS_MEAN), (("last", "first"), METHODS_DELTA)):
            t = time.perf_counter()
            pool = write_store(tmp / "pool", "pool", args.samples, reductions, args.seed)
            written = time.perf_counter() - t
            print(f"\npool {args.samples:,} samples, reductions {list(reductions)}: {pool.size_bytes() / 1e9:.2f} GB on disk, "
                  f"{pool.size_bytes() / args.samples:,.0f} B/sample, written in {written:.0f} s", flush=True)
            if "mean" in reductions:
                t = time.perf_counter()
                pool.mean("mean")
                mean_seconds = time.perf_counter() - t
                print(f"  pool mean (once per pool, then cached in the store): {mean_seconds:.1f} s", flush=True)
            results += time_methods(pool, feature, methods)
            shutil.rmtree(tmp / "pool")

    print(f"\nscoring throughput, {args.samples:,} samples × 30 × 1,536 neurons, one feature, warm page cache\n")
    print("| method | seconds | samples/s |\n|---|---|---|")
    for label, seconds in results:
        print(f"| {label} | {seconds:.1f} | {args.samples / seconds:,.0f} |")
    print(f"| pool mean for centring (once per pool) | {mean_seconds:.1f} | {args.samples / mean_seconds:,.0f} |")
    for label, seconds in results:
        if label == "overlap, centred":
            print(f"\nprojected for LLaMA-2-7B (×{LLAMA2_7B[0] * LLAMA2_7B[1] / (BUNDLED[0] * BUNDLED[1]):.2f} neurons): "
                  f"overlap on 52,000 samples about {seconds * PAPER_POOL / args.samples * LLAMA2_7B[0] * LLAMA2_7B[1] / (BUNDLED[0] * BUNDLED[1]):.0f} s "
                  f"if throughput scales with neuron count")
    return 0


if __name__ == "__main__":
    sys.exit(main())
