"""The map beyond its dots (issue 25): what placing and drawing every record of a large pool costs.

    .venv/bin/python bench/bench_map_scale.py                      # both parts (about 10 minutes on 2 cores)
    .venv/bin/python bench/bench_map_scale.py --pool 60000 --fit 6000 --skip-page

1. Placing. A synthetic store of --pool samples × 8 layers × 256 neurons (float16, `mean`, a rank-8 mix of
   patterns plus noise, as `nait_testing.stores.synthetic_store` writes) and three 64-sample targets (shifted);
   `activation_map.map_coordinates` fits PCA and UMAP on a seeded --fit of the pool (and the targets), then projects
   the rest (one more pass) and places them with `UMAP.transform`. Reports each phase from its progress
   messages, and the transform's rate (points/s): the figure to scale to millions.
2. The page at 1,000,000 placed points (no store: seeded clustered coordinates): what each rerun of the Overlap
   map does beyond the dots: the density cells (`charts.density_cells`), the figure with 52,000 dots and the
   cells as JSON, an area (a 7- and a 200-corner lasso, a box) applied to every point (`Area.holds`), and the
   export of 100,000 chosen records (`map_page.chosen_lines`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def placing(pool_n: int, fit: int, root: Path) -> None:
    from nait_core import activation_map
    from nait_testing.stores import synthetic_store

    started = time.perf_counter()
    pool = synthetic_store(root / "pool", n=pool_n, layers=8, neurons=256, shard_size=4096, seed=0, rank=8)[0]
    targets = [
        synthetic_store(root / f"t{g}", n=64, layers=8, neurons=256, shard_size=64, seed=10 + g, rank=8, shift=0.5)[0]
        for g in range(3)
    ]
    print(f"stores written: {time.perf_counter() - started:.1f} s", flush=True)
    phases, last = {}, [time.perf_counter(), None]

    def progress(fraction, text):
        phase = text.split(":")[0].split(" of ")[0]
        now = time.perf_counter()
        if last[1] is not None:
            phases[last[1]] = phases.get(last[1], 0.0) + now - last[0]
        last[:] = [now, phase]

    started = time.perf_counter()
    table = activation_map.map_coordinates(pool, targets, max_points=fit, progress=progress)
    total = time.perf_counter() - started
    rest = pool_n - fit
    print(f"map of {pool_n:,} pool + 192 target samples, UMAP fitted on {fit:,} + 192: {total:.1f} s")
    for phase, seconds in phases.items():
        print(f"  {phase}: {seconds:.1f} s")
    placing_s = phases.get("placing them on the map", float("nan"))
    print(f"  UMAP.transform: {rest / placing_s:,.0f} points/s ({rest:,} points)")
    assert len(table) == pool_n + 192 and np.isfinite(table[["x", "y"]].to_numpy()).all()


def page(n: int = 1_000_000, dots: int = 52_000) -> None:
    import plotly.io as pio

    from nait_core.data import Record
    from studio import charts
    from studio.map_page import Area, chosen_lines

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6, size=(12, 2))
    xy = centres[rng.integers(0, 12, n)] + rng.normal(size=(n, 2))
    x, y = xy[:, 0], xy[:, 1]

    def timed(label, call, repeats=3):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            out = call()
            times.append(time.perf_counter() - started)
        print(f"{label}: {min(times):.3f} s (best of {repeats})")
        return out

    timed("density cells of 1,000,000 points", lambda: charts.density_cells(x, y))
    import pandas as pd

    at = np.sort(rng.choice(n, dots, replace=False))
    candidates = pd.DataFrame({"x": x[at], "y": y[at], "row": at, "score": rng.random(dots), "source": "s",
                               "selection": "not selected"})  # fmt: skip
    targets = pd.DataFrame({"x": [0.0], "y": [0.0], "group": ["t"], "preview": ["t"]})
    fig = timed(
        "figure: 52,000 dots and the density cells",
        lambda: charts.overlap_map(candidates, targets, "score", "map", ["row"], density=(x, y)),
    )
    text = timed("  to_json", lambda: pio.to_json(fig, validate=False))
    print(f"  {len(text) / 1e6:.2f} MB sent")
    angles = lambda k: np.linspace(0, 2 * np.pi, k, endpoint=False)  # noqa: E731
    for corners in (7, 200):
        lasso = tuple(zip(3 + 4 * np.cos(angles(corners)), 2 + 3 * np.sin(angles(corners))))
        area = Area(lassos=(tuple((float(a), float(b)) for a, b in lasso),))
        held = timed(f"a {corners}-corner lasso over 1,000,000 points", lambda: area.holds(x, y))
        print(f"  {held.sum():,} inside; its URL text {len(area.text()):,} characters")
    timed("a box over 1,000,000 points", lambda: Area(boxes=((0.0, 5.0, 0.0, 5.0),)).holds(x, y))
    records = [
        Record({"instruction": f"task {i}", "output": "answer " * 40}, f"p:{i + 1}", "s", []) for i in range(100_000)
    ]
    data, _ = timed(
        "export of 100,000 chosen records (JSONL bytes)", lambda: chosen_lines(records, list(range(100_000))), 1
    )
    print(f"  {len(data) / 1e6:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=int, default=120_000)
    parser.add_argument("--fit", type=int, default=12_000)
    parser.add_argument("--skip-placing", action="store_true")
    parser.add_argument("--skip-page", action="store_true")
    args = parser.parse_args()
    if not args.skip_page:
        page()
    if not args.skip_placing:
        with tempfile.TemporaryDirectory() as root:
            placing(args.pool, args.fit, Path(root))


if __name__ == "__main__":
    main()
