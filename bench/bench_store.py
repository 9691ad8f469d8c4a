"""Reopening a 52,000-sample store: the cheap check (manifest, .npy headers, file sizes) against full
sha256 verification (what every reuse did before: `Store.open(verify=True)`).

A synthetic store is written with `Store.create` + `Store.write_shard` (one random 512-sample block
reused for every shard, so generating data costs little) into a temporary folder, then opened repeatedly.
The cheap check reads no array bytes, so its cost follows the number of files (shards × files per shard),
not their size; full verification reads and hashes every byte.

    .venv/bin/python bench/bench_store.py                                  # 52,000 × 30 × 1,536, mean only (4.8 GB)
    .venv/bin/python bench/bench_store.py --neurons 64 --reductions mean,last,first   # 6 files per shard, small
    .venv/bin/python bench/bench_store.py --samples 4000 --url file:///tmp/nait-remote   # also a store at a URL

With `--url`, the same shards are also written to that fsspec URL (upload after each local write), then
opened from it twice: first into an empty local mirror (download + sha256 of every file), then again
with the mirror in place (only the remote checksums files are read and compared).

Timings are warm (the store was just written, so mostly in the page cache) and the machine is shared.
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

from nait_core.store import Store, list_stores  # noqa: E402


def build(path: Path, n: int, layers: int, neurons: int, reductions: list[str], shard: int) -> Store:
    manifest = {
        "model": {"name": "synthetic", "fingerprint": "bench", "dtype": "float32"},
        "data": {"name": "synthetic", "hash": "bench", "n_samples": n},
        "options": {"reductions": reductions, "max_length": 1024},
        "shape": {"layers": layers, "neurons": neurons},
        "shard_size": shard,
    }
    store = Store.create(path, manifest)
    block = np.random.default_rng(0).normal(size=(shard, layers, neurons)).astype(np.float16)
    for start, end in store.shard_ranges():
        k = end - start
        store.write_shard(
            start,
            end,
            {
                **{r: block[:k] for r in reductions},
                "tokens": np.full(k, 200, np.int32),
                "response_tokens": np.full(k, 100, np.int32),
                "truncated": np.zeros(k, bool),
            },
        )
    return store


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=52_000)
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--neurons", type=int, default=1536)
    parser.add_argument("--reductions", default="mean")
    parser.add_argument("--shard-size", type=int, default=512)
    parser.add_argument("--dir", help="where to write the temporary store (default: system temp)")
    parser.add_argument("--url", help="also write the store to this fsspec URL and time opening it from there")
    args = parser.parse_args()
    reductions = args.reductions.split(",")
    folder = Path(tempfile.mkdtemp(prefix="nait-bench-store-", dir=args.dir))
    try:
        started = time.perf_counter()
        store = build(folder / "s", args.samples, args.layers, args.neurons, reductions, args.shard_size)
        write_s = time.perf_counter() - started
        size = store.size_bytes()
        result = {
            "samples": args.samples,
            "shape": [args.layers, args.neurons],
            "reductions": reductions,
            "shards": len(store.shard_ranges()),
            "files": sum(1 for _ in folder.rglob("*.npy")),
            "size_gb": round(size / 1e9, 2),
            "write_s": round(write_s, 1),
            "open_cheap_s": round(best_of(lambda: Store.open(folder / "s"), 5), 4),
            "list_stores_s": round(best_of(lambda: list_stores(folder), 3), 4),
            "open_verify_s": round(best_of(lambda: Store.open(folder / "s", verify=True), 1), 2),
        }
        result["verify_gb_per_s"] = round(size / 1e9 / result["open_verify_s"], 2)
        result["speedup"] = round(result["open_verify_s"] / result["open_cheap_s"])
        if args.url:
            import os

            from nait_core.store import mirror_folder

            os.environ["NAIT_CACHE"] = str(folder / "cache")
            url = args.url.rstrip("/") + "/" + folder.name
            started = time.perf_counter()
            remote = Store.create(url, store.manifest)
            for shard in store.shards():
                remote.write_shard(
                    shard.start,
                    shard.end,
                    {n: store._array(shard, n) for n in reductions + ["tokens", "response_tokens", "truncated"]},
                )
            result["url_write_s"] = round(time.perf_counter() - started, 1)
            shutil.rmtree(mirror_folder(url))
            result["url_open_first_s"] = round(best_of(lambda: Store.open(url), 1), 2)
            result["url_open_again_s"] = round(best_of(lambda: Store.open(url), 3), 3)
        print(json.dumps(result))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
