"""What a capture will cost before it runs (`nait plan`, and the fit check `nait select`/`capture` make).

Nothing here loads weights. The model's shape comes from its config, built on the meta device (no
memory) and searched by the same `find_neuron_modules` capture uses, so a config-only folder
(config.json and tokenizer files) plans like a full one. Tokens come from `tokens.tokenize`, the
tokenization capture runs. Store bytes come from the store format (`sketch.bytes_per_sample`, the
per-sample arrays `capture_shard` writes, one .npy header per file and shard); free space from
`shutil.disk_usage` on the nearest existing folder above the store. Times come from `THROUGHPUT`
(measured figures, with where and how) or, for a device and shape never measured, from FLOPs at an
assumed utilisation, labelled as an estimate.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .capture import CaptureOptions, find_store, store_key, store_path
from .data import Dataset
from .model_shape import ModelShape, ShapeUnknown, load_tokenizer, model_shape, model_source  # noqa: F401 (re-exported)
from .pipeline import compact_options, target_capture_options
from .sketch import RECOMMENDED_K, bytes_per_sample
from .store import DEFAULT_REDUCTIONS, HIDDEN, PER_SAMPLE, REDUCTIONS, Store, StoreError, default_shard_size, is_url
from .tokens import tokenize

# The per-sample arrays `capture.capture_shard` writes beside the summaries, by dtype (int32, int32, bool).
PER_SAMPLE_DTYPES = {"tokens": np.int32, "response_tokens": np.int32, "truncated": np.bool_}
assert set(PER_SAMPLE_DTYPES) == set(PER_SAMPLE), "plan.PER_SAMPLE_DTYPES must list store.PER_SAMPLE"
FREE_RESERVE = 0.05  # share of the free space a capture leaves untouched (logs, temporary shard folders)
# A default `nait select` whose pool would pass this stores only what its --method reads (method_reductions).
DEFAULT_STORE_LIMIT = 40e9
COMPACT_REDUCTIONS = ("mean", "last-first")  # with --sketch RECOMMENDED_K: the compact alternative


class PlanError(StoreError):
    """A capture that cannot fit: the message lists the options that would."""


# ---------------------------------------------------------------- store bytes


def _npy_header_bytes(shape: tuple, dtype) -> int:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    )
    return out.tell()


def store_bytes(
    n_samples: int, shape: ModelShape, reductions, sketch_k: int | None = None, shard_size: int | None = None
) -> int:
    """Bytes a complete store of these options holds on disk (the manifest excluded): per shard, one
    float16 [samples, layers, width] .npy per reduction, the per-sample arrays and checksums.json."""
    if n_samples <= 0:
        return 0
    shard = shard_size or default_shard_size(n_samples)
    width = sketch_k or shape.neurons
    names = (*reductions, *PER_SAMPLE, *((HIDDEN,) if shape.hidden else ()))
    files = {f"{name}.npy": "0" * 64 for name in names}
    total = 0
    for start in range(0, n_samples, shard):
        rows = min(shard, n_samples - start)
        # checksums.json as Store.write_shard writes it: bound to the store (sha256) and range, a sha256 per file
        checksums_bytes = len(json.dumps({"store": "0" * 64, "range": [start, start + rows], "files": files}, indent=1))
        total += rows * bytes_per_sample(shape.layers, shape.neurons, len(reductions), sketch_k)
        total += len(reductions) * _npy_header_bytes((rows, shape.layers, width), np.float16)
        for dtype in PER_SAMPLE_DTYPES.values():
            total += rows * np.dtype(dtype).itemsize + _npy_header_bytes((rows,), dtype)
        if shape.hidden:  # rds's pooled final hidden state, float32 (store.HIDDEN)
            total += rows * 4 * shape.hidden + _npy_header_bytes((rows, shape.hidden), np.float32)
        total += checksums_bytes
    return total


def method_reductions(method: str, pca_reduction: str = "last-first") -> tuple[str, ...]:
    """The pool summaries a scoring method reads (scoring.Kernel): overlap and jaccard the token mean,
    nait-pca its --reduction (last-first is stored directly: half of last and first)."""
    return (pca_reduction,) if method == "nait-pca" else ("mean",)


# ---------------------------------------------------------------- one store, then a whole capture


@dataclass
class StorePlan:
    label: str
    records: int
    reductions: tuple[str, ...]
    sketch_k: int | None
    bytes: int  # the complete store
    on_disk: int = 0  # already written (a partial store resumes; a complete one is reused)
    reused: bool = False

    @property
    def need(self) -> int:
        return 0 if self.reused else max(self.bytes - self.on_disk, 0)

    def to_json(self) -> dict:
        return {
            "label": self.label,
            "records": self.records,
            "reductions": list(self.reductions),
            "sketch": self.sketch_k,
            "bytes": self.bytes,
            "on_disk": self.on_disk,
            "reused": self.reused,
            "need": self.need,
        }


def _store_plan(label, model, dataset: Dataset, root, options: CaptureOptions, shape: ModelShape) -> StorePlan:
    k = options.sketch.k if options.sketch else None
    size = store_bytes(len(dataset), shape, options.reductions, k, options.shard_size)
    plan = StorePlan(label, len(dataset), tuple(options.reductions), k, size)
    if model is None:
        return plan
    if find_store(model, dataset, root, options) is not None:
        plan.reused = True
    elif not is_url(str(root)):
        existing = Store.existing(store_path(root, store_key(model, dataset, None, options, shape=False)[0]))
        plan.on_disk = existing.size_bytes() if existing is not None else 0
    return plan


def capture_plans(
    model, pool: Dataset, targets: list[Dataset], root, options: CaptureOptions, shape: ModelShape
) -> list[StorePlan]:
    """Every store a capture of `pool` (and `targets`, exact) with `options` writes: the pool, a compact
    pool's exact sample, each target. `model` (a LazyModel, for finding existing stores) may be None."""
    plans = [_store_plan(f"pool {pool.name}", model, pool, root, options, shape)]
    if options.sketch and options.exact_sample:
        n = min(options.exact_sample, len(pool))  # captured exact, with the pool's reductions, before the pool
        reductions = tuple(options.reductions)
        plans.append(StorePlan(f"exact sample of {pool.name}", n, reductions, None, store_bytes(n, shape, reductions)))
        plans[-1].reused = plans[0].reused
    target_options = target_capture_options(options)
    for target in targets:
        plans.append(_store_plan(f"target {target.name}", model, target, root, target_options, shape))
    return plans


