"""The cheap checks of every `nait` command's options and paths (`check_args`), made before any data is read
or a model loaded, so a mistake is said by option name rather than as a traceback from deep in a run."""

from __future__ import annotations

import math

from .. import methods
from ..scoring import parse_threshold, pool_reduction
from ..selection import check_output_paths
from ..sketch import SketchError
from ..store import REDUCTIONS, readable, sources
from .options import capture_options, reduction_names, score_options


def _at_least(args, option: str, low: int, why: str = "") -> None:
    value = getattr(args, option.lstrip("-").replace("-", "_"), None)
    if value is not None and value < low:
        raise ValueError(f"{option} must be at least {low}{why}, not {value}")


def check_device(device: str | None) -> None:
    """A --device torch knows and this machine has (said here, not as a traceback from deep in a load)."""
    if not device:
        return
    import torch

    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device!r} is not a device name; use cpu, cuda, cuda:N or mps") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {device}: CUDA is not available on this machine"
                + ("" if torch.version.cuda else " (this torch is built without CUDA)")
                + "; use --device cpu, or leave --device out to use CUDA only where there is one"
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise ValueError(f"--device {device}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"--device {device}: MPS (Apple GPU) is not available here; use --device cpu")
    elif parsed.type != "cpu":
        raise ValueError(f"--device {device}: nait runs on cpu, cuda or mps")


def _check_reductions(args) -> None:
    """The pool summary the scoring method reads is among --reductions (else the capture would finish
    and then the scoring fail)."""
    method = getattr(args, "method", None)
    if getattr(args, "explain", None) == "neuron":  # a neuron card shows each record's token-mean value
        needed, who = "mean", "nait explain neuron"
    elif method in methods.names("neurons"):  # not rds, embed or a baseline, nor a command without a method
        needed = pool_reduction(score_options(args))
        who = f"--method {method}{f' --reduction {needed}' if method == 'nait-pca' else ''}"
    elif method in methods.names("neuron-records"):  # overlap-max: each record's token mean, pool and targets
        needed, who = "mean", f"--method {method}"
    else:
        return
    have = reduction_names(args)
    if readable(needed, have):
        return
    how = f" (or {' and '.join(sources(needed, ()))})" if len(sources(needed, ())) > 1 else ""
    raise ValueError(
        f"{who} reads the pool's '{needed}' summary, which --reductions {','.join(have)} does not store: "
        f"add {needed}{how} to --reductions"
    )


def check_args(args) -> None:
    """Every cheap check of the options and paths, before any data is read or a model loaded."""
    for option in ("ratio", "min_score"):  # NaN passes every comparison's test as False: refuse it by name
        value = getattr(args, option, None)
        if value is not None and math.isnan(value):
            raise ValueError(f"--{option.replace('_', '-')} must be a number, not nan")
    ratio = getattr(args, "ratio", None)
    if ratio is not None and not 0 < ratio <= 1:
        raise ValueError(f"--ratio must be in (0, 1], not {ratio}")
    _at_least(args, "--top", 1)
    _at_least(args, "--seed", 0)
    _at_least(args, "--sketch-seed", 0)
    _at_least(args, "--split-seed", 0)
    _at_least(args, "--target-size", 2, " (a capability feature needs 2 target samples)")
    _at_least(args, "--max-length", 1)
    _at_least(args, "--batch-tokens", 1)
    _at_least(args, "--candidates-limit", 1)
    _at_least(args, "--feature-size", 2, " (a capability feature needs 2 target samples)")
    _at_least(args, "--heldout-size", 1)
    if hasattr(args, "reductions"):
        capture_options(args)  # --worker and --reductions
        unknown = set(reduction_names(args)) - set(REDUCTIONS)
        if unknown:
            raise ValueError(f"--reductions: unknown {sorted(unknown)}; choose from {', '.join(REDUCTIONS)}")
    if hasattr(args, "fire_threshold"):
        try:
            parse_threshold(args.fire_threshold)
        except ValueError as error:
            raise ValueError(f"--fire-threshold: {error}") from None
    if hasattr(args, "reductions"):
        _check_reductions(args)
    check_device(getattr(args, "device", None))
    method = methods.REGISTRY.get(getattr(args, "method", None))
    if method and method.target and hasattr(args, "layers"):
        score_options(args)  # --layers and the method's own options, before any record is read
    if args.command == "explain" and method and (not method.explains or args.layers):
        raise ValueError(
            f"nait explain splits a score into per-neuron parts over every layer: --method {method.name}"
            f"{' --layers' if args.layers else ''} has none; use --method {' or '.join(methods.names(explains=True))}"
        )
    if method and method.name == "embed":  # the encoder folder, before any record is read
        from ..methods.embed import encoder_folder

        encoder_folder(args.embed_model or None)
    if getattr(args, "sketch", None) and method and not method.compact:
        raise SketchError(
            f"--method {method.name} cannot score a compact pool (--sketch {args.sketch}): it needs each neuron's value "
            "to find which neurons fire. Use --method overlap or nait-pca, or capture without --sketch"
        )
    inputs = {
        option: [str(v) for v in (values if isinstance(values, list) else [values])]
        for option in ("candidates", "target", "data", "feature", "subset")
        if (values := getattr(args, option, None))
    }
    inputs = {f"--{option}": values for option, values in inputs.items()}
    if args.command == "eval":  # --out is a results folder, resumed when it exists
        check_output_paths({}, inputs, folders={"--out": args.out})
        return
    outputs = {"--out": getattr(args, "out", None), "--scores": getattr(args, "scores", None)}
    # '-' is standard output for the JSONL of select and score; a feature file is always a file
    stdout = args.command in ("select", "score")
    if not stdout and str(getattr(args, "out", None)) == "-":
        raise ValueError(f"--out -: nait {args.command} writes a binary file, not to standard output; give a path")
    check_output_paths(outputs, inputs, force=getattr(args, "force", False), stdout=stdout)
