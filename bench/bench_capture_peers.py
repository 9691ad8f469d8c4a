"""Capture against its peers, side by side in one process, on the bundled model and the same tokens.

Part `peers` (arms interleaved, which arm goes first rotates each repeat; medians of the repeats):
  - capture at its defaults (`capture.capture_shards`: batch budget from `capture.batch_budget`, the
    three default summaries of every layer, written to a fresh store: the real single-process loop);
  - capture with other token budgets (the CPU sweep behind the default): `--sweep 1024,4096,8192`;
  - plain Hugging Face forward `model(input_ids, attention_mask)` with the LM head, length-sorted, 8 rows;
  - nnsight 0.8 tracing the same batches of 8, saving each layer's down-projection input token mean
    (masked: real tokens only, the `mean` summary capture stores).
Part `ray` (Ray local cluster started once, its start-up timed apart): the same capture single-process
vs `--ray` with 1 and 2 actors, each run into a fresh store; wall time of the whole call (actor start
and model load included) and the actors' own shard time.

    .venv/bin/python bench/bench_capture_peers.py --samples 80 --repeats 2 --parts peers
    .venv/bin/python bench/bench_capture_peers.py --samples 80 --repeats 2 --parts ray
    # one GPU (checks the CUDA budget that `--batch-tokens auto` picks, against fixed ones):
    .venv/bin/python bench/bench_capture_peers.py --device cuda --samples 400 --sweep 8192,16384,65536

Tokens per second count real (unpadded) tokens; every arm sees the same token ids.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nait_core import pipeline  # noqa: E402
from nait_core.models import load_model  # noqa: E402
from nait_core.store import Store  # noqa: E402
from nait_core.tokens import Tokenized, pad_batch, tokenize  # noqa: E402

cap = importlib.import_module("nait_core.capture")  # `nait_core.capture` is also a function name


def sorted_batches(lengths: np.ndarray, rows: int) -> list[list[int]]:
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + rows].tolist() for i in range(0, len(order), rows)]


class Arms:
    def __init__(self, model, dataset, tokens: Tokenized, workdir: Path):
        self.model, self.dataset, self.tokens, self.workdir = model, dataset, tokens, workdir
        self.n = len(tokens.input_ids)
        self.real = int(tokens.lengths.sum())
        self.batches8 = sorted_batches(tokens.lengths, 8)
        self.runs = 0

    def _fresh_store(self, options) -> Store:
        self.runs += 1
        key, manifest = cap.store_key(
            self.model, self.dataset, self.tokens, options, next(self.model.model.parameters()).dtype
        )
        return Store.create(self.workdir / f"run{self.runs}" / key, {**manifest, "shard_size": self.n})

    def capture(self, batch_tokens: int | None) -> float:
        options = cap.CaptureOptions(batch_tokens=batch_tokens, shard_size=self.n)
        store = self._fresh_store(options)
        began = time.perf_counter()
        cap.capture_shards(self.model, self.tokens, store, [(0, self.n)], options)
        seconds = time.perf_counter() - began
        shutil.rmtree(store.path.parent)
        return seconds

    def plain(self) -> float:
        pad = self.model.tokenizer.pad_token_id
        began = time.perf_counter()
        with torch.inference_mode():
            for batch in self.batches8:
                ids, mask = pad_batch([self.tokens.input_ids[i] for i in batch], pad, self.model.device)
                self.model.model(input_ids=ids, attention_mask=mask).logits.float().cpu()
        return time.perf_counter() - began

    def nnsight(self) -> float:
        import nnsight

        traced = self.__dict__.setdefault("_nn", nnsight.NNsight(self.model.model))
        layers = len(self.model.neuron_modules)
        pad = self.model.tokenizer.pad_token_id
        began = time.perf_counter()
        with torch.inference_mode():
            for batch in self.batches8:
                ids, mask = pad_batch([self.tokens.input_ids[i] for i in batch], pad, self.model.device)
                weights = (mask / mask.sum(1, keepdim=True)).to(next(self.model.model.parameters()).dtype)[:, None, :]
                with traced.trace(ids, attention_mask=mask):
                    means = nnsight.save([])
                    for layer in range(layers):
                        means.append(torch.bmm(weights, traced.model.layers[layer].mlp.down_proj.input)[:, 0])
                np.stack([m.float().cpu().numpy() for m in means], 1).astype(np.float16)
        return time.perf_counter() - began


def interleaved(arms: dict, repeats: int, real: int) -> tuple[dict, dict]:
    """tok/s by wall clock and by this process's CPU time (less disturbed by other jobs on a shared
    machine; meaningless for Ray arms, whose work runs in other processes)."""
    rates, cpu_rates = {name: [] for name in arms}, {name: [] for name in arms}
    names = list(arms)
    for repeat in range(repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            cpu = time.process_time()
            seconds = arms[name]()
            cpu = time.process_time() - cpu
            rates[name].append(real / seconds)
            cpu_rates[name].append(real / cpu)
            print(
                f"  repeat {repeat + 1}: {name}: {real / seconds:,.0f} tok/s ({seconds:.1f} s wall, {cpu:.1f} s CPU; "
                f"load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    return rates, cpu_rates


def table(rates: dict, base: str, cpu_rates: dict | None = None) -> None:
    print(
        f"\n| arm | tok/s (median) | runs | ÷ {base} |"
        + (" ÷, by CPU time |" if cpu_rates else "")
        + "\n|---|---|---|---|"
        + ("---|" if cpu_rates else "")
    )
    ref = np.median(rates[base])
    for name, values in rates.items():
        line = f"| {name} | {np.median(values):,.0f} | {', '.join(f'{v:,.0f}' for v in values)} | {np.median(values) / ref:.2f} |"
        if cpu_rates:
            line += f" {np.median(cpu_rates[name]) / np.median(cpu_rates[base]):.2f} |"
        print(line, flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=80, help="seeded sample of the demo pool")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--parts", default="peers", help="peers, ray or peers,ray")
    parser.add_argument("--sweep", default="1024,4096,8192", help="other capture token budgets to time (empty: none)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, CUDA {torch.cuda.is_available()}, load {os.getloadavg()}"
    )
    model = load_model(device=args.device)
    dataset = pipeline.load_data("demo", limit=args.samples, seed=args.seed)
    tokens = tokenize(dataset, model.tokenizer, cap.CaptureOptions().max_length)
    budget = cap.batch_budget(model, cap.CaptureOptions())
    print(
        f"model {model.name} on {model.device}, {next(model.model.parameters()).dtype}; {len(dataset)} records, "
        f"{int(tokens.lengths.sum()):,} real tokens; default budget {budget[0]:,} tokens, at most {budget[1]} rows"
    )
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        arms = Arms(model, dataset, tokens, Path(tmp))
        if "peers" in args.parts:
            runs = {
                f"capture, default ({budget[0]:,} tokens)": lambda: arms.capture(None),
                "plain HF forward + LM head, sorted, 8 rows": arms.plain,
            }
            has_nnsight = importlib.util.find_spec("nnsight") is not None
            if has_nnsight:
                runs["nnsight 0.8, down_proj input token mean, same batches"] = arms.nnsight
            else:
                print("nnsight is not installed: its arm is left out")
            for tokens_budget in [int(t) for t in args.sweep.split(",") if t]:
                runs[f"capture, {tokens_budget:,} tokens"] = lambda b=tokens_budget: arms.capture(b)
            warm = Arms(model, dataset.subset(np.arange(4), "warm-up"), tokens.slice(0, 4), Path(tmp))
            warm.capture(None), warm.plain()  # first-call costs (allocator, nnsight set-up)
            if has_nnsight:
                warm.nnsight()
                arms._nn = warm._nn
            rates, cpu_rates = interleaved(runs, args.repeats, arms.real)
            table(rates, "plain HF forward + LM head, sorted, 8 rows", cpu_rates)
        if "ray" in args.parts:
            ray_part(model, dataset, Path(tmp), args)
    return 0


def ray_part(model, dataset, tmp: Path, args) -> None:
    import ray

    from nait_core.distributed import RayOptions

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    began = time.perf_counter()
    ray.init(num_cpus=max(4, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False)
    print(f"\n[ray] local cluster up in {time.perf_counter() - began:.1f} s")
    shard = max(1, len(dataset) // 8)  # 8 shards: work for 2 actors to share
    counter = iter(range(1000))

    def run(ray_options):
        options = cap.CaptureOptions(shard_size=shard, ray=ray_options)
        began = time.perf_counter()
        report = cap.capture(model, dataset, tmp / f"ray{next(counter)}", options)
        seconds = time.perf_counter() - began
        shutil.rmtree(report.store.path.parent)
        return seconds

    arms = {
        "single process": lambda: run(None),
        "ray, 1 actor": lambda: run(RayOptions(workers=1)),
        "ray, 2 actors": lambda: run(RayOptions(workers=2)),
    }
    tokens = tokenize(dataset, model.tokenizer, cap.CaptureOptions().max_length)
    real = int(tokens.lengths.sum())
    print(
        f"[ray] {len(dataset)} records, {real:,} tokens, shards of {shard}; wall time of the whole capture() call "
        "(tokenizing, actor start and model load included)"
    )
    rates, _ = interleaved(arms, args.repeats, real)
    table(rates, "single process")
    ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
