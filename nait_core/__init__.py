"""NAIT Studio's engine: capture neuron activations, build capability features, score and select data.

The names most users need (capture itself is `nait_core.capture.capture`):
    load_model, load_data, run_select, build_feature, Feature, score_store, ScoreOptions, select, Cut, export

They are imported on first use (module `__getattr__`), so that `import nait_core.data` or any other
light module (data, sources, datasets, store, selection, features, scoring, sketch, atomic, progress)
does not load torch or transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers and editors; at run time `__getattr__` imports them on first use
    from .features import Feature, build_feature
    from .models import load_model
    from .pipeline import load_data, run_select
    from .scoring import ScoreOptions, score_store
    from .selection import Cut, export, select

_EXPORTS = {
    "Cut": "selection",
    "export": "selection",
    "select": "selection",
    "Feature": "features",
    "build_feature": "features",
    "load_model": "models",
    "load_data": "pipeline",
    "run_select": "pipeline",
    "ScoreOptions": "scoring",
    "score_store": "scoring",
}

__all__ = [
    "Cut",
    "Feature",
    "ScoreOptions",
    "build_feature",
    "export",
    "load_data",
    "load_model",
    "run_select",
    "score_store",
    "select",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
