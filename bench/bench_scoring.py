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

   Each method is timed with the matrix engine (`scoring.score_store`) and, side by side in the same
   process, with the previous per-neuron engine (`nait_testing.reference.score_store_per_neuron`, `--old` methods).
3. A compact pool (`--compact-samples`, default 1,000,000, at `--k`, default the recommended K): `mean`
   only, written the same way, scored with `overlap` and `nait-pca` (mean) and selected (`selection.select`,
   top 10 %).

    .venv/bin/python bench/bench_scoring.py --samples 52000 --compact-samples 1000000

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

import nait_core.store.reading as store_module  # noqa: E402
from nait_core.features import build_feature  # noqa: E402
from nait_core.scoring import ScoreOptions, score_store  # noqa: E402
from nait_core.selection import Cut, select  # noqa: E402
from nait_core.sketch import RECOMMENDED_K, Sketch  # noqa: E402
from nait_core.store import DEFAULT_REDUCTIONS, Store, list_stores  # noqa: E402
from nait_testing.reference import score_store_per_neuron  # noqa: E402

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


OLD_ENGINE = (
    "overlap, centred",
    "jaccard, absolute T = 0",
    "nait-pca, mean, layer-norm none",
    "nait-pca, last-first, layer-norm none",
)  # also timed with the per-neuron engine


def manifest(name: str, n: int, reductions, shape=BUNDLED, sketch: Sketch | None = None) -> dict:
    """The fields `capture.store_key` writes, for a synthetic data set."""
    options = {"reductions": list(reductions), "max_length": 1024}
    if sketch:
        options["sketch"] = sketch.to_json()
    return {
        "model": {"name": "synthetic-smollm2-135m-shape", "fingerprint": "synthetic", "dtype": "float32"},
        "data": {"name": name, "hash": f"synthetic-{name}-{n}", "n_samples": n},
        "options": options,
        "shape": {"layers": shape[0], "neurons": shape[1]},
        "shard_size": SHARD,
    }


