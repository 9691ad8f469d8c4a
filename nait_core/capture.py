"""Capture every layer's MLP neurons in one forward pass per batch, reduced on the device.

A forward pre-hook on each down projection receives its input `[batch, pos, neurons]` and reduces it
at once to per-sample summaries (mean over tokens, mean over response tokens, last token, first
token) in float32, so no per-token tensor outlives its layer. Batches are formed from length-sorted
samples under a token budget, right-padded, so padding never reaches a real token (causal attention)
and is excluded from every reduction.

The same pass also keeps, per record, the position-weighted mean of the final hidden state (the decoder
stack's output, what Hugging Face returns as the last of `hidden_states`: after the final norm), weights
position + 1 over the record's real tokens, normalised (SGPT, as RDS+ pools): `rds` reads it (store.HIDDEN).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .data import Dataset, content_hash, sample_rows
from .models import LoadedModel, slugify
from .progress import Progress, ProgressCallback
from .sketch import Sketch
from .store import (
    DEFAULT_REDUCTIONS,
    FORMAT_VERSION,
    HIDDEN,
    REDUCTIONS,
    Store,
    StoreError,
    ensure_writable,
    is_url,
)
from .tokens import Tokenized, make_batches, pad_batch, tokenize

DEFAULT_STORE_ROOT = Path("cached_features")


class Reducer:
    """Forward pre-hooks that reduce each layer's neuron inputs to per-sample float32 summaries."""

    def __init__(self, model: LoadedModel, reductions, sketch: Sketch | None = None):
        self.model, self.reductions = model, list(reductions)
        self.out: torch.Tensor | None = None  # [reductions, batch, layers, width]
        # A compact capture projects each layer's reduced rows on the device: the full vector never leaves it.
        self.sketch = sketch
        self.width = sketch.k if sketch else model.neurons_per_layer
        self.projections = (
            None
            if sketch is None
            else [
                torch.from_numpy(sketch.matrix(layer, model.neurons_per_layer).copy()).to(model.device)
                for layer in range(model.n_layers)
            ]
        )

    def set_batch(self, attention_mask: torch.Tensor, response_start: torch.Tensor) -> None:
        batch, pos = attention_mask.shape
        mask = attention_mask.float()
        lengths = mask.sum(1)
        positions = torch.arange(pos, device=mask.device)
        weights = []  # token-weighted reductions done by one batched matmul per layer
        for name in self.reductions:
            if name == "mean":
                weights.append(mask / lengths[:, None])
            elif name == "response_mean":
                response = mask * (positions[None, :] >= response_start[:, None])
                # No response token left (truncated away): NaN says "missing", never a made-up zero.
                weights.append(response / response.sum(1, keepdim=True))
        self.weights = torch.stack(weights, 1) if weights else None  # [batch, k, pos]
        # rds: position + 1 on real tokens, normalised per record (right padding: positions count from the start)
        ramp = mask * (positions[None, :] + 1)
        self.hidden_weights = (ramp / ramp.sum(1, keepdim=True))[:, None, :]  # [batch, 1, pos]
        self.last = (lengths - 1).long()
        self.out = torch.empty(
            len(self.reductions), batch, self.model.n_layers, self.width, dtype=torch.float32, device=mask.device
        )
        self.full = (
            self.out
            if self.sketch is None
            else torch.empty(
                len(self.reductions), batch, 1, self.model.neurons_per_layer, dtype=torch.float32, device=mask.device
            )
        )

    def hook(self, layer: int):
        def reduce(module, args):
            x = args[0]  # [batch, pos, neurons]; OPT flattens it to [batch * pos, neurons]
            if x.dim() == 2:
                x = x.view(self.out.shape[1], -1, x.shape[-1])
            x32 = x if x.dtype == torch.float32 else x.float()
            weighted = torch.bmm(self.weights, x32) if self.weights is not None else None
            k = 0
            full, at = (self.out, layer) if self.sketch is None else (self.full, 0)  # exact rows land here
            for r, name in enumerate(self.reductions):
                if name in ("mean", "response_mean"):
                    full[r, :, at] = weighted[:, k]
                    k += 1
                elif name == "last":
                    full[r, :, at] = x32[torch.arange(x.shape[0], device=x.device), self.last]
                elif name == "first":
                    full[r, :, at] = x32[:, 0]
                elif name == "last-first":  # ΔA (Eq. 2) in one array: what nait-pca reads, at half the bytes
                    full[r, :, at] = x32[torch.arange(x.shape[0], device=x.device), self.last] - x32[:, 0]
            if self.sketch is not None:  # [reductions, batch, neurons] @ P_l -> [reductions, batch, K]
                self.out[:, :, layer] = self.full[:, :, 0] @ self.projections[layer]

        return reduce

    def pooled_hidden(self, output) -> torch.Tensor:
        """[batch, hidden] float32: the final hidden state's position-weighted mean (the stack's own output)."""
        hidden = output.last_hidden_state
        return torch.bmm(self.hidden_weights, hidden.float())[:, 0]

    @contextmanager
    def hooks(self):
        """Hooks live only inside this block, even if the forward pass fails."""
        handles = [m.register_forward_pre_hook(self.hook(layer)) for layer, m in enumerate(self.model.neuron_modules)]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()


