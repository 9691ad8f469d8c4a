"""`nait`: capture, build features, score, select and export from the command line.

    nait select --candidates demo --target gsm8k --ratio 0.1 --out chosen.jsonl --scores scores.jsonl
    nait capture --data pool.jsonl
    nait feature --target gsm8k --target-size 64 --out gsm8k.safetensors
    nait score --candidates pool.jsonl --feature gsm8k.safetensors --scores scores.jsonl
    nait info
    nait eval --candidates demo --target gsm8k --methods overlap,nait-pca,ifd --out runs/gsm8k
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .baselines import BASELINES, baseline_scores
from .capture import DEFAULT_STORE_ROOT, CaptureOptions, Progress, capture
from .data import FORMATS, DataError
from .evaluate import add_eval_parser
from .features import Feature, FeatureError, build_feature, list_features
from .models import ModelError, add_model_args, model_from_args
from .pipeline import load_data, run_select
from .scoring import METHODS, ScoreOptions, score_store
from .selection import MERGES, Cut, export, select
from .store import REDUCTIONS, StoreError, list_stores


def _tqdm_progress():
    """A progress callback drawing one tqdm bar over tokens (tok/s and ETA) with a sample count."""
    from tqdm import tqdm

    state = {"bar": None}

    def update(p: Progress):
        bar = state["bar"]
        if bar is None or bar.total != p.tokens_total or p.tokens_done < bar.n:
            if bar is not None:
                bar.close()
            bar = state["bar"] = tqdm(total=p.tokens_total, unit="tok", unit_scale=True, desc="capture", file=sys.stderr)
        bar.update(p.tokens_done - bar.n)
        bar.set_postfix_str(f"{p.samples_done}/{p.samples_total} samples")
        if p.samples_done == p.samples_total:
            bar.close()
            state["bar"] = None

    return update


def _add_data_args(parser):
    group = parser.add_argument_group("data")
    group.add_argument("--format", choices=FORMATS, help="record format (default: detected per record)")
    group.add_argument("--text-field", help="plain-text records: the field holding the text")
    group.add_argument("--skip-invalid", action="store_true", help="skip bad records and report them, instead of stopping")
    group.add_argument("--target-size", type=int, help="use a seeded random sample of this many records of each target")
    group.add_argument("--seed", type=int, default=0, help="seed for --target-size sampling and --method random")


def _add_capture_args(parser):
    group = parser.add_argument_group("capture")
    group.add_argument("--store-dir", default=str(DEFAULT_STORE_ROOT), help="where stores live (default: cached_features)")
    group.add_argument("--max-length", type=int, default=1024, help="truncate samples to this many tokens (counted in the report)")
    group.add_argument("--batch-tokens", type=_batch_tokens, default=None, metavar="N|auto",
                       help="padded tokens per batch (default auto: 2,048 on CPU; on CUDA the largest that fits)")
    group.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                       help="capture on a Ray cluster: alone, a local one; 'auto' or ray://host:port, an existing one")
    group.add_argument("--ray-workers", type=int, help="--ray: actors (default: one per GPU, or one per node without GPUs)")
    group.add_argument("--reductions", default=",".join(CaptureOptions().reductions),
                       help=f"per-sample summaries to store, comma-separated, from {','.join(REDUCTIONS)}")


def _add_score_args(parser):
    group = parser.add_argument_group("scoring")
    group.add_argument("--method", choices=METHODS + tuple(BASELINES), default="overlap",
                       help="overlap (default), jaccard, nait-pca (Eq. 5 as published); baselines needing no target: ifd, length, random")
    group.add_argument("--no-centre", action="store_true", help="overlap: do not centre on the pool mean")
    group.add_argument("--fire-threshold", default="0", help="jaccard: absolute threshold T, or qQ for each neuron's Q-quantile over the pool")
    group.add_argument("--reduction", default="last-first", choices=["last-first", "mean", "last"], help="nait-pca: candidate summary and PCA input")
    group.add_argument("--layer-norm", default="none", choices=["none", "z"], help="nait-pca: z-score each layer's projection before summing")


def _add_cut_args(parser, required=True):
    group = parser.add_argument_group("selection")
    cut = group.add_mutually_exclusive_group(required=required)
    cut.add_argument("--ratio", type=float, help="keep this share of the pool per target (0.1 = 10%%)")
    cut.add_argument("--top", type=int, help="keep this many records per target")
    cut.add_argument("--min-score", type=float, help="keep records scoring at least this")
    group.add_argument("--merge", choices=MERGES, default="union", help="several targets: union (paper), intersection (core subset) or mean-z")


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
    from .distributed import RayOptions

    return RayOptions(address=args.ray, workers=args.ray_workers, neuron_module=args.neuron_module,
                      trust_remote_code=args.trust_remote_code)


def _capture_options(args) -> CaptureOptions:
    try:
        index, count = (int(part) for part in getattr(args, "worker", "0/1").split("/"))
        if not 0 <= index < count:
            raise ValueError
    except ValueError:
        raise ValueError(f"--worker must be I/N with 0 <= I < N, not {args.worker!r}") from None
    return CaptureOptions(reductions=tuple(r.strip() for r in args.reductions.split(",") if r.strip()),
                          max_length=args.max_length, batch_tokens=args.batch_tokens, worker=(index, count),
                          ray=_ray_options(args))


def _score_options(args) -> ScoreOptions:
    return ScoreOptions(method=args.method, centre=not args.no_centre, fire_threshold=args.fire_threshold,
                        reduction=args.reduction, layer_norm=args.layer_norm)


def _data(args, spec, target=False):
    return load_data(spec, fmt=args.format, text_field=args.text_field, skip_invalid=args.skip_invalid,
                     limit=args.target_size if target else None, seed=args.seed)


def _report(report, label):
    store = report.store
    print(f"{label}: {store.n_samples:,} samples, {'reused' if report.reused else 'captured'} store {store.path}"
          + (f" ({report.tokens_per_second:,.0f} tok/s)" if not report.reused else ""), file=sys.stderr)
    if report.truncated:
        print(f"  {report.truncated} samples truncated to --max-length", file=sys.stderr)
    if report.skipped:
        print(f"  {len(report.skipped)} invalid records skipped:", file=sys.stderr)
        for line in report.skipped[:20]:
            print(f"    {line}", file=sys.stderr)
        if len(report.skipped) > 20:
            print(f"    … and {len(report.skipped) - 20} more", file=sys.stderr)


# ---------------------------------------------------------------- commands

def _cut(args) -> Cut:
    return Cut(ratio=args.ratio, top=args.top, min_score=args.min_score)


def select_baseline(args):
    """ifd, length or random: one score per candidate, no target and no store."""
    candidates = _data(args, args.candidates)
    model = None if args.method == "random" else model_from_args(args)
    score = baseline_scores(args.method, model, candidates, seed=args.seed, max_length=args.max_length,
                            progress=_tqdm_progress())
    selection = select({args.method: score}, _cut(args))
    export(candidates.records, selection, args.out, args.scores)
    print(f"selected {selection.selected.sum():,} of {len(candidates):,} records ({args.method}) -> {args.out}", file=sys.stderr)


def cmd_select(args):
    if args.method in BASELINES:
        return select_baseline(args)
    if not args.target:
        raise ValueError(f"--target is required for --method {args.method}")
    candidates = _data(args, args.candidates)
    targets = [_data(args, t, target=True) for t in args.target]
    model = model_from_args(args)
    cut = _cut(args)
    result = run_select(model, candidates, targets, _score_options(args), cut, args.merge, args.store_dir,
                        _capture_options(args), _tqdm_progress())
    for report, label in zip(result.reports, ["candidates"] + [f"target {t.name}" for t in targets]):
        _report(report, label)
    export(candidates.records, result.selection, args.out, args.scores)
    print(f"selected {result.selection.selected.sum():,} of {len(candidates):,} records "
          f"({_score_options(args).describe()}, merge {args.merge}) -> {args.out}", file=sys.stderr)


def cmd_capture(args):
    dataset = _data(args, args.data)
    model = model_from_args(args)
    report = capture(model, dataset, args.store_dir, _capture_options(args), _tqdm_progress())
    _report(report, dataset.name)
    missing = report.store.missing_ranges()
    if missing:
        print(f"worker {args.worker} done; {len(missing)} shards left for the other workers", file=sys.stderr)
    print(report.store.path)


def cmd_feature(args):
    dataset = _data(args, args.target, target=True)
    model = model_from_args(args)
    report = capture(model, dataset, args.store_dir, _capture_options(args), _tqdm_progress())
    _report(report, f"target {dataset.name}")
    feature = build_feature(report.store, args.name or dataset.name)
    out = Path(args.out or Path(args.store_dir) / "features" / f"{report.store.path.name}.safetensors")
    feature.save(out)
    print(out)


def cmd_score(args):
    if args.method in BASELINES:
        raise ValueError(f"--method {args.method} needs no feature: use nait select --method {args.method}")
    candidates = _data(args, args.candidates)
    features = [Feature.load(p) for p in args.feature]
    model = model_from_args(args)
    report = capture(model, candidates, args.store_dir, _capture_options(args), _tqdm_progress())
    _report(report, "candidates")
    scores = score_store(report.store, features, _score_options(args))
    per_target = {s.feature: s.score for s in scores}
    cut = _cut(args) if (args.ratio or args.top or args.min_score is not None) else Cut(ratio=0.1)
    selection = select(per_target, cut, args.merge)
    export(candidates.records, selection, args.out, args.scores)
    print(f"scored {len(candidates):,} records with {len(features)} feature(s) -> {args.scores}", file=sys.stderr)


def cmd_info(args):
    stores = list_stores(Path(args.store_dir))
    features = list_features(Path(args.store_dir) / "features") + (list_features(Path(args.features)) if args.features else [])
    if args.json:
        print(json.dumps({"stores": stores, "features": features}, indent=2))
        return
    print(f"stores in {args.store_dir}:")
    for s in stores:
        status = "complete" if s.get("complete") else "INCOMPLETE"
        print(f"  {Path(s['path']).name}  {s.get('samples', '?'):>7} samples  {s.get('layers')}×{s.get('neurons')}  "
              f"{s.get('size_mb', '?')} MB  {status}")
    print("features:")
    for f in features:
        print(f"  {f['path']}  " + (f"{f['target']} ({f['samples']} samples, {f['model']}) {f['size_kb']} kB" if "error" not in f else f["error"]))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nait", description="Neuron-aware instruction-tuning data selection.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("select", help="capture, score and export in one go")
    p.add_argument("--candidates", required=True, help="candidate pool: a file (json/jsonl/parquet/csv) or built-in name (demo, gsm8k, …)")
    p.add_argument("--target", action="append", help="target set: a file or built-in name; repeat for several (not for ifd/length/random)")
    p.add_argument("--out", required=True, type=Path, help="JSONL of the selected records, exactly as read")
    p.add_argument("--scores", type=Path, help="JSONL with index, score, rank, selected and per-target scores")
    add_model_args(p), _add_data_args(p), _add_capture_args(p), _add_score_args(p), _add_cut_args(p)
    p.set_defaults(func=cmd_select)

    p = sub.add_parser("capture", help="capture a data set's neuron summaries into the store")
    p.add_argument("--data", required=True, help="a file or built-in name")
    p.add_argument("--worker", default="0/1",
                   help="I/N: capture only every N-th missing shard from the I-th (a by-hand split; --ray does it for you)")
    add_model_args(p), _add_data_args(p), _add_capture_args(p)
    p.set_defaults(func=cmd_capture)

    p = sub.add_parser("feature", help="build a capability feature file from a target set")
    p.add_argument("--target", required=True, help="a file or built-in name")
    p.add_argument("--name", help="feature name (default: the target's)")
    p.add_argument("--out", help="feature file (.safetensors); default under <store-dir>/features/")
    add_model_args(p), _add_data_args(p), _add_capture_args(p)
    p.set_defaults(func=cmd_feature)

    p = sub.add_parser("score", help="score a pool with one or more feature files")
    p.add_argument("--candidates", required=True)
    p.add_argument("--feature", required=True, action="append", help="feature file; repeat for several")
    p.add_argument("--scores", required=True, type=Path)
    p.add_argument("--out", type=Path, help="also write the selected records")
    add_model_args(p), _add_data_args(p), _add_capture_args(p), _add_score_args(p), _add_cut_args(p, required=False)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("info", help="list stores and features with their sizes")
    p.add_argument("--store-dir", default=str(DEFAULT_STORE_ROOT))
    p.add_argument("--features", help="another folder of feature files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    add_eval_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (DataError, ModelError, StoreError, FeatureError, ValueError) as error:
        print(f"nait: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nait: interrupted; finished shards and arms are kept, run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
