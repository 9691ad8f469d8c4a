"""Capture on a Ray cluster: the store's missing shards as a Ray Data pipeline over an actor pool.

    nait capture --data pool.jsonl --ray            # a local Ray cluster, started and stopped here
    nait select ... --ray auto                      # the cluster of `ray start --head` on this machine
    nait select ... --ray ray://head:10001          # a remote cluster through Ray Client

The driver tokenizes once, plans the missing shards (`capture.shard_plan`) and builds a dataset with one
row per shard: its sample-id range and its token ids. `map_batches` hands each row (batch_size=1) to a
`ShardWriter` actor from an `ActorPoolStrategy(size=n)` pool: one actor per GPU (`num_gpus=1`), or on a
CPU-only cluster actors with a fraction of a CPU each (whole CPUs for the actors starve Ray Data's own
read and write tasks and the job hangs; the actor sets its torch threads itself). Each actor loads the
model once, captures its shard with `capture.capture_shard` - the code the single process runs - and
writes it with `Store.write_shard` under the shard's sample-id range (Ray blocks are never names).

Why tokens travel from the driver: the driver must tokenize anyway (the data hash is part of the store
key and the plan needs the lengths), one tokenization cannot disagree with itself across nodes with
different tokenizer versions, and ids are small (4 bytes a token, ~2 MB for a 512-sample shard of
1k-token samples) next to the activations each actor computes.

Faults: Ray Data starts pool actors with `max_restarts=-1, max_task_retries=-1` (its defaults in 2.60;
passing them to map_batches is deprecated), so a killed actor process is restarted (its model loaded
again) and its shard retried; a shard becomes visible only by the atomic rename at the end of
`write_shard`, so a killed attempt leaves nothing half-written. A killed driver
loses only unfinished shards: the same command plans the missing ones again.

Progress: actors report each batch to one small `ProgressBoard` actor; the driver polls it for the one
bar of the whole cluster (tokens, tok/s, ETA) and prints per-worker counts at the end. Ray is imported
lazily: the rest of nait works without it (`pip install 'ray[data]'`).
"""

from __future__ import annotations

import itertools
import math
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace

import numpy as np

from .forward import CaptureOptions, Reducer, capture_shard
from .models import LoadedModel, load_model
from .progress import Progress, ProgressCallback
from .spec import ModelSpec
from .store import Store
from .tokens import Tokenized

LOCAL = "local"  # --ray without an address: start a local cluster for this command


@dataclass
class RayOptions:
    """Where and how to run: `address` None/'local' starts a local cluster; 'auto' or 'ray://host:port'
    joins one. `neuron_module` and `trust_remote_code` are the load options the actors need beyond the
    driver's model (the actors load the model by name and must find the same files: its fingerprint is
    checked)."""

    address: str | None = None
    workers: int | None = None  # actors; default one per GPU, or one per node on CPU-only clusters
    neuron_module: str | None = None
    trust_remote_code: bool = False


def _import_ray():
    try:
        import ray
    except ImportError as error:
        raise ValueError("--ray needs Ray Data: pip install 'ray[data]'") from error
    return ray


