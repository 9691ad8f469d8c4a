"""Paired comparisons between arms of different `nait eval` runs measured on the same held-out problems
(e.g. the rare-skill pool and the same pool without its planted problems, docs/results.md).

Each run is given as LABEL=FOLDER; its arm groups are renamed `LABEL:group`. The runs must have measured
the very same held-out records (checked by their `targets` lists and per-problem token counts), so each
problem's loss pairs up across runs exactly as it does within one run (`nait_core.eval.paired_comparison`).

    .venv/bin/python bench/compare_runs.py planted=runs/rare-gsm8k-gpu general=runs/rare-gsm8k-general-cpu \\
        --reference general:random --reference planted:base
    .venv/bin/python bench/compare_runs.py gpu=runs/rare-gsm8k-gpu cpu=runs/rare-gsm8k-cpu-check --by-run \
        --reference gpu:random#0                      # the same arm trained on two devices
    .venv/bin/python bench/compare_runs.py s0=runs/peers-cpu-general-s0 s1=runs/peers-cpu-general-s1 --pool-runs \
        --reference random                            # each arm over both training seeds (its runs' mean)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nait_core.eval import comparison_table, paired_comparison, read_results  # noqa: E402


def merged(runs: dict[str, dict], target: str, by_run: bool = False, pool_runs: bool = False) -> dict:
    """One results record holding every run's arms as `label:arm`, grouped as `label:group` (seeds
    pooled), or each run on its own with `by_run` (`label:random#0`), or with `pool_runs` as `group` over
    every run (the same arm trained with other seeds: each problem's mean over all of them)."""
    heldout = {label: r.get("targets", {}).get(target, {}).get("heldout") for label, r in runs.items()}
    first = next(iter(heldout.values()))
    if first is None or any(h != first for h in heldout.values()):
        raise SystemExit(f"the runs did not measure the same held-out {target} records: {sorted(heldout)}")
    arms = {
        f"{label}:{name}": {
            **arm,
            "group": arm["group"] if pool_runs else f"{label}:{name if by_run else arm['group']}",
        }
        for label, results in runs.items()
        for name, arm in results["arms"].items()
    }
    return {"settings": {"targets": [target]}, "arms": arms}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="LABEL=FOLDER of a nait eval run")
    parser.add_argument("--reference", action="append", required=True, help="LABEL:group to compare against")
    parser.add_argument("--target", default="gsm8k")
    parser.add_argument("--by-run", action="store_true", help="compare single runs (random#0), seeds not pooled")
    parser.add_argument("--pool-runs", action="store_true", help="pool each arm group over the runs given")
    args = parser.parse_args(argv)
    runs = {}
    for spec in args.runs:
        label, _, folder = spec.partition("=")
        if not folder:
            parser.error(f"give each run as LABEL=FOLDER, not {spec!r}")
        runs[label] = read_results(folder)
    if args.by_run and args.pool_runs:
        parser.error("--by-run and --pool-runs exclude each other")
    results = merged(runs, args.target, args.by_run, args.pool_runs)
    for reference in args.reference:
        rows = paired_comparison(results, args.target, reference)
        if not rows:
            raise SystemExit(f"no arm group {reference!r} with per-problem losses")
        print(f"\nAgainst {reference} ({args.target} held-out loss; negative: lower loss than it):\n")
        print(comparison_table(rows))


if __name__ == "__main__":
    main()
