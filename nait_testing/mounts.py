"""Real read-only folders and full disks for tests: mounts, where the tests run as root (skipped elsewhere)."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager

import pytest


@contextmanager
def mounted(path, *options):
    """`path` as a mount (`mount OPTIONS path`: a tmpfs, or a bind of itself); skips where mounting is impossible."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", *options, str(path)], capture_output=True).returncode:
        pytest.skip("needs root and mount")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


@contextmanager
def read_only(path):
    """`path` on a read-only file system (EROFS), as a store on a read-only share is."""
    with mounted(path, "--bind", str(path)):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield path


@contextmanager
def tiny_disk(path, size: str = "1m"):
    """A tmpfs of `size` at `path`: a disk that fills up."""
    with mounted(path, "-t", "tmpfs", "-o", f"size={size}", "tmpfs") as disk:
        yield disk
