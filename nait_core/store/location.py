"""Where a store's bytes live: a local folder, or an fsspec URL (s3://, gs://, memory://, file://...) whose
shards are mirrored into a local folder (`mirror_folder`) and read from there.

Both kinds answer the same few questions for `Store`: which shards are written (`written`), what to do
after a shard is written locally (`upload`) or removed (`remove`). Only `Remote` knows fsspec; it is
imported only when a URL is used.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .. import atomic
from .format import StoreError, binding_problem, sha256, shard_name, shard_problem, write_json
from .manifest import checked_manifest, read_manifest, same_store


def is_url(location) -> bool:
    """An fsspec URL (s3://, gs://, memory://, file://...) rather than a local path."""
    return isinstance(location, str) and "://" in location


def mirror_folder(url: str) -> Path:
    """The local folder a remote store's shards are downloaded to (and its derived caches kept in)."""
    cache = Path(os.environ.get("NAIT_CACHE", Path.home() / ".cache" / "nait"))
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return cache / "stores" / f"{hashlib.sha256(url.rstrip('/').encode()).hexdigest()[:16]}-{name}"


class Local:
    """A store folder on this machine: the files are the truth."""

    url = None

    def __init__(self, path):
        self.path = Path(path)

    @property
    def location(self) -> Path:
        return self.path

    def read_manifest(self) -> dict:
        return read_manifest(self.path)

    def written(self, names) -> set[str]:
        """The shards among `names` whose checksums.json (written last) exists."""
        return {name for name in names if (self.path / name / "checksums.json").exists()}

    def upload(self, name: str, files: list[str]) -> None:
        """Nothing to do: the shard was renamed into place."""

    def remove(self, name: str) -> None:
        """Nothing to do: the local folder is removed by the caller."""


class Remote:
    """A store at an fsspec URL, mirrored locally: the remote copy is the truth (written by any machine)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.path = mirror_folder(url)

    @property
    def location(self) -> str:
        return self.url

    def file(self, *parts: str) -> tuple[object, str]:
        """(file system, path) of a file of the remote store."""
        import fsspec  # only remote stores need it

        fs, root = fsspec.core.url_to_fs(self.url)
        return fs, "/".join([root, *parts])

    def _mirror(self, manifest: dict) -> dict:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.path / "manifest.json", manifest)
        return manifest

    def read_manifest(self) -> dict:
        fs, file = self.file("manifest.json")
        try:
            manifest = json.loads(fs.cat_file(file))
        except (OSError, ValueError) as error:
            raise StoreError(f"{self.url}: no store here (manifest.json missing or unreadable: {error})") from error
        return self._mirror(checked_manifest(manifest, f"{self.url}/manifest.json"))

    def create(self, manifest: dict) -> dict:
        """The manifest of the store here: `manifest`, written if there is none; the existing one if it
        describes the same store; StoreError otherwise."""
        fs, file = self.file("manifest.json")
        try:
            existing = json.loads(fs.cat_file(file))
        except FileNotFoundError:
            fs.makedirs(file.rsplit("/", 1)[0], exist_ok=True)
            fs.pipe_file(file, json.dumps(manifest, indent=2, sort_keys=True).encode())
            return self._mirror(manifest)
        if not same_store(existing, manifest):
            raise StoreError(
                f"{self.url}: a store with other inputs already lives here; delete it or pick another location"
            )
        return self._mirror(existing)

    def written(self, names) -> set[str]:
        """One listing of the remote checksums files, not one request per shard."""
        fs, pattern = self.file("shard-*", "checksums.json")
        done = {p.rstrip("/").split("/")[-2] for p in fs.glob(pattern)}
        return {name for name in names if name in done}

    def upload(self, name: str, files: list[str]) -> None:
        """Upload the local shard `name`, checksums.json last: as on disk, it marks the shard complete
        (object stores make each PUT atomic, so the marker appears only after the data)."""
        fs, remote = self.file(name)
        fs.makedirs(remote, exist_ok=True)
        for file in files + ["checksums.json"]:
            fs.put_file(str(self.path / name / file), f"{remote}/{file}")

    def remove(self, name: str) -> None:
        fs, remote = self.file(name)
        if fs.exists(f"{remote}/checksums.json"):
            fs.rm_file(f"{remote}/checksums.json")  # first: the shard counts as missing from here on
        if fs.exists(remote):
            fs.rm(remote, recursive=True)

    def fetch_shard(self, store, start: int, end: int) -> str | None:
        """Download one shard of `store` into the mirror unless the mirror already holds this very copy,
        checking each file's sha256 on the way (a damaged remote shard is never mirrored). Returns the
        problem, or None."""
        name = shard_name(start, end)
        fs, remote = self.file(name)
        try:
            sums_bytes = fs.cat_file(f"{remote}/checksums.json")
            sums = json.loads(sums_bytes)
        except (OSError, ValueError) as error:
            return f"{self.url}/{name}: checksums unreadable ({error})"
        problem = binding_problem(store, sums, start, end)
        if problem:  # also: only this store's own file names are ever downloaded (no path from the remote)
            return f"{self.url}/{name}/checksums.json: {problem}"
        local = self.path / name
        if (
            (local / "checksums.json").exists()
            and (local / "checksums.json").read_bytes() == sums_bytes
            and shard_problem(store, start, end) is None
        ):
            return None
        with atomic.temp_folder(self.path, name) as tmp:
            for file, digest in sums["files"].items():
                try:
                    fs.get_file(f"{remote}/{file}", str(tmp / file))
                except OSError as error:
                    return f"{self.url}/{name}/{file}: missing ({error})"
                if sha256(tmp / file) != digest:
                    return f"{self.url}/{name}/{file}: checksum mismatch, the file was changed or damaged"
            (tmp / "checksums.json").write_bytes(sums_bytes)
            with store.lock(name):
                if local.exists():
                    store._discard(local)
                os.replace(tmp, local)
        store._forget(start)
        return shard_problem(store, start, end)


def at(location) -> Local | Remote:
    return Remote(location) if is_url(location) else Local(location)
