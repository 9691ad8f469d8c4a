"""The `nait` command that makes a selection, rendered from the same options the selection was made with.

The app shows the command that writes the file it offers; it builds a `SelectRequest` from what it loaded
(data, model, store folder) and the settings it selected with. The rendering is the spec's argv codec
(`nait_core.spec.to_argv`): a `SelectRequest` is a `SelectionSpec` plus the store folder, in the flat
shape the app fills in.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from .scoring import ScoreOptions
from .selection import Cut
from .spec import (
    DEFAULT_CUT,
    DEFAULT_EXACT_SAMPLE,
    DEFAULT_MERGE,
    CaptureSpec,
    DataSpec,
    ExecutionSettings,
    ModelSpec,
    SelectionSpec,
    to_argv,
)


@dataclass(frozen=True)
class SelectRequest:
    """Everything `nait select` needs to make one selection: what it reads, with which model, where the
    stores live, and how it scores, cuts and merges."""

    candidates: str
    targets: tuple[str, ...]
    model: str
    store_dir: str
    target_size: int | None = None  # None: every target record
    seed: int = 0
    fmt: str | None = None  # None: detected per record
    text_field: str | None = None
    skip_invalid: bool = False
    options: ScoreOptions = field(default_factory=ScoreOptions)
    cut: Cut = DEFAULT_CUT
    merge: str = DEFAULT_MERGE
    reductions: tuple[str, ...] = ()  # the pool's --reductions; () = the default
    sketch: int = 0  # a compact pool's --sketch K (0: exact)
    sketch_seed: int = 0
    exact_sample: int = DEFAULT_EXACT_SAMPLE

    def spec(self) -> SelectionSpec:
        r = self
        return SelectionSpec(
            data=DataSpec(r.candidates, tuple(r.targets), r.target_size, r.seed, r.fmt, r.text_field, r.skip_invalid),
            model=ModelSpec(r.model),
            capture=CaptureSpec(
                tuple(r.reductions), sketch=r.sketch, sketch_seed=r.sketch_seed, exact_sample=r.exact_sample
            ),
            scoring=r.options,
            cut=r.cut,
            merge=r.merge,
        )


def select_argv(request: SelectRequest, out: str = "selected.jsonl", scores: str | None = None) -> list[str]:
    """The arguments of `nait select` (the first two are "nait", "select") that write `request`'s selection
    to `out` (and every record's scores to `scores`)."""
    return to_argv(request.spec(), ExecutionSettings(store_dir=str(request.store_dir)), str(out), scores)


def select_command(request: SelectRequest, out: str = "selected.jsonl", scores: str | None = None) -> str:
    """`select_argv` as one shell line."""
    return shlex.join(select_argv(request, out, scores))
