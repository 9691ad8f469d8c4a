"""`nait select` (capture, score and export in one go, or a baseline needing no target) and `nait score`
(a pool scored with feature files)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import methods
from ..baselines import BASELINES, baseline_scores
from ..capture import capture
from ..features import Feature
from ..pipeline import run_select
from ..scoring import ScoreOptions, score_store
from ..selection import STDOUT, Cut, equal_scores, equal_scores_message, export, export_warnings, select
from ..sketch import scoring_note
from ..spec import DEFAULT_CUT
from .capture import check_before_capture
from .options import (
    DATA_SPECS,
    FORCE_HELP,
    OUT_HELP,
    add_capture_args,
    add_cut_args,
    add_data_args,
    add_model_args,
    add_score_args,
    capture_options,
    cut_of,
    model_from_args,
    print_report,
    read_data,
    score_options,
    spec_from_args,
    tqdm_progress,
)


def _export(args, records, selection, cut: Cut) -> None:
    """Export, then say what the user must know (scores that cannot rank, an empty selection, records left
    unscored, values JSON could not hold). Scores all equal are refused unless --allow-equal-scores."""
    if (equal := equal_scores(selection)) and not args.allow_equal_scores:
        raise ValueError(
            f"{equal_scores_message(equal)}. Nothing was written; pass --allow-equal-scores to export them "
            "anyway (in input order)"
        )
    notes = export(records, selection, args.out, args.scores, stdout=True)
    for headline, details in export_warnings(selection, notes, cut=cut, merge=getattr(args, "merge", None)):
        print(f"nait: warning: {headline}", file=sys.stderr)
        for line in details:
            print(f"    {line}", file=sys.stderr)


def _where(path) -> str:
    return "standard output" if str(path) == STDOUT else str(path)


def select_baseline(args):
    """ifd, length or random: one score per candidate, no target and no store."""
    candidates = read_data(args, args.candidates)
    if candidates.skipped:  # no capture report here: list what was skipped ourselves
        print(f"  {len(candidates.skipped)} invalid records skipped:", file=sys.stderr)
        for line in candidates.skipped[:20]:
            print(f"    {line}", file=sys.stderr)
    model = None if args.method == "random" else model_from_args(args)
    score = baseline_scores(
        args.method, model, candidates, seed=args.seed, max_length=args.max_length, progress=tqdm_progress()
    )
    cut = cut_of(args)
    selection = select({args.method: score}, cut)
    _export(args, candidates.records, selection, cut)
    print(
        f"selected {selection.selected.sum():,} of {len(candidates):,} records ({args.method}) -> {_where(args.out)}",
        file=sys.stderr,
    )


def _refuse_target_equal_to_pool(args, options: ScoreOptions, candidates, targets) -> None:
    """Centred overlap of a target holding the pool's very records scores every candidate alike (the
    feature is the pool mean less itself): said before the capture rather than after it."""
    if options.method != "overlap" or not options.centre or args.allow_equal_scores:
        return

    def records(dataset):
        return sorted(json.dumps(r.conversation, sort_keys=True) for r in dataset.records)

    pool = None
    for target in targets:
        if len(target) == len(candidates) and records(target) == (pool := pool or records(candidates)):
            raise ValueError(
                f"the target '{target.name}' holds the same records as the pool: overlap centres on the pool "
                "mean, so every candidate would score 0 and the selection would be the first records in input "
                "order. Give a target that is not the pool, or pass --allow-equal-scores to export anyway"
            )


def cmd_select(args):
    if args.method in BASELINES:  # no spec: a spec's ScoreOptions names a method that reads a target
        return select_baseline(args)
    spec, execution = spec_from_args(args)  # the one reading of what decides the selection
    options = spec.scoring
    if not spec.data.targets:
        raise ValueError(f"--target is required for --method {options.method}")
    candidates = read_data(args, spec.data.candidates)
    targets = [read_data(args, t, target=True) for t in spec.data.targets]
    _refuse_target_equal_to_pool(args, options, candidates, targets)
    model = model_from_args(args)
    if methods.get(options.method).reads != "text":  # embed captures nothing
        check_before_capture(args, model, candidates, targets)  # may narrow the default --reductions
    result = run_select(
        model,
        candidates,
        targets,
        options,
        spec.cut,
        spec.merge,
        execution.store_dir,
        capture_options(args),  # read after the check; also holds what no spec does (shards, workers, Ray)
        tqdm_progress(),
    )
    for report, label in zip(result.reports, ["candidates"] + [f"target {t.name}" for t in targets]):
        print_report(report, label)
    if result.pool and (note := scoring_note(result.pool)):
        print(note, file=sys.stderr)
    _export(args, candidates.records, result.selection, spec.cut)
    print(
        f"selected {result.selection.selected.sum():,} of {len(candidates):,} records "
        f"({options.describe()}, merge {spec.merge}) -> {_where(args.out)}",
        file=sys.stderr,
    )


def cmd_score(args):
    if args.method in BASELINES:
        raise ValueError(f"--method {args.method} needs no feature: use nait select --method {args.method}")
    if methods.get(args.method).reads != "neurons":  # a feature file holds neuron summaries only
        raise ValueError(
            f"--method {args.method} compares the pool with the target's records, which a feature file does not "
            f"hold: use nait select --method {args.method} --target FILE"
        )
    candidates = read_data(args, args.candidates)
    features = [Feature.load(p) for p in args.feature]
    model = model_from_args(args)
    check_before_capture(args, model, candidates)
    report = capture(model, candidates, args.store_dir, capture_options(args), tqdm_progress())
    print_report(report, "candidates")
    if note := scoring_note(report.store):
        print(note, file=sys.stderr)
    scores = score_store(report.store, features, score_options(args))
    per_target = {s.feature: s.score for s in scores}
    given = (args.ratio, args.top, args.min_score)
    cut = cut_of(args) if any(v is not None for v in given) else DEFAULT_CUT
    selection = select(per_target, cut, args.merge)
    _export(args, candidates.records, selection, cut)
    print(
        f"scored {len(candidates):,} records with {len(features)} feature(s) -> {_where(args.scores)}",
        file=sys.stderr,
    )


def add_select_parser(sub) -> None:
    p = sub.add_parser("select", help="capture, score and export in one go")
    p.add_argument("--candidates", required=True, help=f"candidate pool: {DATA_SPECS}")
    p.add_argument(
        "--target", action="append", help="target set, the same kinds; repeat for several (not for ifd/length/random)"
    )
    p.add_argument("--out", required=True, type=Path, help=OUT_HELP)
    p.add_argument(
        "--scores",
        type=Path,
        help="JSONL with index, score, rank, selected and per-target scores ('-': standard output)",
    )
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    add_model_args(p), add_data_args(p), add_capture_args(p), add_score_args(p), add_cut_args(p)
    p.set_defaults(func=cmd_select)


def add_score_parser(sub) -> None:
    p = sub.add_parser("score", help="score a pool with one or more feature files")
    p.add_argument("--candidates", required=True)
    p.add_argument("--feature", required=True, action="append", help="feature file; repeat for several")
    p.add_argument("--scores", required=True, type=Path, help="JSONL of the scores; '-' for standard output")
    p.add_argument("--out", type=Path, help="also write the selected records ('-': to standard output)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    add_model_args(p), add_data_args(p), add_capture_args(p), add_score_args(p), add_cut_args(p, required=False)
    p.set_defaults(func=cmd_score)
