"""The feature store: per-sample neuron summaries of one data set under one model, on disk.

Layout of `cached_features/<key>/`:
    manifest.json                      model, data hash, options, shape, shard size, format version
    shard-<start>-<end>/               one independent, atomically renamed folder per index range
        <reduction>.npy                float16 [samples, layers, width], memory-mapped on read
        tokens.npy, response_tokens.npy, truncated.npy   per-sample counts [samples]
        checksums.json                 the store's identity digest, the shard's range and the sha256 of
                                       each file above (written last: marks completeness)
    caches.json                        derived caches: file, sha256, size and the inputs each derives from
    pool-mean-<reduction>.npy, map-*.npy, ifd-*.npy, feature.safetensors   derived caches in caches.json
    .locks/                            one lock file per shard (and one for caches.json)

One job per module: `format` (the shard format and its integrity: headers, checksums, the cheap check),
`manifest` (the manifest and the one identity rule), `caches` (the derived caches' index), `location`
(a local folder or an fsspec URL), `reading` (memory-mapped rows and chunked passes) and `facade` (the
`Store` that ties them together). Everything is imported from here: `from nait_core.store import Store`.

Integrity has two levels. Opening a store (`Store.open`) checks the manifest, every shard's files,
their .npy headers (shape, dtype) and sizes: milliseconds, no hashing. Full sha256 checksums are
computed when a shard is written and checked by `Store.verify` (`nait verify`, or `--verify` on a
command). Shards are independent: any worker can write any range, and a capture resumes from the shards
that exist; writers take a per-shard lock (fcntl, released by the kernel when a process dies). Nothing is
read from disk with pickle, and nothing read from a store is trusted as a path.
"""

from .caches import CACHE_SUFFIXES, cache_name_problem
from .facade import Shard, Store, list_stores
from .format import (
    DEFAULT_REDUCTIONS,
    DERIVED,
    FORMAT_VERSION,
    HIDDEN,
    PER_SAMPLE,
    REDUCTIONS,
    WRITE_ERRORS,
    CacheWarning,
    StoreError,
    derive,
    ensure_writable,
    npy_header,
    readable,
    recapture_hint,
    shard_name,
    sources,
    warn_read_only,
    write_error,
)
from .location import is_url, mirror_folder
from .manifest import (
    MAX_SHARD_SIZE,
    MIN_SHARD_SIZE,
    checked_manifest,
    default_shard_size,
    identity,
    manifest_problem,
    read_manifest,
)
from .reading import CHUNK_BYTES, READ_THREADS, cast_into

__all__ = [
    "CACHE_SUFFIXES",
    "CHUNK_BYTES",
    "DEFAULT_REDUCTIONS",
    "DERIVED",
    "FORMAT_VERSION",
    "HIDDEN",
    "MAX_SHARD_SIZE",
    "MIN_SHARD_SIZE",
    "PER_SAMPLE",
    "READ_THREADS",
    "REDUCTIONS",
    "WRITE_ERRORS",
    "CacheWarning",
    "Shard",
    "Store",
    "StoreError",
    "cache_name_problem",
    "cast_into",
    "checked_manifest",
    "default_shard_size",
    "derive",
    "ensure_writable",
    "identity",
    "is_url",
    "list_stores",
    "manifest_problem",
    "mirror_folder",
    "npy_header",
    "read_manifest",
    "readable",
    "recapture_hint",
    "shard_name",
    "sources",
    "warn_read_only",
    "write_error",
]
