"""`nait capture` (a data set's neuron summaries into the store) and `nait feature` (a capability feature
file from a target set), and the checks before a capture: the default reductions, the fit on the disk
(nait_core/plan.py) and the warning before an exact capture too big for the disk."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from safetensors import SafetensorError

from .. import methods
from ..capture import capture, find_store
from ..features import build_feature
from ..pipeline import feature_for, feature_path, target_capture_options
from ..plan import ShapeUnknown, check_fit, default_pool_reductions, make_plan, model_shape
from ..selection import output_error, remove_stale_temps
from ..sketch import RECOMMENDED_K, bytes_per_sample
from .options import (
    DATA_SPECS,
    FORCE_HELP,
    add_capture_args,
    add_data_args,
    add_model_args,
    capture_options,
    model_from_args,
    print_report,
    read_data,
    tqdm_progress,
)

EXACT_WARN_BYTES = 50e9  # an exact store larger than this gets a --sketch suggestion


def narrow_reductions(args, model, dataset, shape) -> None:
    """`nait select`/`score`/`plan` given no --reductions: past plan.DEFAULT_STORE_LIMIT (and with no old
    default store on disk), store only what --method reads, and say so. Sets args.reductions."""
    method = getattr(args, "method", None)
    if args.reductions is not None or method not in methods.names("neurons"):
        return
    chosen, note = default_pool_reductions(
        model, dataset, args.store_dir, capture_options(args), shape, method, args.reduction
    )
    args.reductions = ",".join(chosen)
    if note:
        print(note, file=sys.stderr)


def check_before_capture(args, model, dataset, targets=()) -> None:
    """Before the model loads (its config only, on the meta device): narrow the default reductions,
    refuse a capture that cannot fit the disk (the check `nait plan` reports), and warn when an exact
    pool is large. A pool already captured needs none of it."""
    options = capture_options(args)
    if find_store(model, dataset, args.store_dir, options):
        return
    try:
        shape = model_shape(args.model, args.neuron_module, args.trust_remote_code)
    except ShapeUnknown as error:  # the capture itself may still work: it loads the model
        print(f"nait: warning: {error}; the store's size is not checked before the capture", file=sys.stderr)
        return
    if options.sketch:  # before the model loads: its config gives the width
        options.sketch.check_width(shape.neurons)
    narrow_reductions(args, model, dataset, shape)
    check_fit(make_plan(model, dataset, list(targets), args.store_dir, capture_options(args), shape))
    warn_if_exact_too_big(args, shape, len(dataset))


def warn_if_exact_too_big(args, model, n_samples: int) -> None:
    """Say when an exact store of this pool would be large or would not fit the free disk, and suggest --sketch.
    `model`: anything with n_layers and neurons_per_layer (a model, or a plan.ModelShape)."""
    if getattr(args, "sketch", None):
        return
    reductions = len(capture_options(args).reductions)
    need = n_samples * bytes_per_sample(model.n_layers, model.neurons_per_layer, reductions)
    root = Path(args.store_dir)
    free = shutil.disk_usage(root if root.exists() else Path.cwd()).free
    if need > EXACT_WARN_BYTES or need > 0.8 * free:
        compact = n_samples * bytes_per_sample(model.n_layers, model.neurons_per_layer, 2, RECOMMENDED_K)
        print(
            f"nait: warning: an exact store of {n_samples:,} samples needs about {need / 1e9:,.1f} GB "
            f"({free / 1e9:,.1f} GB free at {root}); --sketch {RECOMMENDED_K} --reductions mean,last-first would "
            f"need {compact / 1e9:,.2f} GB (overlap and nait-pca; see docs/methods.md)",
            file=sys.stderr,
        )


def cmd_capture(args):
    dataset = read_data(args, args.data)
    model = model_from_args(args)
    check_before_capture(args, model, dataset)
    report = capture(model, dataset, args.store_dir, capture_options(args), tqdm_progress())
    print_report(report, dataset.name)
    missing = report.store.missing_ranges()
    if missing:
        print(f"worker {args.worker} done; {len(missing)} shards left for the other workers", file=sys.stderr)
    print(report.store.location)


def _as_os_error(error: Exception) -> OSError:
    """safetensors reports an I/O error as text, "... (os error 28)": the OSError it stands for."""
    if isinstance(error, OSError):
        return error
    code = re.search(r"os error (\d+)", str(error))
    return OSError(int(code[1]), os.strerror(int(code[1]))) if code else OSError(str(error))


def cmd_feature(args):
    dataset = read_data(args, args.target, target=True)
    model = model_from_args(args)
    # Targets are always captured exact (features keep exact profiles); --sketch applies to pools.
    options = target_capture_options(capture_options(args))
    report = capture(model, dataset, args.store_dir, options, tqdm_progress())
    print_report(report, f"target {dataset.name}")
    if args.out:
        remove_stale_temps(Path(args.out))  # what a killed run writing this file left beside it
        feature = build_feature(report.store, args.name or dataset.name)
        try:
            out = feature.save(Path(args.out))
        except (OSError, SafetensorError) as error:
            raise output_error(Path(args.out), _as_os_error(error)) from None
    else:  # the store's own feature: a checksummed cache listed in the target store's caches.json
        feature_for(report.store, args.store_dir, args.name or dataset.name)
        out = feature_path(report.store)
    print(out)


def add_capture_parser(sub) -> None:
    p = sub.add_parser("capture", help="capture a data set's neuron summaries into the store")
    p.add_argument("--data", required=True, help=DATA_SPECS)
    p.add_argument(
        "--worker",
        default="0/1",
        help="I/N: capture only every N-th missing shard from the I-th (a by-hand split; --ray does it for you)",
    )
    add_model_args(p), add_data_args(p), add_capture_args(p)
    p.set_defaults(func=cmd_capture)


def add_feature_parser(sub) -> None:
    p = sub.add_parser("feature", help="build a capability feature file from a target set")
    p.add_argument("--target", required=True, help=DATA_SPECS)
    p.add_argument("--name", help="feature name (default: the target's)")
    p.add_argument("--out", type=Path, help="feature file (.safetensors); default: inside the target's store folder")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    add_model_args(p), add_data_args(p), add_capture_args(p)
    p.set_defaults(func=cmd_feature)
