"""Retrieval on the rare-skill pool: how well each score finds the planted GSM8K problems, from the same
64-problem feature part `nait eval --target gsm8k --feature-size 64 --heldout-size 100 --split-seed 0` builds,
on the stores such a run captures (reused, or captured here with the same options).

AUROC of the planted records against the rest, and how many of them land in the top 3 % (what the eval's
arm trains on). No training: a minute or two once the pool is captured.

    .venv/bin/python bench/peers_retrieval.py runs/rare-pool-1000/pool.jsonl    # captures the pool if needed
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nait_core.baselines import baseline_scores  # noqa: E402
from nait_core.cuts import Cut, auroc, ratio_count  # noqa: E402
from nait_core.eval.settings import EvalSettings, load_eval_data  # noqa: E402
from nait_core.models import LazyModel  # noqa: E402
from nait_core.pipeline import run_select  # noqa: E402
from nait_core.scoring import ScoreOptions  # noqa: E402

VARIANTS = [
    ("overlap (default: centred cosine of token-mean profiles, all layers)", ScoreOptions("overlap")),
    ("overlap, layers 0-9", ScoreOptions("overlap", layers=tuple(range(0, 10)))),
    ("overlap, layers 10-19", ScoreOptions("overlap", layers=tuple(range(10, 20)))),
    ("overlap, layers 20-29", ScoreOptions("overlap", layers=tuple(range(20, 30)))),
    ("overlap, last layer (29)", ScoreOptions("overlap", layers=(29,))),
    ("overlap-balanced (each layer's cosine, averaged)", ScoreOptions("overlap-balanced")),
    ("overlap-z (each neuron standardised by the pool)", ScoreOptions("overlap-z")),
    ("overlap-max (max over target records)", ScoreOptions("overlap-max")),
    ("jaccard (T = 0)", ScoreOptions("jaccard")),
    ("nait-pca (as published)", ScoreOptions("nait-pca")),
    ("rds (RDS+: final hidden state, max over target records)", ScoreOptions("rds")),
    ("rds, mean over target records", ScoreOptions("rds", rds_pool="mean")),
    ("embed (all-MiniLM-L6-v2, cosine to the target mean)", ScoreOptions("embed")),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool", help="the rare-skill pool (bench/make_rare_pool.py): records marked `planted`")
    parser.add_argument("--ratio", type=float, default=0.03)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    settings = EvalSettings(candidates=args.pool, ratio=args.ratio, device=args.device, dtype="float32")
    data = load_eval_data(settings)
    planted = np.array([r.raw.get("planted") is True for r in data.pool.records])
    count = ratio_count(settings.ratio, len(data.pool))
    model = LazyModel(settings.model, device=settings.device, dtype=settings.dtype)
    print(f"pool {len(data.pool)} records, {planted.sum()} planted; top {count} ({settings.ratio:.0%})\n")
    print("| score | AUROC | planted in the top 3 % | seconds |\n|---|---|---|---|")
    rows = [(label, lambda o=o: _score(model, data, settings, o)) for label, o in VARIANTS]
    rows += [(f"{b} (no target)", lambda b=b: baseline_scores(b, model, data.pool, seed=0)) for b in ("length",)]
    rows += [("random (seed 0)", lambda: baseline_scores("random", None, data.pool, seed=0))]
    for label, score in rows:
        start = time.perf_counter()
        values = np.asarray(score(), dtype=np.float64)
        top = Cut(top=count).mask(values)
        print(
            f"| {label} | {auroc(values, planted):.3f} | {int((top & planted).sum())} / {planted.sum()} "
            f"| {time.perf_counter() - start:.0f} |",
            flush=True,
        )


def _score(model, data, settings, options: ScoreOptions) -> np.ndarray:
    result = run_select(
        model, data.pool, data.features, options, Cut(ratio=settings.ratio), settings.merge, settings.store_dir
    )
    return result.selection.score


if __name__ == "__main__":
    main()
