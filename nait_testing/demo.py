"""The small demo the app, explain and CLI tests share: 120 pool records, 16 samples per built-in target,
captured with the bundled model by `nait select` itself (minutes on a CPU; once per session)."""

from __future__ import annotations

from pathlib import Path

DEMO_SIZE, TARGET_SIZE = "120", "16"
TARGETS = ["gsm8k", "humaneval", "mmlu"]


def nait_select(root: Path, out: Path, *options: str) -> bytes:
    """`nait select` on the small demo and every built-in target; the bytes it wrote to `out`."""
    from nait_core import cli

    argv = [
        "select",
        "--candidates",
        "demo",
        *[a for t in TARGETS for a in ("--target", t)],
        "--target-size",
        TARGET_SIZE,
        "--store-dir",
        str(root),
        "--out",
        str(out),
        "--force",
        *options,
    ]
    assert cli.main(argv) == 0
    return out.read_bytes()