def free_bytes(root) -> int | None:
    """Free bytes on the disk that holds `root` (its nearest existing folder); None for a URL."""
    if is_url(str(root)):
        return None
    folder = Path(root).expanduser().absolute()
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def fits(need: int, free: int | None) -> bool:
    return free is None or need <= (1 - FREE_RESERVE) * free


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


# ---------------------------------------------------------------- time per device

# Measured capture throughput: real tokens per second through `nait` capture, shape (layers, neurons),
# with where and how. Only a device and shape measured here is called "measured"; docs/benchmarks.md.
THROUGHPUT = (
    {
        "device": "NVIDIA H200",
        "shape": (30, 1536),
        "tok_s": 88_256,
        "how": "bench_capture_peers.py --device cuda, bundled SmolLM2-135M bf16, demo pool, median of 3 "
        "(2026-11-26; host-bound, docs/benchmarks.md)",
    },
    {
        "device": "CPU",
        "shape": (30, 1536),
        "tok_s": 400,
        "how": "bundled SmolLM2-135M fp32 on 2 idle AMD EPYC cores (docs/benchmarks.md, Machine)",
    },
)
# Dense bf16 peak (vendor data sheets, TFLOP/s) of GPUs with no measurement at the planned shape.
GPU_PEAK_TFLOPS = {"NVIDIA H100 SXM": 989, "NVIDIA H200": 989, "NVIDIA A100 / A800": 312, "NVIDIA L40S": 362}
ASSUMED_UTILISATION = 0.4  # of peak, for a GPU-bound 7B forward pass (issue 23: 40-50 % is realistic)
CPU_REFERENCE_PARAMS = 106_000_000  # SmolLM2-135M's decoder stack without embeddings: CPU figures scale by FLOPs


