"""Capture cost: hooked vs bare forward pass on the same batches, and what length bucketing buys.

1. Hook overhead. The same length-sorted batches of a seeded sample of the demo pool go through the
   decoder twice per repeat: bare (`capture.forward` only) and captured (the `Reducer` hooks on every
   layer, `set_batch`, and copying the float32 summaries to float16 NumPy arrays, as `capture.capture`
   does). The two runs alternate batch by batch, and which one goes first alternates too, so machine noise
   hits both; the figure is the median over repeats of captured tok/s ÷ bare tok/s, by wall clock and by
   this process's CPU time (less sensitive to other work on a shared machine).
2. Padding. The padded-token share of the whole demo pool (1,000 records; tokenising only) with the
   length-sorted batches of `tokens.make_batches` vs batches of shuffled records under the same token
   budget and batch-size cap.
3. Bucketing speed-up. The sample of (1) captured (hooks on) with sorted vs shuffled batches, runs
   alternating A B B A …; the figure is the median over repeats of shuffled time ÷ sorted time.

    .venv/bin/python bench/bench_capture.py                 # defaults: 100 records, 3 + 2 repeats

Tokens per second count real (unpadded) tokens in both runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nait_core import pipeline  # noqa: E402
from nait_core.models import load_model  # noqa: E402
from nait_core.store import DEFAULT_REDUCTIONS  # noqa: E402
from nait_core.tokens import Tokenized, make_batches, pad_batch, tokenize  # noqa: E402

cap = importlib.import_module("nait_core.capture")  # `nait_core.capture` is also a function name


def shuffled_batches(lengths: np.ndarray, batch_tokens: int, max_batch_size: int, seed: int) -> list[list[int]]:
    """Batches in a random order under the same rule as `make_batches`: padded width × rows ≤ budget."""
    order = np.random.default_rng(seed).permutation(len(lengths))
    batches, current, width = [], [], 0
    for i in order:
        new_width = max(width, int(lengths[i]))
        if current and ((len(current) + 1) * new_width > batch_tokens or len(current) >= max_batch_size):
            batches.append(current)
            current, new_width = [], int(lengths[i])
        current.append(int(i))
        width = new_width
    if current:
        batches.append(current)
    return batches


def padded_share(lengths: np.ndarray, batches: list[list[int]]) -> tuple[float, int, int]:
    real = int(sum(lengths[b].sum() for b in batches))
    padded = int(sum(len(b) * lengths[b].max() for b in batches))
    return 1 - real / padded, real, padded


class Runner:
    """Runs one batch bare or captured, returning [wall seconds, process CPU seconds]."""

    def __init__(self, model, tokens: Tokenized, reductions):
        self.model, self.tokens = model, tokens
        self.reducer = cap.Reducer(model, reductions)
        self.pad_id = model.tokenizer.pad_token_id

    def bare(self, rows) -> np.ndarray:
        t = np.array([time.perf_counter(), time.process_time()])
        ids, mask = pad_batch([self.tokens.input_ids[r] for r in rows], self.pad_id, self.model.device)
        cap.forward(self.model, ids, mask)
        return np.array([time.perf_counter(), time.process_time()]) - t

    def captured(self, rows) -> np.ndarray:
        t = np.array([time.perf_counter(), time.process_time()])
        ids, mask = pad_batch([self.tokens.input_ids[r] for r in rows], self.pad_id, self.model.device)
        start = torch.tensor([self.tokens.response_start[r] for r in rows], device=self.model.device)
        with self.reducer.hooks():
            self.reducer.set_batch(mask, start)
            cap.forward(self.model, ids, mask)
        self.reducer.out.cpu().numpy().astype(np.float16)
        return np.array([time.perf_counter(), time.process_time()]) - t


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100, help="seeded sample of the demo pool for the timed runs")
    parser.add_argument("--hook-repeats", type=int, default=3)
    parser.add_argument("--bucket-repeats", type=int, default=2, help="each repeat runs sorted and shuffled once")
    parser.add_argument("--batch-tokens", type=int, default=cap.CPU_BATCH_TOKENS)
    parser.add_argument("--max-batch-size", type=int, default=cap.CPU_MAX_BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CUDA {torch.cuda.is_available()}"
    )
    model = load_model()
    print(
        f"model: {model.name}, {model.n_layers} layers × {model.neurons_per_layer} neurons, "
        f"{next(model.model.parameters()).dtype}, {model.device}"
    )
    demo = pipeline.load_data("demo")
    tokens = tokenize(demo, model.tokenizer, cap.CaptureOptions().max_length)
    lengths = tokens.lengths

    # ---- 2. padding on the full demo pool (no forward passes)
    sorted_all = make_batches(lengths, args.batch_tokens, args.max_batch_size)
    shuffled_all = shuffled_batches(lengths, args.batch_tokens, args.max_batch_size, args.seed)
    share_sorted, real, pad_sorted = padded_share(lengths, sorted_all)
    share_shuffled, _, pad_shuffled = padded_share(lengths, shuffled_all)
    print(
        f"\n[padding] demo pool: {len(lengths)} records, {real:,} real tokens, budget {args.batch_tokens} "
        f"tokens/batch, at most {args.max_batch_size} rows"
    )
    print(f"  length-sorted: {len(sorted_all)} batches, {pad_sorted:,} padded tokens, padded share {share_sorted:.1%}")
    print(
        f"  shuffled:      {len(shuffled_all)} batches, {pad_shuffled:,} padded tokens, padded share {share_shuffled:.1%}"
    )

    # ---- the timed sample
    rows = np.sort(np.random.default_rng(args.seed).choice(len(demo), size=min(args.samples, len(demo)), replace=False))
    sub_lengths = lengths[rows]
    sorted_batches = [
        [int(rows[i]) for i in b] for b in make_batches(sub_lengths, args.batch_tokens, args.max_batch_size)
    ]
    shuffled = [
        [int(rows[i]) for i in b]
        for b in shuffled_batches(sub_lengths, args.batch_tokens, args.max_batch_size, args.seed)
    ]
    real_tokens = int(sub_lengths.sum())
    runner = Runner(model, tokens, DEFAULT_REDUCTIONS)
    print(
        f"\ntimed sample: {len(rows)} demo records, {real_tokens:,} real tokens; "
        f"{len(sorted_batches)} sorted batches, {len(shuffled)} shuffled batches"
    )

    with torch.inference_mode():
        runner.captured(sorted_batches[-1]), runner.bare(sorted_batches[-1])  # warm-up

        # ---- 1. hook overhead, interleaved batch by batch
        ratios, cpu_ratios, bare_rates, captured_rates = [], [], [], []
        for repeat in range(args.hook_repeats):
            bare, captured = np.zeros(2), np.zeros(2)
            for n, batch in enumerate(sorted_batches):
                if (n + repeat) % 2 == 0:
                    bare += runner.bare(batch)
                    captured += runner.captured(batch)
                else:
                    captured += runner.captured(batch)
                    bare += runner.bare(batch)
            bare_rates.append(real_tokens / bare[0])
            captured_rates.append(real_tokens / captured[0])
            ratios.append(bare[0] / captured[0])
            cpu_ratios.append(bare[1] / captured[1])
            print(
                f"  [hooks] repeat {repeat + 1}: bare {bare_rates[-1]:,.0f} tok/s, captured "
                f"{captured_rates[-1]:,.0f} tok/s, ratio {ratios[-1]:.3f} (wall), {cpu_ratios[-1]:.3f} (CPU time)",
                flush=True,
            )

        # ---- 3. bucketing speed-up, A B B A …
        speedups, cpu_speedups, sorted_times, shuffled_times = [], [], [], []
        for repeat in range(args.bucket_repeats):
            order = ("sorted", "shuffled") if repeat % 2 == 0 else ("shuffled", "sorted")
            seconds = {}
            for name in order:
                seconds[name] = sum(runner.captured(b) for b in (sorted_batches if name == "sorted" else shuffled))
            sorted_times.append(seconds["sorted"])
            shuffled_times.append(seconds["shuffled"])
            speedups.append(seconds["shuffled"][0] / seconds["sorted"][0])
            cpu_speedups.append(seconds["shuffled"][1] / seconds["sorted"][1])
            print(
                f"  [bucketing] repeat {repeat + 1}: sorted {real_tokens / seconds['sorted'][0]:,.0f} tok/s, "
                f"shuffled {real_tokens / seconds['shuffled'][0]:,.0f} tok/s, speed-up {speedups[-1]:.2f}× (wall), "
                f"{cpu_speedups[-1]:.2f}× (CPU time)",
                flush=True,
            )

    sub_share_sorted = padded_share(sub_lengths, make_batches(sub_lengths, args.batch_tokens, args.max_batch_size))[0]
    sub_share_shuffled = padded_share(
        sub_lengths, shuffled_batches(sub_lengths, args.batch_tokens, args.max_batch_size, args.seed)
    )[0]
    print("\n| figure | value |\n|---|---|")
    print(
        f"| captured ÷ bare tok/s, same batches, wall clock (median of {args.hook_repeats}) | {np.median(ratios):.3f} |"
    )
    print(f"| captured ÷ bare, process CPU time (median of {args.hook_repeats}) | {np.median(cpu_ratios):.3f} |")
    print(f"| bare tok/s (median) | {np.median(bare_rates):,.0f} |")
    print(f"| captured tok/s (median) | {np.median(captured_rates):,.0f} |")
    print(f"| padded share, demo pool, length-sorted batches | {share_sorted:.1%} |")
    print(f"| padded share, demo pool, shuffled batches | {share_shuffled:.1%} |")
    print(f"| padded share, timed sample, sorted / shuffled | {sub_share_sorted:.1%} / {sub_share_shuffled:.1%} |")
    print(
        f"| speed-up of sorted over shuffled batches, captured, wall clock (median of {args.bucket_repeats}) | {np.median(speedups):.2f}× |"
    )
    print(f"| same, process CPU time (median of {args.bucket_repeats}) | {np.median(cpu_speedups):.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