def connect(address: str | None) -> bool:
    """Join or start a cluster; True if this call did. The connection stays for the process's later
    captures (`nait select` captures the pool, then each target) and Ray closes it at exit."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    if address in (None, "", LOCAL):
        # Declare the machine's CPUs (at least 4) so that fractional-CPU actors and Ray Data's
        # read/write tasks always find room; no dashboard for a one-command cluster.
        ray.init(num_cpus=max(4, os.cpu_count() or 1), include_dashboard=False, log_to_driver=True)
    else:
        ray.init(address=address, log_to_driver=True)
    return True


class ProgressBoard:
    """Per-shard and per-worker counts, updated by the actors, read by the driver (a Ray actor)."""

    def __init__(self):
        self.shards: dict[int, tuple[int, int]] = {}  # start -> (samples, tokens) so far; a retry restarts it
        self.workers: dict[str, dict] = {}

    def register(self, worker: str, pid: int, node: str) -> None:
        self.workers.setdefault(worker, {"pid": pid, "node": node, "shards": 0, "samples": 0, "tokens": 0})

    def update(self, start: int, samples: int, tokens: int) -> None:
        self.shards[start] = (samples, tokens)

    def finish(self, worker: str, start: int, samples: int, tokens: int) -> None:
        self.shards[start] = (samples, tokens)
        counts = self.workers[worker]
        counts["shards"] += 1
        counts["samples"] += samples
        counts["tokens"] += tokens

    def snapshot(self) -> dict:
        return {
            "samples": sum(s for s, _ in self.shards.values()),
            "tokens": sum(t for _, t in self.shards.values()),
            "workers": {k: dict(v) for k, v in self.workers.items()},
        }


class ShardWriter:
    """One actor of the pool: loads the model once, then captures and writes whole shards."""

    def __init__(
        self,
        store_path: str,
        manifest: dict,
        model: ModelSpec,
        fingerprint: str,
        options: CaptureOptions,
        threads: int | None,
        board: str,
    ):
        import ray
        import torch

        if threads:
            torch.set_num_threads(threads)  # Ray pins OMP threads to the (fractional) CPU request
        device = "cuda" if ray.get_gpu_ids() else "cpu"
        self.model = load_model(device=device, **asdict(model))  # ModelSpec's fields are load_model's options
        if self.model.fingerprint != fingerprint:
            raise RuntimeError(
                f"{socket.gethostname()}: model {model.name!r} differs from the driver's "
                "(another file or version); every node must see the same model"
            )
        self.store = Store.create(store_path, manifest)  # the driver created it: this checks it is the same
        self.options = options
        self.reducer = Reducer(self.model, self.options.reductions, self.options.sketch)
        self.board = ray.get_actor(board)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        ray.get(self.board.register.remote(self.worker, os.getpid(), socket.gethostname()))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {"start": [], "end": [], "tokens": [], "seconds": [], "worker": []}
        for row in range(len(batch["start"])):
            start, end = int(batch["start"][row]), int(batch["end"][row])
            tokens = decode_shard(batch, row)
            done = [0, 0]

            def on_batch(samples: int, n_tokens: int, start=start, done=done) -> None:
                done[0] += samples
                done[1] += n_tokens
                self.board.update.remote(start, done[0], done[1])

            began = time.perf_counter()
            arrays = capture_shard(self.model, tokens, start, self.options, self.reducer, on_batch)
            self.store.write_shard(start, end, arrays)
            self.board.finish.remote(self.worker, start, done[0], done[1])
            for key, value in (
                ("start", start),
                ("end", end),
                ("tokens", done[1]),
                ("seconds", time.perf_counter() - began),
                ("worker", self.worker),
            ):
                out[key].append(value)
        return {key: np.array(value) for key, value in out.items()}


def encode_shard(tokens: Tokenized, start: int, end: int) -> dict:
    """One dataset row: a shard's range and inputs as flat int32 bytes (cheap to ship, no pickle)."""
    part = tokens.slice(start, end)
    return {
        "start": start,
        "end": end,
        "ids": np.concatenate([np.asarray(i, np.int32) for i in part.input_ids]).tobytes(),
        "lengths": np.asarray([len(i) for i in part.input_ids], np.int32).tobytes(),
        "response_start": np.asarray(part.response_start, np.int32).tobytes(),
        "truncated": np.asarray(part.truncated, bool).tobytes(),
        "data_hash": tokens.data_hash,
    }


def decode_shard(batch: dict, row: int) -> Tokenized:
    ids = np.frombuffer(batch["ids"][row], np.int32)
    lengths = np.frombuffer(batch["lengths"][row], np.int32)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return Tokenized(
        [ids[a:b].tolist() for a, b in itertools.pairwise(bounds)],
        np.frombuffer(batch["response_start"][row], np.int32).tolist(),
        np.frombuffer(batch["truncated"][row], bool).tolist(),
        str(batch["data_hash"][row]),
    )


