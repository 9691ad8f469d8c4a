"""What a store is keyed by, found without a loaded model: the records' content hash, the model's
fingerprint and dtype, and the capture options that change what is stored. The folder name's digest is
the store's identity (`store.manifest.identity`), the one rule every shard is bound to as well.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from .data import Dataset, content_hash
from .forward import CaptureOptions
from .models import slugify
from .store import Store, StoreError, is_url
from .store.manifest import differences, identity_digest

if TYPE_CHECKING:
    from .tokens import Tokenized

DEFAULT_STORE_ROOT = Path("cached_features")


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
    digest = identity_digest(manifest)[:12]  # the same identity every shard is bound to (store.manifest)
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


def check_describes(store: Store, manifest: dict) -> None:
    """Refuse a found store whose manifest does not describe these inputs (the `store_key` manifest the
    caller computed from the records, model and options): the folder name's digest matched, so its
    manifest was edited or damaged, e.g. `n_samples` 50 → 48 would score 48 records and select among them.
    Checked before any score is computed; the shards' checksums are bound to the manifest as written."""
    differ = differences(store.manifest, manifest)
    if differ:
        shown = "; ".join(f"{k} is {have!r}, the input's is {want!r}" for k, have, want in differ[:3])
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