def device_times(shape: ModelShape, tokens: int, context: float) -> list[dict]:
    """Expected capture seconds of `tokens` on each device (and on 8 GPUs with --ray, assuming linear scaling)."""
    flops = shape.flops_per_token(context)
    rows = []
    for gpu, tflops in GPU_PEAK_TFLOPS.items():
        measured = next(
            (m for m in THROUGHPUT if m["device"] == gpu and m["shape"] == (shape.layers, shape.neurons)), None
        )
        if measured:
            tok_s, basis = measured["tok_s"], f"measured: {measured['how']}"
        else:
            tok_s = tflops * 1e12 * ASSUMED_UTILISATION / flops
            basis = f"estimate: {flops / 1e9:,.1f} GFLOP/token at {ASSUMED_UTILISATION:.0%} of {tflops} TFLOP/s bf16"
        for gpus in (1, 8):
            rows.append(
                {"device": gpu, "gpus": gpus, "tok_s": tok_s * gpus, "seconds": tokens / (tok_s * gpus), "basis": basis}
            )
    cpu = next(m for m in THROUGHPUT if m["device"] == "CPU")
    if cpu["shape"] == (shape.layers, shape.neurons):
        tok_s, basis = cpu["tok_s"], f"measured: {cpu['how']}"
    else:
        reference = ModelShape(30, 1536, 576, CPU_REFERENCE_PARAMS).flops_per_token(context)
        tok_s = cpu["tok_s"] * reference / flops
        basis = f"estimate: the measured bundled-model CPU figure ({cpu['tok_s']} tok/s) scaled by FLOPs"
    rows.append({"device": "CPU (2 cores)", "gpus": 0, "tok_s": tok_s, "seconds": tokens / tok_s, "basis": basis})
    return rows


# ---------------------------------------------------------------- the plan


@dataclass
class Plan:
    model: str
    shape: ModelShape
    records: int
    tokens: int | None  # pool and targets: what the capture runs
    pool_tokens: int | None
    truncated: int | None
    stores: list[StorePlan]
    compact: list[StorePlan]  # the same capture with --sketch 256 --reductions mean,last-first
    free: int | None
    root: str
    times: list[dict] = field(default_factory=list)
    alternatives: list[tuple[str, int]] = field(default_factory=list)  # (options, bytes needed) that fit
    notes: list[str] = field(default_factory=list)

    @property
    def need(self) -> int:
        return sum(s.need for s in self.stores)

    @property
    def store_bytes(self) -> int:
        return self.stores[0].bytes

    @property
    def fits(self) -> bool:
        return fits(self.need, self.free)

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "shape": {"layers": self.shape.layers, "neurons": self.shape.neurons, "params": self.shape.params},
            "records": self.records,
            "tokens": self.tokens,
            "pool_tokens": self.pool_tokens,
            "truncated": self.truncated,
            "store_bytes": self.store_bytes,
            "need_bytes": self.need,
            "compact_store_bytes": self.compact[0].bytes,
            "compact_need_bytes": sum(s.need for s in self.compact),
            "free_bytes": self.free,
            "store_dir": self.root,
            "fits": self.fits,
            "stores": [s.to_json() for s in self.stores],
            "compact_stores": [s.to_json() for s in self.compact],
            "alternatives": [{"options": o, "need_bytes": b} for o, b in self.alternatives],
            "times": self.times,
            "notes": self.notes,
        }

    def refusal(self) -> str:
        """Why this capture cannot start, and what would fit."""
        pool = self.stores[0]
        width = f"K={pool.sketch_k}" if pool.sketch_k else f"{self.shape.neurons:,} neurons"
        options = "; ".join(f"{o} ({_gb(b)})" for o, b in self.alternatives) or "none at this disk"
        return (
            f"the capture needs about {_gb(self.need)} under {self.root} but {_gb(self.free or 0)} is free there "
            f"(pool: {pool.records:,} records x {len(pool.reductions)} summaries ({','.join(pool.reductions)}) x "
            f"{self.shape.layers} layers x {width} x 2 bytes = {_gb(pool.bytes)}). Options that fit: {options}; "
            f"or point --store-dir at a disk with at least {_gb(self.need / (1 - FREE_RESERVE))} free. "
            "Run `nait plan` with the same options to see every figure"
        )


