"""Capture at 7B shape on one device: the bare decoder, `nait` capture into a real store, and hand-written
peers, side by side in one process (issue 23).

Random-weight LLaMA-2-7B and Llama-3-8B configs are built in bf16 directly on the device (no download;
`with torch.device(...)`), so the figures are the cost of the computation, not of the weights' values.
Records are the GPTeacher pool in ../shared/data (realistic lengths; the built-in demo where it is
missing), tokenized with the bundled tokenizer as capture tokenizes (chat template, --max-length). The
config's vocabulary is raised to the tokenizer's so every id is valid; the embedding lookup costs no
FLOPs and the LM head never runs. Arms, each over the same records and token budget:

- `bare`: the length-sorted padded batches through the decoder stack (`capture.forward`), nothing kept;
- `nait <reductions>`: `capture.capture` into a store in a temporary folder: hooks, reductions on the
  device, the host copy, float16 shards written with their checksums (what `nait select` runs);
- `hooks`: what one writes by hand: forward pre-hooks on every down projection keeping each layer's
  masked token mean, copied to the host layer by layer;
- `hidden_states`: `output_hidden_states=True`, each layer's residual stream mean copied to the host
  (the residual stream, not the MLP neurons: the usual shortcut).

Reported per arm: real tokens per second, ratio to `bare`, peak device memory (CUDA; the process's peak
RSS on CPU), the projected time for 52,002 records of these records' mean length; for nait, the store's
bytes and the rate of `Store.write_shard` (timed on a rewrite of the first shard).

    python3 bench/bench_7b.py --shape 7b,8b --device cuda --records 2000 --deadline 420 --json out.json
    .venv/bin/python bench/bench_7b.py --shape tiny --device cpu --records 24      # seconds, in the tests
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nait_core.capture import CaptureOptions, batch_budget, capture, forward  # noqa: E402
from nait_core.data import Dataset, read_records, sample_rows  # noqa: E402
from nait_core.datasets import load_builtin  # noqa: E402
from nait_core.models import wrap_model  # noqa: E402
from nait_core.store import Store  # noqa: E402
from nait_core.tokens import make_batches, pad_batch, tokenize  # noqa: E402
from nait_testing.model_configs import LLAMA_2_7B, LLAMA_3_8B, TINY_LLAMA  # noqa: E402

ALPACA_RECORDS = 52_002  # Alpaca-GPT4, the paper's pool
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHAPES = {"tiny": TINY_LLAMA, "7b": LLAMA_2_7B, "8b": LLAMA_3_8B}


def load_pool(data: list[str], n: int, seed: int) -> Dataset:
    """A seeded sample of `n` records from the given files (default: GPTeacher), else the built-in demo."""
    files = [Path(p) for p in data] or sorted(SHARED_DATA.glob("gpteacher-*.json"))
    records = [r for f in files if f.exists() for r in read_records(f).records]
    if not records:
        records = load_builtin("demo").records
    rows = sample_rows(len(records), min(n, len(records)), seed)
    return Dataset(f"bench-{n}", [records[i] for i in rows])


def bundled_tokenizer(folder: str | None):
    from transformers import AutoTokenizer

    if folder:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    else:
        from nait_testing.models import bundled_tokenizer as bundled

        tokenizer = bundled()
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    return tokenizer


def build_model(shape: str, device: torch.device, dtype: torch.dtype, tokenizer):
    """A random-weight Llama of `shape`, built directly on `device` in `dtype`, wrapped for capture."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(**(SHAPES[shape] | {"vocab_size": max(SHAPES[shape]["vocab_size"], len(tokenizer))}))
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval().requires_grad_(False)
    return wrap_model(f"random-llama-{shape}", model, tokenizer, fingerprint=f"random-llama-{shape}-seed0")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB


def run_batches(model, tokens, budget, keep=None, hidden_states=False) -> float:
    """Seconds for every batch through the decoder; `keep(mask)` arms hooks per batch and returns a
    finisher that copies what they kept to the host."""
    lengths = tokens.lengths
    device, pad = model.device, model.tokenizer.pad_token_id
    sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in make_batches(lengths, *budget):
            ids, mask = pad_batch([tokens.input_ids[i] for i in batch], pad, device)
            if hidden_states:
                out = model.model.base_model(
                    input_ids=ids, attention_mask=mask, use_cache=False, output_hidden_states=True
                )
                weights = (mask / mask.sum(1, keepdim=True)).to(out.hidden_states[0].dtype)
                [torch.einsum("bp,bph->bh", weights, h).float().cpu() for h in out.hidden_states]
                del out
            elif keep is not None:
                finish = keep(mask)
                forward(model, ids, mask)
                finish()
            else:
                forward(model, ids, mask)
    sync(device)
    return time.perf_counter() - start


def hand_hooks(model):
    """Forward pre-hooks that keep each down projection's masked token mean, copied to the host per layer."""
    kept, state = [], {}

    def hook(module, args):
        x = args[0]
        weights = state["weights"].to(x.dtype)
        kept.append(torch.einsum("bp,bpn->bn", weights, x).float().cpu())  # a synchronous copy per layer

    handles = [m.register_forward_pre_hook(hook) for m in model.neuron_modules]

    def keep(mask):
        state["weights"] = mask / mask.sum(1, keepdim=True)
        kept.clear()
        return lambda: np.stack([k.numpy() for k in kept], 1)

    return keep, handles