def forward(model: LoadedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """The decoder stack without the LM head: the neurons are all we need."""
    return model.model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)


@dataclass
class CaptureOptions:
    reductions: tuple[str, ...] = DEFAULT_REDUCTIONS
    max_length: int = 1024
    batch_tokens: int | None = None  # padded tokens per batch; None: chosen for the device (`batch_budget`)
    max_batch_size: int | None = None  # rows per batch; None: chosen for the device
    shard_size: int | None = None  # None: store.default_shard_size(n), at most 512, ≥16 shards when n allows
    worker: tuple[int, int] = (0, 1)  # (i, n): capture only every n-th shard from the i-th (see `shard_plan`)
    verify: bool = False  # check every shard's sha256 before reusing a store (else headers and sizes)
    sketch: Sketch | None = None  # compact summaries: K random projections per layer (sketch.py); None = exact
    exact_sample: int = 0  # compact pools: also capture this many seeded records exactly (app's neuron views)
    sample_of: str = ""  # set on the exact sample's own capture: the compact store it belongs to
    ray: object | None = None  # a `distributed.RayOptions`: run the shards on a Ray cluster instead of here


# Batch budgets. CPU: the best of a sweep on the bundled model (docs/benchmarks.md): past ~2k padded
# tokens a batch's activations stop fitting in cache and tok/s drops (8,192 ran 1.5x slower than 2,048).
CPU_BATCH_TOKENS, CPU_MAX_BATCH_SIZE = 2048, 64
# CUDA: the largest power of two whose activations fit in this share of the free memory, within these bounds.
CUDA_MEMORY_SHARE, CUDA_MIN_TOKENS, CUDA_MAX_TOKENS, CUDA_MAX_BATCH_SIZE = 0.6, 2048, 65536, 64


def activation_bytes_per_token(model: LoadedModel, max_length: int) -> int:
    """Peak bytes one padded token costs inside one decoder layer (layers run one after another and
    inference mode frees each layer's tensors, so the peak is one layer's, not the sum over layers):
    the residual stream, norm output, q/k/v/attention output (~6 x hidden), the MLP's gate, up,
    activation and product (4 x intermediate) in the weights' dtype, the hook's float32 copy of the
    neurons (4 bytes x intermediate), and a worst case for attention: one score row per head plus the
    padding mask over `max_length` keys (SDPA kernels need less). The LM head never runs."""
    config = getattr(model.model, "config", None)
    size = next(model.model.parameters()).element_size()
    intermediate = model.neurons_per_layer
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None) or intermediate // 4
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", None) or 32
    return size * (6 * hidden + 4 * intermediate + (heads + 1) * max_length) + 4 * intermediate


