"""`nait capture` (a data set's neuron summaries into the store) and `nait feature` (a capability feature
file from a target set), and the warning before an exact capture too big for the disk."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from safetensors import SafetensorError

from ..capture import capture, find_store
from ..features import build_feature
from ..pipeline import feature_for, feature_path, target_capture_options
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


def warn_before_capture(args, model, dataset) -> None:
    """Before a pool's capture (only when it is not captured yet: finding it loads no model): refuse a
    --sketch wider than the model's layers, and warn when an exact store would be too big."""
    options = capture_options(args)
    if not find_store(model, dataset, args.store_dir, options):
        if options.sketch:
            options.sketch.check_width(model.neurons_per_layer)
        warn_if_exact_too_big(args, model, len(dataset))


def warn_if_exact_too_big(args, model, n_samples: int) -> None:
    """Say when an exact store of this pool would be large or would not fit the free disk, and suggest --sketch."""
    if getattr(args, "sketch", None):
        return
    reductions = len([r for r in args.reductions.split(",") if r.strip()])
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
    warn_before_capture(args, model, dataset)
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
        out = feature_path(report.store, args.store_dir)
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
    p.add_argument("--out", type=Path, help="feature file (.safetensors); default under <store-dir>/features/")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    add_model_args(p), add_data_args(p), add_capture_args(p)
    p.set_defaults(func=cmd_feature)
