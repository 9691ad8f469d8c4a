"""A store's manifest and identity: what the store holds, and the one rule for "the same store".

`identity(manifest)` is what must match for a store to be reused, and what its folder name's digest
(`capture.store_key`) and every shard's `checksums.json` (`identity_digest`) are made from: the model's
fingerprint and dtype, the records' content hash and count, the capture options, and, once captured,
the shape and the format version. Not the shard size (an existing store keeps its own), not the stored
hidden states' width, not the display names.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .format import FORMAT_VERSION, REDUCTIONS, StoreError

MAX_SHARD_SIZE = 512
MIN_SHARD_SIZE = 32


def default_shard_size(n_samples: int) -> int:
    """At least 16 shards when the pool allows (an interruption loses at most 1/16 of the work), at
    most 512 samples per shard (so files stay tens of MB at 7B shape), at least 32 (whole batches)."""
    return max(MIN_SHARD_SIZE, min(MAX_SHARD_SIZE, -(-n_samples // 16)))


def identity(manifest: dict) -> dict:
    """What must match for two manifests to describe the same store (see the module's docstring)."""
    out = {k: v for k, v in manifest.items() if k not in ("shard_size", "hidden_size")}
    out["model"] = {k: v for k, v in manifest.get("model", {}).items() if k != "name"}
    out["data"] = {k: v for k, v in manifest.get("data", {}).items() if k != "name"}
    return out


def identity_digest(manifest: dict) -> str:
    """sha256 of `identity(manifest)`: every shard's checksums.json is bound to it, so a shard copied from
    another store is damaged here, and an edited manifest fails every shard."""
    return hashlib.sha256(json.dumps(identity(manifest), sort_keys=True).encode()).hexdigest()


def same_store(a: dict, b: dict) -> bool:
    return identity(a) == identity(b)


def manifest_problem(manifest) -> str | None:
    """What is wrong with a manifest's structure (None if nothing): every field a store reads, with its type,
    so that a hand-edited or hostile manifest is refused with its field named instead of a traceback."""
    if not isinstance(manifest, dict):
        return f"is a JSON {type(manifest).__name__}, not an object"

    def field(*keys, kind=int, low=None):
        value = manifest
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return f"field '{'.'.join(keys)}' is missing"
            value = value[key]
        if not isinstance(value, kind) or isinstance(value, bool) or (low is not None and value < low):
            want = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            return f"field '{'.'.join(keys)}' is {value!r}, expected {want}" + (f" ≥ {low}" if low is not None else "")
        return None

    problem = (
        field("model", "fingerprint", kind=str)
        or field("data", "hash", kind=str)
        or field("data", "n_samples", low=1)
        or field("shard_size", low=1)
        or field("options", "reductions", kind=list)
        or (field("shape", "layers", low=1) if "shape" in manifest else "field 'shape' is missing")
        or field("shape", "neurons", low=1)
        or (field("hidden_size", low=1) if "hidden_size" in manifest else None)
    )
    if problem:
        return problem
    unknown = [r for r in manifest["options"]["reductions"] if r not in REDUCTIONS]
    return f"field 'options.reductions' holds unknown {unknown}" if unknown else None


def checked_manifest(manifest, where) -> dict:
    problem = manifest_problem(manifest)
    if problem:
        raise StoreError(f"{where}: {problem} (damaged or edited); delete the store folder to recapture")
    return manifest


def read_manifest(path: Path) -> dict:
    """The manifest of the store folder `path`, checked (`manifest_problem`); StoreError naming the file,
    the field and the fix otherwise."""
    file = Path(path) / "manifest.json"
    try:
        manifest = json.loads(file.read_text())
    except FileNotFoundError as error:
        raise StoreError(f"{path}: no store here (manifest.json missing)") from error
    except (OSError, ValueError) as error:
        raise StoreError(f"{file} is unreadable or corrupt ({error}); delete the folder to recapture") from error
    return checked_manifest(manifest, file)


def format_problem(manifest: dict, location) -> str | None:
    version = manifest.get("format_version")
    if version == FORMAT_VERSION:
        return None
    return (
        f"{location}: store format {version} is not {FORMAT_VERSION} (written by another nait version); "
        f"delete the folder and run the capture command again to recapture it"
    )


def for_writing(manifest: dict) -> dict:
    """A new store's manifest: this format version, and `default_shard_size` where the shard size is None."""
    manifest = {**manifest, "format_version": FORMAT_VERSION}
    if manifest.get("shard_size") is None:
        manifest["shard_size"] = default_shard_size(manifest["data"]["n_samples"])
    return manifest


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def differences(have: dict, want: dict) -> list[tuple[str, object, object]]:
    """(field, have, want) for every identity field, outside the shape, in which manifest `have` differs from
    the manifest `want` computed from the inputs (before a capture: no shape, no format version yet)."""
    want, have = _flat(identity({**want, "format_version": FORMAT_VERSION})), _flat(identity(have))
    keys = sorted(set(want) | set(have))
    return [(k, have.get(k), want.get(k)) for k in keys if not k.startswith("shape.") and want.get(k) != have.get(k)]