def batch_budget(
    model: LoadedModel, options: CaptureOptions, device: torch.device | None = None, free_bytes: int | None = None
) -> tuple[int, int]:
    """(padded tokens per batch, rows per batch) for the model's device, unless the options fix them."""
    device = device or model.device
    if device.type == "cuda":
        if free_bytes is None:
            free_bytes = torch.cuda.mem_get_info(device)[0]
        fit = int(CUDA_MEMORY_SHARE * free_bytes // activation_bytes_per_token(model, options.max_length))
        tokens = CUDA_MIN_TOKENS
        while tokens * 2 <= min(fit, CUDA_MAX_TOKENS):
            tokens *= 2
        auto = (tokens, CUDA_MAX_BATCH_SIZE)
    else:
        auto = (CPU_BATCH_TOKENS, CPU_MAX_BATCH_SIZE)
    return options.batch_tokens or auto[0], options.max_batch_size or auto[1]


def shard_plan(store: Store, worker: tuple[int, int] = (0, 1)) -> list[tuple[int, int]]:
    """The sample-id ranges still to capture into `store`, in order: its missing shards, or with
    `worker=(i, n)` those among every n-th shard from the i-th (`nait capture --worker i/n`, a by-hand
    split across processes; `--ray` hands the same missing shards to a Ray actor pool instead)."""
    index, count = worker
    mine = {r for j, r in enumerate(store.shard_ranges()) if j % count == index}
    return [r for r in store.missing_ranges() if r in mine]


def capture_shard(
    model: LoadedModel,
    tokens: Tokenized,
    start: int,
    options: CaptureOptions,
    reducer: Reducer | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Capture one shard: `tokens` holds exactly its samples (`Tokenized.slice`), `start` is the id of the
    first. Returns the arrays `Store.write_shard(start, start + len, arrays)` takes. `on_batch(samples,
    tokens)` is called after each batch. Used by the single-process loop, `--worker` and the Ray actors."""
    reducer = reducer or Reducer(model, options.reductions, options.sketch)
    batch_tokens, max_batch_size = batch_budget(model, options)
    lengths = tokens.lengths
    pad_id = model.tokenizer.pad_token_id
    device = model.device
    shard = np.empty((len(options.reductions), len(lengths), model.n_layers, reducer.width), np.float16)
    hidden = np.empty((len(lengths), hidden_size(model)), np.float32)
    with torch.inference_mode(), reducer.hooks():
        for batch in make_batches(lengths, batch_tokens, max_batch_size):
            ids, mask = pad_batch([tokens.input_ids[i] for i in batch], pad_id, device)
            response_start = torch.tensor([tokens.response_start[i] for i in batch], device=device)
            reducer.set_batch(mask, response_start)
            pooled = reducer.pooled_hidden(forward(model, ids, mask)).cpu().numpy()
            values = reducer.out.cpu().numpy()
            finite = np.isfinite(values[[i for i, r in enumerate(options.reductions) if r != "response_mean"]]).all()
            if not (finite and np.isfinite(pooled).all()):
                rows = [start + i for i in batch]
                raise FloatingPointError(f"non-finite activations in samples {rows[:5]}…; try --dtype float32")
            shard[:, batch] = values.astype(np.float16)
            hidden[batch] = pooled
            if on_batch:
                on_batch(len(batch), int(mask.sum()))
    arrays = {name: shard[r] for r, name in enumerate(options.reductions)}
    arrays["tokens"] = lengths.astype(np.int32)
    arrays["response_tokens"] = np.array(
        [max(0, len(ids) - s) for ids, s in zip(tokens.input_ids, tokens.response_start)], np.int32
    )
    arrays["truncated"] = np.array(tokens.truncated, dtype=bool)
    arrays[HIDDEN] = hidden  # left out by `Store.write_shard` on a store from before nait kept it
    return arrays


def hidden_size(model: LoadedModel) -> int:
    """Width of the decoder stack's output (OPT projects it down to word_embed_proj_dim)."""
    config = model.model.config
    return getattr(config, "word_embed_proj_dim", None) or getattr(config, "hidden_size", None) or config.n_embd


@dataclass
class CaptureReport:
    store: Store
    reused: bool
    truncated: int
    skipped: list[str] = field(default_factory=list)
    tokens_per_second: float = 0.0


def records_hash(dataset: Dataset) -> str:
    """Content hash of the records as captured (their conversations), without any tokenizer: equal
    records in equal order give equal hashes, whatever file or format they came from."""
    return content_hash(json.dumps(record.conversation, sort_keys=True) for record in dataset.records)


def capture_identity(options: CaptureOptions) -> dict:
    """The capture options that change what a store holds (the manifest's `options`): one place."""
    # truncation: which tokens a record longer than max_length keeps (head+end: the template's start and the end)
    identity = {"reductions": list(options.reductions), "max_length": options.max_length, "truncation": "head+end"}
    if options.sketch:  # exact stores keep the keys they had
        identity |= {"sketch": options.sketch.to_json(), "exact_sample": options.exact_sample}
    if options.sample_of:
        identity["exact_sample_of"] = options.sample_of
    return identity


def store_key(
    model,
    dataset: Dataset,
    tokens: Tokenized | None = None,
    options: CaptureOptions | None = None,
    dtype=None,
    shape: bool = True,
) -> tuple[str, dict]:
    """Folder name and manifest of the store for these inputs; equal inputs give equal keys.

    The key needs no loaded model: records hash, model fingerprint from files, dtype and capture options
    (`tokens` is no longer used). With `shape`, the manifest also holds the model's layer and neuron
    counts (this loads a `LazyModel`); the key does not depend on them (the fingerprint fixes them)."""
    options = options or CaptureOptions()
    dtype_name = str(dtype).replace("torch.", "") if dtype is not None else model.dtype_name
    manifest = {
        "model": {"name": model.name, "fingerprint": model.fingerprint, "dtype": dtype_name},
        "data": {"name": dataset.name, "hash": records_hash(dataset), "n_samples": len(dataset)},
        "options": capture_identity(options),
        "shard_size": options.shard_size,
    }
    identity = {
        "model": {"fingerprint": model.fingerprint, "dtype": dtype_name},
        "data": {k: v for k, v in manifest["data"].items() if k != "name"},
        "options": manifest["options"],
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    if shape:
        manifest["shape"] = {"layers": model.n_layers, "neurons": model.neurons_per_layer}
    return f"{model.slug}--{slugify(dataset.name)}--{digest}", manifest


def find_store(
    model, dataset: Dataset, root: Path | str = DEFAULT_STORE_ROOT, options: CaptureOptions | None = None
) -> Store | None:
    """The complete store for these inputs under `root`, if one exists, found without loading the model."""
    key, manifest = store_key(model, dataset, None, options or CaptureOptions(), shape=False)
    try:
        store = Store.open(store_path(root, key), verify=bool(options and options.verify))
        check_describes(store, manifest)
        return store
    except StoreError:
        return None


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_describes(store: Store, manifest: dict) -> None:
    """Refuse a found store whose manifest does not describe these inputs (the `store_key` manifest the
    caller computed from the records, model and options): the folder name's digest matched, so its
    manifest was edited or damaged, e.g. `n_samples` 50 → 48 would score 48 records and select among them.
    Checked before any score is computed; the shards' checksums are bound to the manifest as written."""
    want = _flat(Store._identity({**manifest, "format_version": FORMAT_VERSION}))
    have = _flat(Store._identity(store.manifest))
    differ = [k for k in sorted(set(want) | set(have)) if not k.startswith("shape.") and want.get(k) != have.get(k)]
    if differ:
        shown = "; ".join(f"{k} is {have.get(k)!r}, the input's is {want.get(k)!r}" for k in differ[:3])
        raise StoreError(
            f"{store.location}/manifest.json does not describe this input ({shown}): the manifest was edited "
            f"or damaged; delete the folder {store.location} and run the same command to recapture"
        )


def store_path(root: Path | str, key: str) -> Path | str:
    """Where the store for `key` lives: `root/key`, or an existing store with the same digest (the same
    records, model and options) under another name, e.g. the same records read from another file."""
    if is_url(str(root)):
        return f"{str(root).rstrip('/')}/{key}"
    path = Path(root) / key
    if not (path / "manifest.json").exists():
        digest = key.rsplit("--", 1)[-1]
        for other in sorted(Path(root).glob(f"*--{digest}")):
            if (other / "manifest.json").exists():
                return other
    return path


def _reuse(path: Path | str, dataset: Dataset, options: CaptureOptions, manifest: dict) -> CaptureReport | None:
    """The report for an existing store that needs no capture (no model loaded), or None. Its manifest must
    describe the input (`check_describes`). Shards that fail their check (headers, sizes, their binding
    to this store; sha256 with `options.verify`) are removed here, so this very capture recaptures them
    instead of failing on them again."""
    store = Store.existing(path)
    if store is None:
        if not is_url(str(path)) and (Path(path) / "manifest.json").exists():
            Store.at(path)  # a damaged manifest: raises, naming its field and the fix, before the model loads
        return None  # nothing here yet
    if store.format_problem():
        raise StoreError(store.format_problem())
    check_describes(store, manifest)
    for (start, end), problem in store.damaged_ranges(checksums=options.verify):
        print(f"nait: {problem}; removing shard {start}-{end} to recapture it", file=sys.stderr)
        store.remove_shard(start, end)
    if shard_plan(store, options.worker):  # this worker still has shards to capture
        return None
    truncated = int(store.per_sample("truncated").sum()) if store.complete else 0
    return CaptureReport(store, reused=True, truncated=truncated, skipped=dataset.skipped)


def capture(
    model: LoadedModel,
    dataset: Dataset,
    root: Path | str = DEFAULT_STORE_ROOT,
    options: CaptureOptions | None = None,
    progress: ProgressCallback | None = None,
) -> CaptureReport:
    """Capture `dataset` into a store under `root`, reusing a matching store and resuming a partial one."""
    options = options or CaptureOptions()
    unknown = set(options.reductions) - set(REDUCTIONS)
    if unknown:
        raise ValueError(f"unknown reductions {sorted(unknown)}; choose from {', '.join(REDUCTIONS)}")
    key, manifest = store_key(model, dataset, None, options, shape=False)  # no model loaded for this
    path = store_path(root, key)
    reused = _reuse(path, dataset, options, manifest)
    if reused is not None:
        return reused
    if not is_url(str(path)):
        ensure_writable(Path(path))  # before the model is loaded and the records tokenized
    if options.sketch:
        options.sketch.check_width(model.neurons_per_layer)
    if options.sketch and options.exact_sample:  # the compact pool's exact exploration sample, first
        capture_exact_sample(model, dataset, root, options, Path(str(path)).name, progress)
    tokens = tokenize(dataset, model.tokenizer, options.max_length)  # from here on the model is needed
    manifest["shape"] = {"layers": model.n_layers, "neurons": model.neurons_per_layer}
    manifest["hidden_size"] = hidden_size(model)
    store = Store.create(path, manifest)
    missing = shard_plan(store, options.worker)
    report = CaptureReport(store, reused=not missing, truncated=sum(tokens.truncated), skipped=dataset.skipped)
    if not missing:
        if store.complete:
            report.store = Store.open(store.location, verify=options.verify)  # a damaged store is reported, never used
        return report

    if options.ray is not None:  # the same shards, written by a Ray actor pool (imports ray lazily)
        from .distributed import capture_on_ray

        report.tokens_per_second = capture_on_ray(model, tokens, store, missing, options, progress)
    else:
        report.tokens_per_second = capture_shards(model, tokens, store, missing, options, progress)
    if store.complete:  # else other workers still have shards to write
        report.store = Store.open(store.location, verify=options.verify)  # new shards were hashed as written
    return report


def capture_exact_sample(
    model: LoadedModel,
    dataset: Dataset,
    root,
    options: CaptureOptions,
    of_key: str,
    progress: ProgressCallback | None = None,
) -> CaptureReport:
    """Capture the seeded exploration sample of a compact pool exactly, into its own store whose manifest
    names the compact store (`exact_sample_of`); `sketch.exact_sample_store` finds it without the model."""
    rows = sample_rows(len(dataset), options.exact_sample, options.sketch.seed)
    sample = dataset.subset(rows, f"{dataset.name}-exact{len(rows)}-s{options.sketch.seed}")
    return capture(model, sample, root, replace(options, sketch=None, exact_sample=0, sample_of=of_key), progress)


def capture_shards(
    model: LoadedModel,
    tokens: Tokenized,
    store: Store,
    ranges: list[tuple[int, int]],
    options: CaptureOptions,
    progress: ProgressCallback | None = None,
) -> float:
    """The single-process loop: capture and write each range in turn; returns tokens per second."""
    lengths = tokens.lengths
    tokens_total = int(sum(lengths[s:e].sum() for s, e in ranges))
    samples_total = sum(e - s for s, e in ranges)
    done = [0, 0]  # samples, tokens
    started = time.perf_counter()
    reducer = Reducer(model, options.reductions, options.sketch)

    def on_batch(samples: int, n_tokens: int) -> None:
        done[0] += samples
        done[1] += n_tokens
        if progress:
            progress(Progress(done[0], samples_total, done[1], tokens_total, time.perf_counter() - started))

    if progress:
        progress(Progress(0, samples_total, 0, tokens_total, 0.0))
    for start, end in store.claim_missing(ranges):  # shards another process is writing are left to it
        store.write_shard(start, end, capture_shard(model, tokens.slice(start, end), start, options, reducer, on_batch))
    return done[1] / max(time.perf_counter() - started, 1e-9)


class _StopForward(Exception):
    """Raised by a hook once it has what it needs: the layers above it need not run."""


def token_activations(
    model: LoadedModel, record, layer: int, max_length: int = 1024
) -> tuple[list[str], np.ndarray, int]:
    """One live forward pass of one record: (tokens, activations [pos, neurons] of `layer`, response start)."""
    tokens = tokenize(Dataset("one", [record]), model.tokenizer, max_length)
    captured = {}

    def keep(module, args):
        x = args[0]
        captured["x"] = (x if x.dim() == 2 else x[0]).float().cpu().numpy()  # [pos, neurons]
        raise _StopForward

    handle = model.neuron_modules[layer].register_forward_pre_hook(keep)
    try:
        with torch.inference_mode():
            ids, mask = pad_batch(tokens.input_ids, model.tokenizer.pad_token_id, model.device)
            forward(model, ids, mask)
    except _StopForward:
        pass
    finally:
        handle.remove()
    pieces = [model.tokenizer.decode([t]) for t in tokens.input_ids[0]]
    return pieces, captured["x"], tokens.response_start[0]