def write_store(
    path: Path, name: str, n: int, reductions, seed: int, offset: float = 0.0, sketch: Sketch | None = None
) -> Store:
    store = Store.create(path, manifest(name, n, reductions, sketch=sketch))
    rng = np.random.default_rng(seed)
    width = sketch.k if sketch else BUNDLED[1]
    block = {
        r: (rng.standard_normal((SHARD, BUNDLED[0], width), dtype=np.float32) + offset).astype(np.float16)
        for r in reductions
    }
    counts = rng.integers(20, 600, SHARD).astype(np.int32)
    for start, end in store.shard_ranges():
        k = end - start
        arrays = {r: block[r][:k] for r in reductions}
        arrays.update(tokens=counts[:k], response_tokens=counts[:k] // 2, truncated=np.zeros(k, bool))
        store.write_shard(start, end, arrays)
    return Store.open(path, verify=False)


def bytes_per_sample(shape, reductions: int) -> int:
    return reductions * shape[0] * shape[1] * 2 + PER_SAMPLE_BYTES


def timed(fn):
    """(result, wall seconds, this process's CPU seconds): on a shared machine the CPU time shows the work
    done, the wall time also what other jobs took from it."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def with_threads(threads: int, fn):
    """fn() with `threads` store reader threads (Store.map_chunks)."""
    saved, store_module.READ_THREADS = store_module.READ_THREADS, threads
    try:
        return fn()
    finally:
        store_module.READ_THREADS = saved


def time_methods(pool: Store, feature, methods, old: bool = True) -> list[tuple]:
    """(label, wall, cpu, one-thread wall, old wall or None, old cpu or None): the matrix engine on every
    reader thread and, side by side, on one thread and the per-neuron engine. Best of two runs each."""
    out = []
    for label, options in methods:
        runs = [timed(lambda: score_store(pool, [feature], options)[0].score) for _ in range(2)]
        new_scores, wall, cpu = min(runs, key=lambda r: r[1])
        single = min(with_threads(1, lambda: timed(lambda: score_store(pool, [feature], options)))[1] for _ in range(2))
        old_wall = old_cpu = None
        if old and label in OLD_ENGINE:
            old_scores, old_wall, old_cpu = timed(lambda: score_store_per_neuron(pool, [feature], options)[0].score)
            assert np.allclose(new_scores, old_scores, rtol=1e-4, atol=1e-6), label  # same scores
        out.append((label, wall, cpu, single, old_wall, old_cpu))
        print(
            f"  {label}: {wall:.2f} s wall, {cpu:.2f} s CPU, {pool.n_samples / wall:,.0f} samples/s "
            f"({store_module.READ_THREADS} reader threads); 1 thread {single:.2f} s wall"
            + (f"; per-neuron engine {old_wall:.1f} s wall, {old_cpu:.1f} s CPU" if old_wall else ""),
            flush=True,
        )
    return out


def print_table(results) -> None:
    print(
        f"\n| method | matrix engine, {store_module.READ_THREADS} reader threads, wall (s) | CPU (s) "
        "| 1 reader thread, wall (s) | threads speed-up | per-neuron engine, wall (s) | CPU (s) |\n"
        "|---|---|---|---|---|---|---|"
    )
    for label, wall, cpu, single, old_wall, old_cpu in results:
        old_text = f"{old_wall:.1f} | {old_cpu:.1f}" if old_wall else " | "
        print(f"| {label} | {wall:.2f} | {cpu:.2f} | {single:.2f} | {single / wall:.2f}× | {old_text} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=PAPER_POOL)
    parser.add_argument("--tmp", default=None, help="folder for the temporary stores (default: the system's)")
    parser.add_argument("--store-dir", default="cached_features", help="where to look for the captured demo store")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-delta", action="store_true", help="skip the last + first pool (nait-pca on ΔA)")
    parser.add_argument("--no-old", action="store_true", help="do not time the per-neuron engine")
    parser.add_argument("--compact-samples", type=int, default=1_000_000, help="compact pool size (0: skip)")
    parser.add_argument("--k", type=int, default=RECOMMENDED_K, help="compact pool: projections per layer")
    parser.add_argument("--skip-exact", action="store_true", help="only the compact pool")
    parser.add_argument("--only", help="time only the methods whose label contains this text (e.g. 'overlap, centred')")
    parser.add_argument(
        "--reuse",
        type=Path,
        help="time the `mean` pool and target left in this folder by an "
        "interrupted run (DIR/pool, DIR/target) instead of writing them",
    )
    args = parser.parse_args(argv)

    # ---- 1. bytes per sample
    k = len(DEFAULT_REDUCTIONS)
    print("| model (layers × neurons) | per reduction | per sample, default 3 reductions | 52,000 samples |")
    print("|---|---|---|---|")
    for label, shape in (
        ("bundled SmolLM2-135M (30 × 1,536)", BUNDLED),
        ("LLaMA-2-7B (32 × 11,008), projected", LLAMA2_7B),
    ):
        one, total = shape[0] * shape[1] * 2, bytes_per_sample(shape, k)
        print(f"| {label} | {one:,} B | {total:,} B ({total / 1e6:.3f} MB) | {PAPER_POOL * total / 1e9:.1f} GB |")
    for info in list_stores(Path(args.store_dir)):
        if info.get("data") == "demo" and info.get("complete"):
            measured = Store(
                Path(info["path"]), json.loads((Path(info["path"]) / "manifest.json").read_text())
            ).size_bytes()
            print(
                f"measured: captured demo store {Path(info['path']).name}: {measured:,} B for {info['samples']} samples, "
                f"{measured / info['samples']:,.0f} B/sample (reductions {info['reductions']}; includes npy headers, "
                f"checksums, manifest and any cached pool means)"
            )

    free = shutil.disk_usage(args.tmp or tempfile.gettempdir()).free
    need = args.samples * bytes_per_sample(BUNDLED, 2)
    print(
        f"\nfree disk at {args.tmp or tempfile.gettempdir()}: {free / 1e9:.1f} GB; the largest temporary store needs {need / 1e9:.1f} GB"
    )
    if need > free * 0.8:
        print("not enough free disk; use --samples or --tmp", file=sys.stderr)
        return 1

    # ---- 2. scoring throughput
    results = []
    mean_seconds = None
    if args.reuse:
        target, pool = Store.open(args.reuse / "target", verify=False), Store.open(args.reuse / "pool", verify=False)
        feature = build_feature(target, "synthetic-target")
        methods = [m for m in METHODS_MEAN if not args.only or args.only in m[0]]
        print(f"reused pool {pool.path}: {pool.n_samples:,} samples, {pool.size_bytes() / 1e9:.2f} GB")
        results = time_methods(pool, feature, methods, old=not args.no_old)
        print_table(results)
        return 0
    with tempfile.TemporaryDirectory(prefix="nait-bench-", dir=args.tmp) as tmp:
        tmp = Path(tmp)
        target = write_store(tmp / "target", "target", 64, DEFAULT_REDUCTIONS, args.seed + 1, offset=0.3)
        t = time.perf_counter()
        feature = build_feature(target, "synthetic-target")
        print(f"feature from 64 target samples: {time.perf_counter() - t:.1f} s")

        parts = (
            []
            if args.skip_exact
            else [(("mean",), METHODS_MEAN)] + ([] if args.no_delta else [(("last", "first"), METHODS_DELTA)])
        )
        for reductions, methods in parts:
            methods = [m for m in methods if not args.only or args.only in m[0]]
            t = time.perf_counter()
            pool = write_store(tmp / "pool", "pool", args.samples, reductions, args.seed)
            written = time.perf_counter() - t
            print(
                f"\npool {args.samples:,} samples, reductions {list(reductions)}: {pool.size_bytes() / 1e9:.2f} GB on disk, "
                f"{pool.size_bytes() / args.samples:,.0f} B/sample, written in {written:.0f} s",
                flush=True,
            )
            if "mean" in reductions:
                t = time.perf_counter()
                pool.mean("mean")
                mean_seconds = time.perf_counter() - t
                print(f"  pool mean (once per pool, then cached in the store): {mean_seconds:.1f} s", flush=True)
            results += time_methods(pool, feature, methods, old=not args.no_old)
            shutil.rmtree(tmp / "pool")

        compact = []
        if args.compact_samples:
            sketch = Sketch(args.k)
            t = time.perf_counter()
            pool = write_store(tmp / "compact", "compact", args.compact_samples, ("mean",), args.seed, sketch=sketch)
            written = time.perf_counter() - t
            print(
                f"\ncompact pool {args.compact_samples:,} samples, K = {args.k}, reductions ['mean']: "
                f"{pool.size_bytes() / 1e9:.2f} GB on disk, {pool.size_bytes() / args.compact_samples:,.0f} B/sample, "
                f"written in {written:.0f} s",
                flush=True,
            )
            _, wall, cpu = timed(lambda: pool.mean("mean"))
            compact.append(("pool mean (once per pool)", wall, cpu))
            for label, options in (
                ("overlap, centred", ScoreOptions("overlap")),
                ("nait-pca, mean, layer-norm z", ScoreOptions("nait-pca", reduction="mean", layer_norm="z")),
            ):
                scores, wall, cpu = timed(lambda: score_store(pool, [feature], options))
                selection, select_wall, select_cpu = timed(
                    lambda: select({s.feature: s.score for s in scores}, Cut(ratio=0.1))
                )
                assert selection.selected.sum() == args.compact_samples // 10
                compact.append((f"{label}: score", wall, cpu))
                compact.append((f"{label}: select top 10 %", select_wall, select_cpu))
                print(
                    f"  {label}: scored in {wall:.1f} s wall ({cpu:.1f} s CPU), selected in {select_wall:.1f} s",
                    flush=True,
                )
            shutil.rmtree(tmp / "compact")

    if results:
        print(f"\nscoring throughput, {args.samples:,} samples × 30 × 1,536 neurons, one feature, warm page cache\n")
        print_table(results)
        if mean_seconds:
            print(f"| pool mean for centring (once per pool) | {mean_seconds:.1f} | | | | | |")
    if compact:
        print(
            f"\ncompact pool: {args.compact_samples:,} samples × 30 layers × K = {args.k}, one feature, warm page cache\n"
        )
        print("| step | wall (s) | CPU (s) |\n|---|---|---|")
        for label, wall, cpu in compact:
            print(f"| {label} | {wall:.1f} | {cpu:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
