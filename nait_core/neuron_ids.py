"""The one name of a neuron everywhere (CLI, app, files): `L12.N345`. Torch-free, so pages and reports
that only name neurons need not import the model code."""

from __future__ import annotations

import re


def neuron_id(layer: int, index: int) -> str:
    return f"L{layer}.N{index}"


def parse_neuron_id(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"L(\d+)\.N(\d+)", text.strip())
    if not match:
        raise ValueError(f"not a neuron id: {text!r} (expected e.g. L12.N345)")
    return int(match.group(1)), int(match.group(2))
