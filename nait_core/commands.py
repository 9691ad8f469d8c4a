"""The `nait` command that makes a selection, rendered from the same options the selection was made with.

The app shows the command that writes the file it offers; it builds a `SelectRequest` from what it loaded
(data, model, store folder) and the settings it selected with, and `select_argv` turns that into the
arguments of `nait select` (`select_command`: one shell line, quoted with shlex). Options at the CLI's
defaults are left out, except the scoring ones, which are always spelled out.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from .scoring import ScoreOptions
from .selection import Cut


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
    cut: Cut = field(default_factory=lambda: Cut(ratio=0.1))
    merge: str = "union"
    reductions: tuple[str, ...] = ()  # the pool's --reductions; () = the default
    sketch: int = 0  # a compact pool's --sketch K (0: exact)
    sketch_seed: int = 0
    exact_sample: int = 2000


def _number(value) -> str:
    """A number as the CLI parses it back to the same value (repr of a float round-trips exactly)."""
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def select_argv(request: SelectRequest, out: str = "selected.jsonl", scores: str | None = None) -> list[str]:
    """The arguments of `nait select` (the first two are "nait", "select") that write `request`'s selection
    to `out` (and every record's scores to `scores`)."""
    r, o = request, request.options
    argv = ["nait", "select", "--candidates", r.candidates, *[a for t in r.targets for a in ("--target", t)]]
    if r.target_size:
        argv += ["--target-size", str(r.target_size)]
    if r.seed:
        argv += ["--seed", str(r.seed)]
    if r.fmt:
        argv += ["--format", r.fmt]
    if r.text_field:
        argv += ["--text-field", r.text_field]
    if r.skip_invalid:
        argv += ["--skip-invalid"]
    argv += ["--model", r.model]
    if r.reductions:
        argv += ["--reductions", ",".join(r.reductions)]
    if r.sketch:  # the same compact pool (and exact sample) the app scored: the same store key
        argv += ["--sketch", str(r.sketch)] + (["--sketch-seed", str(r.sketch_seed)] if r.sketch_seed else [])
        argv += ["--exact-sample", str(r.exact_sample)]
    argv += [
        "--method",
        o.method,
        "--fire-threshold",
        o.fire_threshold,
        "--reduction",
        o.reduction,
        "--layer-norm",
        o.layer_norm,
    ] + ([] if o.centre else ["--no-centre"])
    kind, value = next((k, v) for k, v in vars(r.cut).items() if v is not None)
    argv += [f"--{kind.replace('_', '-')}", _number(value), "--merge", r.merge, "--store-dir", str(r.store_dir)]
    argv += ["--out", str(out)] + (["--scores", str(scores)] if scores else [])
    return argv


def select_command(request: SelectRequest, out: str = "selected.jsonl", scores: str | None = None) -> str:
    """`select_argv` as one shell line."""
    return shlex.join(select_argv(request, out, scores))
