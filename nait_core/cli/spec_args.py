"""`nait select` arguments back to a `SelectionSpec`, through the real parser (the reader of
`nait_core.spec.to_argv`)."""

from __future__ import annotations

import shlex

from ..spec import CaptureSpec, DataSpec, ExecutionSettings, ModelSpec, SelectionSpec
from .options import cut_of, reduction_names, score_options


def from_argv(argv: list[str]) -> tuple[SelectionSpec, ExecutionSettings]:
    """A `nait select` command line (with or without the leading "nait") read by the real parser."""
    from . import build_parser  # the package imports every command module, this one among them

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


def spec_from_args(args) -> tuple[SelectionSpec, ExecutionSettings]:
    """The selection parsed `nait select` options describe, and how to run it (after `check_args`)."""
    spec = SelectionSpec(
        data=DataSpec(
            candidates=args.candidates,
            targets=tuple(args.target or ()),
            target_size=args.target_size,
            seed=args.seed,
            format=args.format,
            text_field=args.text_field,
            skip_invalid=args.skip_invalid,
        ),
        model=ModelSpec(args.model, args.dtype, args.neuron_module, args.trust_remote_code),
        capture=CaptureSpec(
            reductions=reduction_names(args) if args.reductions else (),  # (): the default, as the spec says
            max_length=args.max_length,
            sketch=args.sketch or 0,
            sketch_seed=args.sketch_seed,
            exact_sample=args.exact_sample,
        ),
        scoring=score_options(args),
        cut=cut_of(args),
        merge=args.merge,
    )
    execution = ExecutionSettings(args.store_dir, args.device, args.batch_tokens, args.ray, args.ray_workers)
    return spec, execution