def _alternatives(model, pool, targets, root, options, shape, free) -> list[tuple[str, int]]:
    """Cheaper settings of the same capture, those whose need fits `free`, smallest change first."""
    tries = []
    if not options.sketch and len(options.reductions) > 1:
        tries.append(("--reductions mean (overlap, jaccard)", replace(options, reductions=("mean",))))
    compact = compact_options(replace(options, reductions=COMPACT_REDUCTIONS), RECOMMENDED_K, 0, 2000)
    tries.append((f"--sketch {RECOMMENDED_K} --reductions {','.join(COMPACT_REDUCTIONS)}", compact))
    tries.append(
        (
            f"--sketch {RECOMMENDED_K} --reductions {','.join(COMPACT_REDUCTIONS)} --exact-sample 0",
            replace(compact, exact_sample=0),
        )
    )
    out = []
    for label, opts in tries:
        need = sum(s.need for s in capture_plans(model, pool, targets, root, opts, shape))
        if fits(need, free):
            out.append((label, need))
    return out


def make_plan(
    model,
    pool: Dataset,
    targets: list[Dataset],
    root,
    options: CaptureOptions,
    shape: ModelShape,
    tokenizer=None,
) -> Plan:
    """The figures of one capture. With `tokenizer`, tokens are counted (the slow part: every record is
    tokenized); without, `tokens` is None (the fit check needs only counts and the shape)."""
    tokens = pool_tokens = truncated = None
    times: list[dict] = []
    if tokenizer is not None:
        tokenized = [tokenize(d, tokenizer, options.max_length) for d in [pool, *targets] if len(d)]
        tokens = int(sum(int(t.lengths.sum()) for t in tokenized))
        pool_tokens = int(tokenized[0].lengths.sum()) if len(pool) else 0
        truncated = int(sum(sum(t.truncated) for t in tokenized))
        context = tokens / max(1, sum(len(t.input_ids) for t in tokenized))
        times = device_times(shape, tokens, context)
    free = free_bytes(root)
    stores = capture_plans(model, pool, targets, root, options, shape)
    compact_opts = compact_options(replace(options, reductions=COMPACT_REDUCTIONS), RECOMMENDED_K, 0, 2000)
    plan = Plan(
        model=getattr(model, "name", str(model)),
        shape=shape,
        records=len(pool),
        tokens=tokens,
        pool_tokens=pool_tokens,
        truncated=truncated,
        stores=stores,
        compact=capture_plans(model, pool, targets, root, compact_opts, shape),
        free=free,
        root=str(root),
        times=times,
    )
    if free is None:
        plan.notes.append(f"{root} is a URL: its free space is unknown, so the fit is not checked")
    if not plan.fits:
        plan.alternatives = _alternatives(model, pool, targets, root, options, shape, free)
    return plan


def check_fit(plan: Plan) -> None:
    """Refuse a capture that cannot fit before it starts (a PlanError: `nait: error: ...`, exit 2)."""
    if not plan.fits:
        raise PlanError(plan.refusal())


def default_pool_reductions(
    model, pool: Dataset, root, options: CaptureOptions, shape: ModelShape, method: str, pca_reduction: str
) -> tuple[tuple[str, ...], str | None]:
    """The pool reductions of a `nait select`/`score` given no --reductions, and a line to show when they
    are not the defaults: the defaults (mean,last,first; the store key people's stores have) unless that
    store would pass DEFAULT_STORE_LIMIT and none is on disk yet; then only what `method` reads."""
    if set(DEFAULT_REDUCTIONS) != set(options.reductions):
        return tuple(options.reductions), None
    k = options.sketch.k if options.sketch else None
    if store_bytes(len(pool), shape, DEFAULT_REDUCTIONS, k) <= DEFAULT_STORE_LIMIT:
        return DEFAULT_REDUCTIONS, None
    existing = None if is_url(str(root)) else store_path(root, store_key(model, pool, None, options, shape=False)[0])
    if existing is not None and Store.existing(existing) is not None:  # an old default store: reuse or resume it
        return DEFAULT_REDUCTIONS, None
    chosen = tuple(r for r in method_reductions(method, pca_reduction) if r in REDUCTIONS)
    return chosen, (
        f"nait: note: a {','.join(DEFAULT_REDUCTIONS)} store of {len(pool):,} records would take "
        f"{_gb(store_bytes(len(pool), shape, DEFAULT_REDUCTIONS, k))}; storing only {','.join(chosen)}, what "
        f"--method {method} reads ({_gb(store_bytes(len(pool), shape, chosen, k))}). "
        f"Pass --reductions {','.join(DEFAULT_REDUCTIONS)} to keep all three (every method, and the app's views)"
    )


def describe_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds / 3600:,.1f} h"