def plan_workers(ray, requested: int | None) -> tuple[int, dict, int | None]:
    """(actors, per-actor resources, torch threads per actor) for the cluster Ray sees."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if gpus:  # one actor per GPU; torch picks its threads
        return requested or gpus, {"num_gpus": 1}, None
    workers = requested or max(1, len(nodes))
    per_node = math.ceil(workers / max(1, len(nodes)))
    cpus = min(n["Resources"].get("CPU", 1) for n in nodes) if nodes else 1
    # In Ray's books the actors of a node share all its CPUs but one, which stays free for Ray Data's own
    # tasks (whole-CPU actors filling a node hang the job); asking for that share spreads the actors over
    # the nodes. Their real threads: the node's cores split between its actors.
    share = max(0.25, (cpus - 1) / per_node)
    return workers, {"num_cpus": share}, max(1, int(min(cpus, os.cpu_count() or 1)) // per_node)


def capture_on_ray(
    model: LoadedModel,
    tokens: Tokenized,
    store: Store,
    ranges: list[tuple[int, int]],
    options: CaptureOptions,
    progress: ProgressCallback | None = None,
) -> tuple[float, dict]:
    """Capture `ranges` of `store` on a Ray actor pool; returns tokens per second of the whole run and what
    each worker did (worker -> shards, samples, tokens, pid)."""
    ray = _import_ray()
    settings: RayOptions = options.ray
    connect(settings.address)
    from ray.data import ActorPoolStrategy, DataContext

    lengths = tokens.lengths
    tokens_total = int(sum(lengths[s:e].sum() for s, e in ranges))
    samples_total = sum(e - s for s, e in ranges)
    board_name = f"nait-progress-{uuid.uuid4().hex[:8]}"
    board = ray.remote(ProgressBoard).options(name=board_name, num_cpus=0).remote()
    stop = threading.Event()
    began = time.perf_counter()

    def poll():  # the one bar: the board's sums, every half second until the pipeline ends
        while not stop.wait(0.5):
            snap = ray.get(board.snapshot.remote())
            if progress:
                progress(
                    Progress(snap["samples"], samples_total, snap["tokens"], tokens_total, time.perf_counter() - began)
                )

    try:
        workers, resources, threads = plan_workers(ray, settings.workers)
        workers = min(workers, len(ranges))
        dtype = str(next(model.model.parameters()).dtype).replace("torch.", "")
        # The actors load the driver's model in the driver's dtype: the store key names that dtype.
        model_spec = ModelSpec(model.name, dtype, settings.neuron_module, settings.trust_remote_code)
        context = DataContext.get_current()
        context.enable_progress_bars = False  # ours is the one bar
        context.print_on_execution_start = False
        rows = [encode_shard(tokens, s, e) for s, e in ranges]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            ShardWriter,
            batch_size=1,
            batch_format="numpy",
            compute=ActorPoolStrategy(size=workers),
            fn_constructor_kwargs={
                "store_path": str(store.location),
                "manifest": store.manifest,
                "model": model_spec,
                "fingerprint": model.fingerprint,
                "options": replace(options, ray=None),  # what one shard's pass reads; not where to run
                "threads": threads,
                "board": board_name,
            },
            **resources,
        )  # Ray Data's actor pools default to max_restarts=-1, max_task_retries=-1
        if progress:
            progress(Progress(0, samples_total, 0, tokens_total, 0.0))
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        done_tokens = 0
        for row in dataset.iter_rows():
            done_tokens += int(row["tokens"])
        stop.set()
        poller.join()
        seconds = time.perf_counter() - began
        snap = ray.get(board.snapshot.remote())
        if progress:
            progress(Progress(samples_total, samples_total, tokens_total, tokens_total, seconds))
        print(describe_workers(snap["workers"]), file=sys.stderr)
        return done_tokens / max(seconds, 1e-9), snap["workers"]
    finally:
        stop.set()
        ray.kill(board)


def describe_workers(workers: dict) -> str:
    lines = [f"ray: {len(workers)} worker(s)"]
    for name, w in sorted(workers.items()):
        lines.append(f"  {name}: {w['shards']} shards, {w['samples']:,} samples, {w['tokens']:,} tokens")
    return "\n".join(lines)