def bench_shape(shape, args, pool, tokenizer, device, dtype, t0) -> dict:
    model = build_model(shape, device, dtype, tokenizer)
    options = CaptureOptions(max_length=args.max_length, batch_tokens=args.batch_tokens)
    budget = batch_budget(model, options)
    tokens = tokenize(pool, tokenizer, args.max_length)
    n_tokens = int(tokens.lengths.sum())
    mean_len = n_tokens / len(pool)
    result = {
        "shape": shape,
        "layers": model.n_layers,
        "neurons": model.neurons_per_layer,
        "params": sum(p.numel() for p in model.model.parameters()),
        "records": len(pool),
        "tokens": n_tokens,
        "mean_tokens_per_record": mean_len,
        "batch_tokens": budget[0],
        "max_batch_size": budget[1],
        "arms": {},
    }
    run_batches(model, tokenize(pool.subset(np.arange(min(4, len(pool))), "warm"), tokenizer, 64), budget)  # warm-up

    def record(name, seconds, **extra):
        tok_s = n_tokens / seconds
        bare = result["arms"].get("bare", {}).get("tok_s", tok_s)
        result["arms"][name] = {
            "seconds": seconds,
            "tok_s": tok_s,
            "ratio_to_bare": tok_s / bare,
            "peak_memory_bytes": peak_bytes(device),
            "projected_52k_seconds": ALPACA_RECORDS * mean_len / tok_s,
            **extra,
        }
        print(f"  {shape:>4} {name:<22} {tok_s:>12,.0f} tok/s  {tok_s / bare:5.2f}x bare", flush=True)

    def time_left() -> bool:
        if args.deadline and time.perf_counter() - t0 > args.deadline:
            result.setdefault("skipped", []).append("past --deadline")
            return False
        return True

    reset_peak(device)
    record("bare", run_batches(model, tokens, budget))
    for reductions in args.reductions:
        if not time_left():
            break
        reset_peak(device)
        with tempfile.TemporaryDirectory(dir=args.store_dir) as root:
            opts = CaptureOptions(
                reductions=tuple(reductions.split(",")), max_length=args.max_length, batch_tokens=budget[0]
            )
            sync(device)
            start = time.perf_counter()
            report = capture(model, pool, root, opts)
            sync(device)
            seconds = time.perf_counter() - start
            store = report.store
            size = store.size_bytes()
            s, e = store.shard_ranges()[0]
            rows = np.arange(s, e)
            arrays = {n: store.rows(n, rows).astype(np.float16) for n in store.reductions}
            arrays |= {n: store.per_sample(n)[s:e] for n in store.per_sample_names}  # rds's hidden states too
            copy = Store.create(Path(root) / "rewrite", store.manifest)
            written = time.perf_counter()
            copy.write_shard(s, e, arrays)
            write_s = time.perf_counter() - written
            shard_bytes = sum(f.stat().st_size for f in (Path(root) / "rewrite").glob("shard-*/*"))
        record(
            f"nait {reductions}",
            seconds,
            capture_loop_tok_s=report.tokens_per_second,
            store_bytes=size,
            store_bytes_52k=size / len(pool) * ALPACA_RECORDS,
            store_write_bytes_per_s=shard_bytes / write_s,
        )
    if time_left():
        reset_peak(device)
        keep, handles = hand_hooks(model)
        try:
            record("hooks (by hand)", run_batches(model, tokens, budget, keep=keep))
        finally:
            for h in handles:
                h.remove()
    if time_left():
        reset_peak(device)
        record("output_hidden_states", run_batches(model, tokens, budget, hidden_states=True))
    del model
    reset_peak(device)
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="7b,8b", help=f"comma-separated, from {', '.join(SHAPES)}")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on CUDA, float32 on CPU")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--data", action="append", default=[], help="record files (default: ../shared/data GPTeacher)")
    parser.add_argument("--tokenizer", help="a tokenizer folder (default: the bundled model's)")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--batch-tokens", type=int, help="padded tokens per batch (default: capture's auto budget)")
    parser.add_argument(
        "--reductions",
        action="append",
        help="nait arms (default: mean, what a 7B default select stores; and mean,last,first)",
    )
    parser.add_argument("--store-dir", default=None, help="where the temporary stores go (default: the system's)")
    parser.add_argument("--deadline", type=float, default=0, help="seconds: skip the arms not started by then")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    args.reductions = args.reductions or ["mean", "mean,last,first"]
    shapes = [s.strip() for s in args.shape.split(",") if s.strip()]
    unknown = set(shapes) - set(SHAPES)
    if unknown:
        parser.error(f"--shape: unknown {sorted(unknown)}; choose from {', '.join(SHAPES)}")
    t0 = time.perf_counter()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    tokenizer = bundled_tokenizer(args.tokenizer)
    pool = load_pool(args.data, args.records, args.seed)
    out = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "dtype": str(dtype).replace("torch.", ""),
        "torch": torch.__version__,
        "memory": "cuda max_memory_allocated" if device.type == "cuda" else "process peak RSS",
        "shapes": [],
    }
    print(f"{out['device']}, {out['dtype']}, {len(pool)} records", flush=True)
    for shape in shapes:
        if args.deadline and time.perf_counter() - t0 > args.deadline:
            out.setdefault("skipped", []).append(shape)
            continue
        out["shapes"].append(bench_shape(shape, args, pool, tokenizer, device, dtype, t0))
    out["seconds"] = time.perf_counter() - t0
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
