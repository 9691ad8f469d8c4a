"""`nait`: capture, build features, score, select and export from the command line.

    nait select --candidates demo --target gsm8k --ratio 0.1 --out chosen.jsonl --scores scores.jsonl
    nait capture --data pool.jsonl
    nait feature --target gsm8k --target-size 64 --out gsm8k.safetensors
    nait score --candidates pool.jsonl --feature gsm8k.safetensors --scores scores.jsonl
    nait info
    nait verify --repair
    nait eval --candidates demo --target gsm8k --methods overlap,nait-pca,ifd --out runs/gsm8k
    nait app [--server.port 8502 …]   # the Streamlit app; extra options go to `streamlit run`
    nait explain neuron L12.N345 --candidates demo --target gsm8k
    nait explain shared --candidates demo --target gsm8k --target humaneval --target mmlu
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from .baselines import BASELINES, baseline_scores
from .capture import DEFAULT_STORE_ROOT, CaptureOptions, capture, find_store
from .data import FORMATS, DataError
from .evaluate import add_eval_parser
from .explain_cli import add_explain_parser
from .features import Feature, FeatureError, build_feature, list_features
from .models import ModelError, add_model_args, model_from_args
from .pipeline import feature_for, feature_path, load_data, run_select, target_capture_options
from .progress import Progress
from .scoring import METHODS, ScoreOptions, parse_threshold, score_store
from .selection import MERGES, Cut, check_output_paths, export, select
from .sketch import RECOMMENDED_K, Sketch, bytes_per_sample
from .store import REDUCTIONS, Store, StoreError, list_stores


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


DATA_SPECS = ("a file (.jsonl, .json, .parquet, .csv, .arrow), a datasets save_to_disk folder, a Hugging Face hub "
              "data set as hf:ID[:CONFIG[:SPLIT]] (split default train), or a built-in name (demo, gsm8k, humaneval, "
              "mmlu, mmlu:<subject>)")
OUT_HELP = ("JSONL of the selected records as read: a JSONL input's lines byte for byte; any other record "
            "(JSON, Parquet, CSV, Arrow, data set or built-in row) as one JSON object of its fields")
EXACT_WARN_BYTES = 50e9  # an exact store larger than this gets a --sketch suggestion


def _add_data_args(parser):
    group = parser.add_argument_group("data")
    group.add_argument("--format", choices=FORMATS, help="record format (default: detected per record)")
    group.add_argument("--text-field", help="plain-text records: the field holding the text")
    group.add_argument("--skip-invalid", action="store_true", help="skip bad records and report them, instead of stopping")
    group.add_argument("--target-size", type=int, help="use a seeded random sample of this many records of each target")
    group.add_argument("--seed", type=int, default=0, help="seed for --target-size sampling and --method random")


def _add_capture_args(parser):
    group = parser.add_argument_group("capture")
    group.add_argument("--store-dir", default=str(DEFAULT_STORE_ROOT), help="where stores live: a folder or an fsspec URL "
                       "such as s3://bucket/stores (default: cached_features)")
    group.add_argument("--max-length", type=int, default=1024, help="truncate samples to this many tokens (counted in the report)")
    group.add_argument("--batch-tokens", type=_batch_tokens, default=None, metavar="N|auto",
                       help="padded tokens per batch (default auto: 2,048 on CPU; on CUDA the largest that fits)")
    group.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                       help="capture on a Ray cluster: alone, a local one; 'auto' or ray://host:port, an existing one")
    group.add_argument("--ray-workers", type=int, help="--ray: actors (default: one per GPU, or one per node without GPUs)")
    group.add_argument("--reductions", default=",".join(CaptureOptions().reductions),
                       help=f"per-sample summaries to store, comma-separated, from {','.join(REDUCTIONS)}")
    group.add_argument("--shard-size", type=int, help="samples per shard, the unit of resume and of parallel work "
                       "(default: n/16, between 32 and 512; an existing store keeps its own)")
    group.add_argument("--verify", action="store_true", help="check every shard's sha256 before reusing a store "
                       "(default: headers and sizes only); damaged shards are recaptured")
    group.add_argument("--sketch", type=int, metavar="K",
                       help=f"compact pool: store K random projections per layer instead of every neuron "
                            f"(recommended {RECOMMENDED_K} with --reductions mean,last-first; overlap and nait-pca "
                            f"only, not jaccard; targets stay exact; see docs/methods.md)")
    group.add_argument("--sketch-seed", type=int, default=0, help="seed of the --sketch projection")
    group.add_argument("--exact-sample", type=int, default=2000,
                       help="with --sketch: also keep exact values for this many seeded pool records (neuron views)")


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
    if args.shard_size is not None and args.shard_size < 1:
        raise ValueError(f"--shard-size must be at least 1, not {args.shard_size}")
    sketch = Sketch(args.sketch, args.sketch_seed) if args.sketch else None
    if args.exact_sample < 0:
        raise ValueError(f"--exact-sample must be 0 or more, not {args.exact_sample}")
    return CaptureOptions(reductions=tuple(r.strip() for r in args.reductions.split(",") if r.strip()),
                          max_length=args.max_length, batch_tokens=args.batch_tokens, worker=(index, count),
                          shard_size=args.shard_size, verify=args.verify,
                          sketch=sketch, exact_sample=args.exact_sample if sketch else 0, ray=_ray_options(args))


def _warn_before_capture(args, model, dataset) -> None:
    """The exact-size warning, only when this pool is not captured yet (finding it loads no model)."""
    if not find_store(model, dataset, args.store_dir, _capture_options(args)):
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
        print(f"nait: warning: an exact store of {n_samples:,} samples needs about {need / 1e9:,.1f} GB "
              f"({free / 1e9:,.1f} GB free at {root}); --sketch {RECOMMENDED_K} --reductions mean,last-first would "
              f"need {compact / 1e9:,.2f} GB (overlap and nait-pca; see docs/methods.md)", file=sys.stderr)


def _score_options(args) -> ScoreOptions:
    return ScoreOptions(method=args.method, centre=not args.no_centre, fire_threshold=args.fire_threshold,
                        reduction=args.reduction, layer_norm=args.layer_norm)


def _data(args, spec, target=False):
    dataset = load_data(spec, fmt=args.format, text_field=args.text_field, skip_invalid=args.skip_invalid,
                        limit=args.target_size if target else None, seed=args.seed)
    if not target and getattr(args, "top", None) and args.top > len(dataset):  # said before any slow work
        print(f"nait: warning: --top {args.top} is more than the {len(dataset):,} candidates: "
              "every scored record is selected", file=sys.stderr)
    return dataset


def _report(report, label):
    store = report.store
    print(f"{label}: {store.n_samples:,} samples, {'reused' if report.reused else 'captured'} store {store.location}"
          + (f" ({report.tokens_per_second:,.0f} tok/s)" if not report.reused else ""), file=sys.stderr)
    if report.truncated:
        print(f"  {report.truncated} samples truncated to --max-length", file=sys.stderr)
    if report.skipped:
        print(f"  {len(report.skipped)} invalid records skipped:", file=sys.stderr)
        for line in report.skipped[:20]:
            print(f"    {line}", file=sys.stderr)
        if len(report.skipped) > 20:
            print(f"    … and {len(report.skipped) - 20} more", file=sys.stderr)


# ---------------------------------------------------------------- option checks

def _at_least(args, option: str, low: int, why: str = "") -> None:
    value = getattr(args, option.lstrip("-").replace("-", "_"), None)
    if value is not None and value < low:
        raise ValueError(f"{option} must be at least {low}{why}, not {value}")


def check_args(args) -> None:
    """Every cheap check of the options and paths, before any data is read or a model loaded."""
    ratio = getattr(args, "ratio", None)
    if ratio is not None and not 0 < ratio <= 1:
        raise ValueError(f"--ratio must be in (0, 1], not {ratio}")
    _at_least(args, "--top", 1)
    _at_least(args, "--target-size", 2, " (a capability feature needs 2 target samples)")
    _at_least(args, "--max-length", 1)
    _at_least(args, "--batch-tokens", 1)
    _at_least(args, "--candidates-limit", 1)
    _at_least(args, "--feature-size", 2, " (a capability feature needs 2 target samples)")
    _at_least(args, "--heldout-size", 1)
    if hasattr(args, "reductions"):
        _capture_options(args)  # --worker and --reductions
        unknown = {r.strip() for r in args.reductions.split(",") if r.strip()} - set(REDUCTIONS)
        if unknown:
            raise ValueError(f"--reductions: unknown {sorted(unknown)}; choose from {', '.join(REDUCTIONS)}")
    if hasattr(args, "fire_threshold"):
        parse_threshold(args.fire_threshold)
    inputs = {option: [str(v) for v in (values if isinstance(values, list) else [values])]
              for option in ("candidates", "target", "data", "feature", "subset")
              if (values := getattr(args, option, None))}
    inputs = {f"--{option}": values for option, values in inputs.items()}
    if args.command == "eval":  # --out is a results folder, resumed when it exists
        check_output_paths({}, inputs, folders={"--out": args.out})
        return
    outputs = {"--out": getattr(args, "out", None), "--scores": getattr(args, "scores", None)}
    check_output_paths(outputs, inputs, force=getattr(args, "force", False))


def _export(args, records, selection) -> None:
    """Export, then say what the user must know: records never selected for lack of a score, values
    JSON could not hold."""
    notes = export(records, selection, args.out, args.scores)
    if selection.unscored:
        print(f"nait: warning: {selection.unscored:,} records have no score (NaN, e.g. a response truncated "
              "away) and were not selected", file=sys.stderr)
    if notes:
        print(f"nait: warning: {len(notes)} exported values changed because JSON cannot hold them:", file=sys.stderr)
        for note in notes[:20]:
            print(f"    {note}", file=sys.stderr)
        if len(notes) > 20:
            print(f"    … and {len(notes) - 20} more", file=sys.stderr)


# ---------------------------------------------------------------- commands

def _cut(args) -> Cut:
    return Cut(ratio=args.ratio, top=args.top, min_score=args.min_score)


def select_baseline(args):
    """ifd, length or random: one score per candidate, no target and no store."""
    candidates = _data(args, args.candidates)
    if candidates.skipped:  # no capture report here: list what was skipped ourselves
        print(f"  {len(candidates.skipped)} invalid records skipped:", file=sys.stderr)
        for line in candidates.skipped[:20]:
            print(f"    {line}", file=sys.stderr)
    model = None if args.method == "random" else model_from_args(args)
    score = baseline_scores(args.method, model, candidates, seed=args.seed, max_length=args.max_length,
                            progress=_tqdm_progress())
    selection = select({args.method: score}, _cut(args))
    _export(args, candidates.records, selection)
    print(f"selected {selection.selected.sum():,} of {len(candidates):,} records ({args.method}) -> {args.out}", file=sys.stderr)


def cmd_select(args):
    if args.method in BASELINES:
        return select_baseline(args)
    if not args.target:
        raise ValueError(f"--target is required for --method {args.method}")
    candidates = _data(args, args.candidates)
    targets = [_data(args, t, target=True) for t in args.target]
    model = model_from_args(args)
    _warn_before_capture(args, model, candidates)
    cut = _cut(args)
    result = run_select(model, candidates, targets, _score_options(args), cut, args.merge, args.store_dir,
                        _capture_options(args), _tqdm_progress())
    for report, label in zip(result.reports, ["candidates"] + [f"target {t.name}" for t in targets]):
        _report(report, label)
    _export(args, candidates.records, result.selection)
    print(f"selected {result.selection.selected.sum():,} of {len(candidates):,} records "
          f"({_score_options(args).describe()}, merge {args.merge}) -> {args.out}", file=sys.stderr)


def cmd_capture(args):
    dataset = _data(args, args.data)
    model = model_from_args(args)
    _warn_before_capture(args, model, dataset)
    report = capture(model, dataset, args.store_dir, _capture_options(args), _tqdm_progress())
    _report(report, dataset.name)
    missing = report.store.missing_ranges()
    if missing:
        print(f"worker {args.worker} done; {len(missing)} shards left for the other workers", file=sys.stderr)
    print(report.store.location)


def cmd_feature(args):
    dataset = _data(args, args.target, target=True)
    model = model_from_args(args)
    # Targets are always captured exact (features keep exact profiles); --sketch applies to pools.
    options = target_capture_options(_capture_options(args))
    report = capture(model, dataset, args.store_dir, options, _tqdm_progress())
    _report(report, f"target {dataset.name}")
    if args.out:
        out = build_feature(report.store, args.name or dataset.name).save(Path(args.out))
    else:  # the store's own feature: a checksummed cache listed in the target store's caches.json
        feature_for(report.store, args.store_dir, args.name or dataset.name)
        out = feature_path(report.store, args.store_dir)
    print(out)


def cmd_score(args):
    if args.method in BASELINES:
        raise ValueError(f"--method {args.method} needs no feature: use nait select --method {args.method}")
    candidates = _data(args, args.candidates)
    features = [Feature.load(p) for p in args.feature]
    model = model_from_args(args)
    _warn_before_capture(args, model, candidates)
    report = capture(model, candidates, args.store_dir, _capture_options(args), _tqdm_progress())
    _report(report, "candidates")
    scores = score_store(report.store, features, _score_options(args))
    per_target = {s.feature: s.score for s in scores}
    given = (args.ratio, args.top, args.min_score)
    cut = _cut(args) if any(v is not None for v in given) else Cut(ratio=0.1)
    selection = select(per_target, cut, args.merge)
    _export(args, candidates.records, selection)
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


def cmd_verify(args):
    """Check every shard's and derived cache's sha256; with --repair remove what is damaged."""
    paths = list(args.stores) or [s["path"] for s in list_stores(Path(args.store_dir))]
    if not paths:
        print(f"no stores in {args.store_dir}", file=sys.stderr)
    bad = 0
    results = []
    for path in paths:
        store = Store.existing(path)
        if store is None:
            result = {"path": str(path), "error": "manifest missing or unreadable; delete the folder to recapture"}
        else:
            result = store.verify(repair=args.repair)
        results.append(result)
        damaged = len(result.get("damaged_shards", [])) + len(result.get("damaged_caches", []))
        bad += damaged + ("error" in result)
        if args.json:
            continue
        if "error" in result:
            print(f"{path}: {result['error']}")
            continue
        missing = f", {len(result['missing'])} missing (resume with the capture command)" if result["missing"] else ""
        print(f"{path}: {result['shards']} shards{missing}, " + ("all intact" if not damaged else f"{damaged} damaged"))
        for item in result["damaged_shards"] + result["damaged_caches"]:
            print(f"  {item['problem']}" + ("  -> removed" if args.repair else ""))
    if args.json:
        print(json.dumps(results, indent=2))
    if bad and args.repair:
        print(f"removed {bad} damaged item(s): run the same capture command again to recapture the shards "
              f"(derived caches are recomputed when next used)", file=sys.stderr)
    elif bad:
        raise StoreError(f"{bad} damaged item(s); `nait verify --repair` removes them so that the same capture "
                         f"command recaptures just those shards")


FORCE_HELP = ("replace --out/--scores if they exist (without it an existing output is an error); "
              "an output is never one of the input files")


def app_script() -> Path:
    """The app's entry file: the checkout's app.py when nait_core runs from a checkout, else the installed copy
    (the wheel ships app.py and pages/ as the `nait_app` folder)."""
    checkout = Path(__file__).resolve().parents[1] / "app.py"
    if checkout.is_file() and (checkout.parent / "pages").is_dir():
        return checkout
    from importlib.util import find_spec

    spec = find_spec("nait_app")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / "app.py").is_file():
            return Path(folder) / "app.py"
    raise ValueError("the app's files (app.py, pages/) are not installed; reinstall nait-studio")


def cmd_app(args):
    """`streamlit run app.py [streamlit options]` with this Python, in the current folder (stores and runs/
    are found relative to it, as with `make app`)."""
    import subprocess
    from importlib.util import find_spec

    if find_spec("streamlit") is None:
        raise ValueError("nait app needs the app's dependencies: pip install 'nait-studio[app]'")
    command = [sys.executable, "-m", "streamlit", "run", str(app_script()), *args.streamlit_args]
    if os.name == "posix":  # become streamlit: signals (Ctrl-C, a service manager's stop) reach it directly
        sys.stdout.flush(), sys.stderr.flush()
        os.execv(sys.executable, command)
    return subprocess.call(command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nait", description="Neuron-aware instruction-tuning data selection.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("select", help="capture, score and export in one go")
    p.add_argument("--candidates", required=True, help=f"candidate pool: {DATA_SPECS}")
    p.add_argument("--target", action="append", help="target set, the same kinds; repeat for several (not for ifd/length/random)")
    p.add_argument("--out", required=True, type=Path, help=OUT_HELP)
    p.add_argument("--scores", type=Path, help="JSONL with index, score, rank, selected and per-target scores")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    add_model_args(p), _add_data_args(p), _add_capture_args(p), _add_score_args(p), _add_cut_args(p)
    p.set_defaults(func=cmd_select)

    p = sub.add_parser("capture", help="capture a data set's neuron summaries into the store")
    p.add_argument("--data", required=True, help=DATA_SPECS)
    p.add_argument("--worker", default="0/1",
                   help="I/N: capture only every N-th missing shard from the I-th (a by-hand split; --ray does it for you)")
    add_model_args(p), _add_data_args(p), _add_capture_args(p)
    p.set_defaults(func=cmd_capture)

    p = sub.add_parser("feature", help="build a capability feature file from a target set")
    p.add_argument("--target", required=True, help=DATA_SPECS)
    p.add_argument("--name", help="feature name (default: the target's)")
    p.add_argument("--out", type=Path, help="feature file (.safetensors); default under <store-dir>/features/")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    add_model_args(p), _add_data_args(p), _add_capture_args(p)
    p.set_defaults(func=cmd_feature)

    p = sub.add_parser("score", help="score a pool with one or more feature files")
    p.add_argument("--candidates", required=True)
    p.add_argument("--feature", required=True, action="append", help="feature file; repeat for several")
    p.add_argument("--scores", required=True, type=Path)
    p.add_argument("--out", type=Path, help="also write the selected records")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    add_model_args(p), _add_data_args(p), _add_capture_args(p), _add_score_args(p), _add_cut_args(p, required=False)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("info", help="list stores and features with their sizes")
    p.add_argument("--store-dir", default=str(DEFAULT_STORE_ROOT))
    p.add_argument("--features", help="another folder of feature files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("verify", help="check stores' shards and derived caches against their sha256 checksums")
    p.add_argument("stores", nargs="*", help="store folders or URLs (default: every store in --store-dir)")
    p.add_argument("--store-dir", default=str(DEFAULT_STORE_ROOT))
    p.add_argument("--repair", action="store_true", help="remove damaged shards and caches (the capture command then recaptures them)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    add_eval_parser(sub)

    p = sub.add_parser("app", help="open the Streamlit app (other options go to `streamlit run`)",
                       description="Open NAIT Studio in the browser: `streamlit run app.py` on the installed app. "
                                   "Options not listed here go to `streamlit run` (e.g. --server.port 8502, "
                                   "--server.headless true). The app reads and writes stores under ./cached_features "
                                   "(NAIT_STORE_DIR changes that) and nait eval results under ./runs (NAIT_EVAL_DIR).",
                       epilog="example: nait app --server.port 8502 --server.headless true")
    p.set_defaults(func=cmd_app)
    add_explain_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "app":
        args.streamlit_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "app":
            return cmd_app(args)
        check_args(args)
        args.func(args)
    except (DataError, ModelError, StoreError, FeatureError, ValueError) as error:  # SketchError is a ValueError
        print(f"nait: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nait: interrupted; finished shards and arms are kept, run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
