"""`nait select` arguments back to a `SelectionSpec`, through the real parser (the reader of
`nait_core.spec.to_argv`)."""

from __future__ import annotations

import shlex

from ..spec import ExecutionSettings, SelectionSpec
from . import build_parser  # a cycle if a command module imported this one: none does
from .options import spec_from_args


def from_argv(argv: list[str]) -> tuple[SelectionSpec, ExecutionSettings]:
    """A `nait select` command line (with or without the leading "nait") read by the real parser."""
    argv = list(argv)[1:] if argv and argv[0] == "nait" else list(argv)
    if not argv or argv[0] != "select":
        raise ValueError("not a `nait select` command line")
    if "--out" not in argv:
        argv += ["--out", "selected.jsonl"]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:  # argparse has printed its message naming the option
        raise ValueError(f"`nait select` arguments the parser refuses: {shlex.join(argv)}") from None
    return spec_from_args(args)
