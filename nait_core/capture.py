"""Capture a data set into a store: reuse a matching store, resume a partial one, and write each missing
shard (one process, a `--worker i/n` share, or a Ray actor pool).

The forward pass of one shard is `forward.py`; what a store is keyed by is `store_keys.py`; both are
re-exported here, where importers have always found them.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .data import Dataset, sample_rows
from .distributed import capture_on_ray
from .forward import (  # noqa: F401 (re-exported)
    CPU_BATCH_TOKENS,
    CPU_MAX_BATCH_SIZE,
    CUDA_MAX_BATCH_SIZE,
    CUDA_MAX_TOKENS,
    CUDA_MEMORY_SHARE,
    CUDA_MIN_TOKENS,
    CaptureOptions,
    Reducer,
    activation_bytes_per_token,
    batch_budget,
    capture_shard,
    forward,
    hidden_size,
    token_activations,
)
from .models import LoadedModel
from .progress import Progress, ProgressCallback
from .store import REDUCTIONS, Store, StoreError, ensure_writable, is_url
from .store_keys import (  # noqa: F401 (re-exported)
    DEFAULT_STORE_ROOT,
    capture_identity,
    check_describes,
    find_store,
    records_hash,
    store_key,
    store_path,
)
from .tokens import Tokenized, tokenize


def shard_plan(store: Store, worker: tuple[int, int] = (0, 1)) -> list[tuple[int, int]]:
    """The sample-id ranges still to capture into `store`, in order: its missing shards, or with
    `worker=(i, n)` those among every n-th shard from the i-th (`nait capture --worker i/n`, a by-hand
    split across processes; `--ray` hands the same missing shards to a Ray actor pool instead)."""
    index, count = worker
    mine = {r for j, r in enumerate(store.shard_ranges()) if j % count == index}
    return [r for r in store.missing_ranges() if r in mine]


@dataclass
class CaptureReport:
    store: Store
    reused: bool
    truncated: int
    skipped: list[str] = field(default_factory=list)
    tokens_per_second: float = 0.0
    workers: dict = field(default_factory=dict)  # a Ray capture's workers: name -> shards, samples, tokens, pid


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
        report.tokens_per_second, report.workers = capture_on_ray(model, tokens, store, missing, options, progress)
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
