"""The read path of a store: memory-mapped shard arrays, rows by index, and chunked passes at memory speed.

`Reads` is mixed into `Store`: it needs `shards()`, the shape (`n_layers`, `width`, `expected_shape`,
`reductions`) and the cache index (`load_cached_array`, `save_cached_array`).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .format import HIDDEN, REDUCTIONS, StoreError, recapture_hint

CHUNK_BYTES = 8 << 20  # float32 bytes per read chunk: small enough to stay in the CPU's cache between passes
READ_THREADS = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)


def cast_into(out: np.ndarray, values: np.ndarray) -> None:
    """out[...] = values (float16 → float32) through torch's vectorised cast: about 4.6 G values/s on one
    core here, 40× NumPy's. `values` is read where it lies, in the store's memory map (writable
    copy-on-write, so torch takes it without a copy or a warning). Meant for `map_chunks`' reader threads, whose torch pool is one thread: torch's own
    2-thread pool cost 2–9× more time per cast than it saved on these 2 cores (docs/benchmarks.md).
    torch is imported here, not with the module: reading a store needs no model, and `import
    nait_core.store` stays light."""
    import torch

    torch.from_numpy(out.reshape(-1)).copy_(torch.from_numpy(np.asarray(values).reshape(-1)))


class Reads:
    """Reading a store's shards (see the module's docstring)."""

    def _array(self, shard, name: str) -> np.ndarray:
        key = (shard.start, name)
        if key not in self._arrays:
            if name in REDUCTIONS and name not in self.reductions:
                raise StoreError(
                    f"{self.path}: reduction '{name}' was not captured (have {self.reductions}); recapture with it"
                )
            file = shard.path / f"{name}.npy"
            try:
                # Copy-on-write: a write to the array stays in this process and never reaches the file.
                array = np.load(file, mmap_mode="c", allow_pickle=False)
            except (ValueError, OSError) as error:
                raise StoreError(f"{file}: unreadable ({error}); {recapture_hint(self.path)}") from error
            if array.shape != self.expected_shape(name, shard.end - shard.start):
                raise StoreError(
                    f"{file}: shape {array.shape}, expected "
                    f"{self.expected_shape(name, shard.end - shard.start)}; {recapture_hint(self.path)}"
                )
            self._arrays[key] = array
        return self._arrays[key]

    def _forget(self, start: int) -> None:
        """Drop what was read of the shard starting at `start` (it was rewritten or removed)."""
        self._arrays = {k: v for k, v in self._arrays.items() if k[0] != start}
        self._content_id = None

    def iter_chunks(self, reduction: str, rows: int = 256, dtype=np.float32):
        """Stream (start, array [≤rows, layers, width]) in order; memory stays bounded. dtype=None yields
        the stored float16 rows as they are (memory-mapped copy-on-write), for callers that convert faster."""
        for shard in self.shards():
            array = self._array(shard, reduction)
            for offset in range(0, len(array), rows):
                chunk = array[offset : offset + rows]
                yield shard.start + offset, chunk if dtype is None else np.asarray(chunk, dtype=dtype)

    def map_chunks(self, names: tuple[str, ...], work, rows: int | None = None, threads: int | None = None):
        """Call work(start, *arrays) for every chunk of rows, arrays float32 [b, layers, width] (one per name),
        on `threads` reader threads (default READ_THREADS, one per core), each with its own reused buffers:
        work must use them before returning, and write only its own rows' results. A chunk is cast straight
        out of the memory map (`cast_into`); the cast, like NumPy's matrix products, releases the GIL, so
        the threads share the cores. Each reader sets its own torch pool to one thread (thread-local with
        the OpenMP builds PyTorch ships; checked, and the caller's setting restored if a build shares it)."""
        import torch

        layers, width = self.n_layers, self.width
        rows = rows or max(8, CHUNK_BYTES // (layers * width * 4))
        threads = max(1, READ_THREADS if threads is None else threads)
        plan = []
        for shard in self.shards():
            arrays = [self._array(shard, name) for name in names]  # opened here, once, not by the threads
            plan += [
                (shard.start + o, [a[o : o + rows] for a in arrays]) for o in range(0, shard.end - shard.start, rows)
            ]
        local = threading.local()

        def run(task):
            start, chunks = task
            if not hasattr(local, "buffers"):
                torch.set_num_threads(1)
                local.buffers = [np.empty((rows, layers, width), np.float32) for _ in names]
            b = len(chunks[0])
            for chunk, buffer in zip(chunks, local.buffers):
                cast_into(buffer[:b], chunk)
            work(start, *(buffer[:b] for buffer in local.buffers))

        caller_threads = torch.get_num_threads()
        try:
            with ThreadPoolExecutor(min(threads, max(1, len(plan)))) as pool:
                for _ in pool.map(run, plan):  # re-raises the first error
                    pass
        finally:
            if torch.get_num_threads() != caller_threads:
                torch.set_num_threads(caller_threads)

    def rows(self, reduction: str, indices) -> np.ndarray:
        """float32 [len(indices), layers, neurons] for the given sample indices, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), self.n_layers, self.width), dtype=np.float32)
        for shard in self.shards():
            hit = np.nonzero((indices >= shard.start) & (indices < shard.end))[0]
            if len(hit):
                out[hit] = self._array(shard, reduction)[indices[hit] - shard.start]
        return out

    def layer_rows(self, reduction: str, layer: int, indices) -> np.ndarray:
        """float32 [len(indices), neurons] of one layer: what per-layer statistics need, and no more."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), self.width), dtype=np.float32)
        for shard in self.shards():
            hit = np.nonzero((indices >= shard.start) & (indices < shard.end))[0]
            if len(hit):
                out[hit] = self._array(shard, reduction)[indices[hit] - shard.start, layer]
        return out

    def neuron_values(self, reduction: str, layer: int, neuron: int) -> np.ndarray:
        """One neuron's value for every sample, float32 [n_samples]."""
        return np.concatenate([self._array(s, reduction)[:, layer, neuron].astype(np.float32) for s in self.shards()])

    def per_sample(self, name: str) -> np.ndarray:
        """tokens, response_tokens, truncated (or HIDDEN, see `hidden_states`) for every sample."""
        return np.concatenate([np.asarray(self._array(s, name)) for s in self.shards()])

    def hidden_states(self) -> np.ndarray:
        """float32 [n, hidden]: each record's position-weighted mean of the final hidden state (`rds`)."""
        if not self.hidden_size:
            raise StoreError(
                f"{self.location} holds no final hidden states (captured by an older nait, before `rds`): "
                f"delete the folder {self.location} and run the same command to recapture it"
            )
        return self.per_sample(HIDDEN).astype(np.float32, copy=False)

    def mean(self, reduction: str = "mean") -> np.ndarray:
        """Mean over all samples, float32 [layers, neurons]; computed once, then a checksummed cache."""
        if reduction in self._means:
            return self._means[reduction]
        name = f"pool-mean-{reduction}"
        mean = self.load_cached_array(name)
        if mean is None or mean.shape != (self.n_layers, self.width):
            total, lock = np.zeros((self.n_layers, self.width), dtype=np.float64), threading.Lock()

            def add(_, chunk):
                part = chunk.sum(axis=0)  # float32 over a few hundred rows (pairwise: exact enough), 5× faster
                with lock:
                    np.add(total, part, out=total)

            self.map_chunks((reduction,), add)
            mean = (total / self.n_samples).astype(np.float32)
            self.save_cached_array(name, mean)
        self._means[reduction] = mean
        return mean
