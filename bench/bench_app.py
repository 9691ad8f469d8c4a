"""App responsiveness: typical interactions on the demo, every page on a 52,000-sample pool, and every page on a
1,000,000-sample compact pool.

    .venv/bin/python bench/bench_app.py                          # all three parts
    .venv/bin/python bench/bench_app.py --skip-big --skip-huge   # the demo only
    .venv/bin/python bench/bench_app.py --skip-demo --skip-big --huge-dir /work/big   # the 1M compact pool only
    .venv/bin/python bench/bench_app.py --profile-huge DIR       # cProfile of one warm rerun of each page at 1M
    NAIT_DEMO_SIZE=120 NAIT_TARGET_SIZE=16 NAIT_STORE_DIR=/tmp/s .venv/bin/python bench/bench_app.py --skip-big

1. Demo. The app as `streamlit run app.py` opens it (the bundled model, the `demo` pool, gsm8k, humaneval
   and mmlu targets of 64 samples; the stores must be captured already), driven by AppTest: a first pass
   over the interactions below fills the caches (the "first" column), then `--repeats` more passes are
   timed (median and max). Each figure is one `AppTest.run()`: the whole script rerun the browser waits for.
2. Large pool. A synthetic store of 52,000 samples × 30 layers × 1,536 neurons (float16, `mean` only; seeded
   clustered noise, written once under --big-dir, 4.8 GB) with three synthetic 64-sample target stores.
   Each page is rendered by AppTest on that session: first (cold: scoring, thresholds, map, neuron reads)
   and then warm, plus a ratio change and a record change.
3. Compact pool. A synthetic compact store of 1,000,000 samples × 30 layers × K = 256 (`nait capture --sketch 256
   --reductions mean,last-first` layout: float16, `mean` and `last-first`, 30.7 GB, written once under
   --huge-dir), its 2,000-record exact sample (exact, 30 × 1,536) and three exact 64-sample targets, opened as
   the app opens a compact pool (`sketch.exact_sample_store` finds the sample). Each page first (cold) then warm,
   plus a ratio change, a method change (nait-pca scores the pool's `last-first`) and record changes (in and
   outside the exact sample).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's code and its test helpers (bench/ is already on the path)

from nait_testing.app import widget  # the same widget lookup as the app tests

BIG_N, BIG_TARGET_N, BIG_SHARD = 52_000, 64, 1024
LAYERS, NEURONS = 30, 1536

# (label, page, widget key or None for opening the page, two values used in alternate passes)
DEMO_STEPS = [
    ("open Data & model", "data", None, None),
    ("open Sample explorer", "samples", None, None),
    ("search the pool's text", "samples", "samples_query", ["python", ""]),
    ("filter: selected only", "samples", "samples_status", ["selected", "all"]),
    ("show another record", "samples", "samples_row", [5, 6]),
    ("heatmap: sample only", "samples", "samples_view", ["sample", "sample − target expected"]),
    ("per-token activations (live forward pass)", "samples", "samples_live", [True, False]),
    ("open Neuron explorer", "neurons", None, None),
    ("show any neuron", "neurons", "neurons_mode", ["any neuron", "top neurons of a feature"]),
    ("open Overlap map", "map", None, None),
    ("colour the map by source", "map", "map_color", ["source", "score"]),
    ("open Select & export", "select", None, None),
    ("change the ratio", "select", "select_ratio", [0.2, 0.1]),
    ("merge by intersection", "select", "select_merge", ["intersection", "union"]),
    ("method: jaccard", "select", "select_method", ["jaccard", "overlap"]),
    ("open Transfer", "transfer", None, None),
]


def timed_run(at) -> float:
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(at.exception[0].value)
    return seconds


def run_steps(at, steps, page_path, passes: int) -> dict[str, list[float]]:
    """Apply each step (open a page, or set a widget) and time the rerun; `passes` times over."""
    times: dict[str, list[float]] = {label: [] for label, *_ in steps}
    for p in range(passes):
        for label, page, key, values in steps:
            if key is None:
                at.switch_page(page_path(page))
            else:
                widget(at, key).set_value(values[p % 2])
            times[label].append(timed_run(at))
    return times


def report(title: str, times: dict[str, list[float]]) -> list[str]:
    lines = [f"### {title}", "", "| interaction | first (s) | median after (s) | max after (s) |", "|---|---|---|---|"]
    for label, t in times.items():
        later = t[1:] or t
        lines.append(f"| {label} | {t[0]:.2f} | {statistics.median(later):.2f} | {max(later):.2f} |")
    return lines


# ---------------------------------------------------------------- 1. the demo


def bench_demo(repeats: int) -> list[str]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=1800)
    first_load = timed_run(at)
    times = run_steps(at, DEMO_STEPS, lambda page: f"pages/{page}.py", 1 + repeats)
    studio = at.session_state["studio"]
    lines = report(f"Demo ({len(studio.pool):,} candidates; AppTest, {repeats} timed passes after a first pass)", times)
    from nait_core.capture import token_activations

    live = []
    for row in range(10, 10 + 2 * repeats + 1):  # records not viewed yet: one uncached forward pass each
        start = time.perf_counter()
        token_activations(studio.model, studio.pool.records[row], 20)
        live.append(time.perf_counter() - start)
    return lines + [
        "",
        f"Opening the app in a fresh process (model load, stores opened and checked, scoring): "
        f"{first_load:.1f} s. The per-token view of a record not viewed before runs one forward "
        f"pass: median {statistics.median(live):.2f} s, max {max(live):.2f} s over {len(live)} "
        f"records (later views of the record are cached).",
    ]


# ---------------------------------------------------------------- 2. a 52,000-sample pool


def _manifest(name: str, n: int) -> dict:
    return {
        "model": {"name": "smollm2-135m", "fingerprint": "synthetic-bench", "dtype": "float32"},
        "data": {"name": name, "hash": f"synthetic-{name}", "n_samples": n},
        "options": {"reductions": ["mean"], "max_length": 1024},
        "shape": {"layers": LAYERS, "neurons": NEURONS},
        "shard_size": BIG_SHARD,
    }


def synthetic_store(root: Path, name: str, n: int, centres: np.ndarray, seed: int):
    """A complete store of clustered float16 noise (written once; reopened after)."""
    from nait_core.store import Store

    store = Store.create(root / name, _manifest(name, n))
    rng = np.random.default_rng(seed)
    for start, end in store.missing_ranges():
        k = end - start
        cluster = rng.integers(len(centres), size=k)
        mean = centres[cluster] + rng.standard_normal((k, LAYERS, NEURONS), dtype=np.float32)
        store.write_shard(
            start,
            end,
            {
                "mean": mean.astype(np.float16),
                "tokens": np.full(k, 200, np.int32),
                "response_tokens": np.full(k, 100, np.int32),
                "truncated": np.zeros(k, bool),
            },
        )
    return Store.open(store.path, verify=False)


def synthetic_records(name: str, n: int, sources: list[str], seed: int):
    from nait_core.data import Dataset, Record

    rng = np.random.default_rng(seed)
    records = []
    for i, s in enumerate(rng.choice(sources, size=n)):
        raw = {"instruction": f"Synthetic {s} task number {i}.", "input": "", "output": f"Answer {i}."}
        records.append(
            Record(
                raw,
                f"{name}:{i + 1}",
                str(s),
                [{"role": "user", "content": raw["instruction"]}, {"role": "assistant", "content": raw["output"]}],
            )
        )
    return Dataset(name, records)


def big_studio():
    """The Studio of the synthetic session (cached: built once per process)."""
    import streamlit as st

    @st.cache_resource
    def build(root: str):
        from nait_core.capture import CaptureReport
        from nait_core.features import build_feature
        from studio.session import Config, Studio, _model

        root = Path(root)
        centres = np.random.default_rng(0).normal(0, 1.5, (3, LAYERS, NEURONS)).astype(np.float32)
        sources = ["math", "code", "knowledge"]
        pool = synthetic_store(root, f"synthetic-pool-{BIG_N}", BIG_N, centres, 1)
        targets, reports, features = [], [], []
        for g, source in enumerate(sources):
            store = synthetic_store(root, f"synthetic-target-{source}", BIG_TARGET_N, centres[g : g + 1], 10 + g)
            targets.append(synthetic_records(f"target-{source}", BIG_TARGET_N, [source], 10 + g))
            reports.append(CaptureReport(store, reused=True, truncated=0))
            features.append(build_feature(store, f"target-{source}", reductions=("mean",)))
        config = Config(pool=f"synthetic-{BIG_N}", targets=tuple(sources), target_size=BIG_TARGET_N, root=str(root))
        return Studio(
            config,
            _model(config.model),
            synthetic_records(f"synthetic-{BIG_N}", BIG_N, sources, 1),
            CaptureReport(pool, reused=True, truncated=0),
            targets,
            reports,
            features,
        )

    return build(os.environ["NAIT_BENCH_BIG"])


def render_page(studio) -> None:
    """Draw the page named in session state on `studio` (AppTest scripts below); with `bench_profile` set,
    under cProfile in this thread, its stats dumped to that file."""
    import streamlit as st

    from studio import data_page, map_page, neurons_page, samples_page, select_page, transfer_page
    from studio.session import show

    st.session_state["studio"] = studio
    pages = {
        "data": data_page,
        "samples": samples_page,
        "neurons": neurons_page,
        "map": map_page,
        "select": select_page,
        "transfer": transfer_page,
    }
    render = pages[st.session_state.get("bench_page", "data")].render
    profile = st.session_state.get("bench_profile")
    if profile:
        import cProfile

        with cProfile.Profile() as prof:
            show(render)
        prof.dump_stats(profile)
    else:
        show(render)


def big_app():
    """The AppTest script: the synthetic session, then the page named in session state."""
    import bench_app

    bench_app.render_page(bench_app.big_studio())


def bench_big(root: Path) -> list[str]:
    from streamlit.testing.v1 import AppTest

    os.environ["NAIT_BENCH_BIG"] = str(root)
    start = time.perf_counter()
    at = AppTest.from_function(big_app, default_timeout=3600)
    timed_run(at)
    built = time.perf_counter() - start
    times: dict[str, list[float]] = {}
    for page in ["data", "samples", "neurons", "map", "select", "transfer"]:
        at.session_state["bench_page"] = page
        times[f"open {page}"] = [timed_run(at), timed_run(at), timed_run(at)]
    at.session_state["bench_page"] = "select"
    timed_run(at)
    ratio = []
    for value in (0.2, 0.3, 0.1):
        widget(at, "select_ratio").set_value(value)
        ratio.append(timed_run(at))
    times["change the ratio (Select & export)"] = ratio
    at.session_state["bench_page"] = "samples"
    timed_run(at)
    rows = []
    for value in (100, 40_000, 7):
        widget(at, "samples_row").set_value(value)
        rows.append(timed_run(at))
    times["show another record (Sample explorer)"] = rows
    at.session_state["bench_page"] = "map"
    timed_run(at)
    chart = at.get("plotly_chart")[0].proto.spec  # what each rerun of the map sends (the browser draws it)
    drawn = next(c.value for c in [*at.caption, *at.info] if "candidates" in c.value and "drawn" in c.value)
    colours = []
    for value in ("source", "selection", "score"):
        widget(at, "map_color").set_value(value)
        colours.append(timed_run(at))
    times["colour the map (Overlap map)"] = colours
    lines = report(
        f"Synthetic pool of {BIG_N:,} samples (3 targets × {BIG_TARGET_N}; AppTest; first = cold, then 2 warm reruns)",
        times,
    )
    return lines + [
        "",
        f"Store written or reopened, model loaded, Data & model drawn: {built:.1f} s. The map: {drawn} "
        f"Its figure (JSON) is {len(chart) / 1e6:.2f} MB per rerun.",
    ]


# ---------------------------------------------------------------- 3. a 1,000,000-sample compact pool

HUGE_N, HUGE_K, HUGE_SHARD, HUGE_EXACT = 1_000_000, 256, 512, 2000
HUGE_REDUCTIONS = ("mean", "last-first")  # the recommended compact layout: both overlap and nait-pca score
HUGE_POOL = f"synthetic-compact-pool-{HUGE_N}"


def _huge_manifest(name: str, n: int, reductions, sketch=None, sample_of: str = "") -> dict:
    """The fields `capture.store_key` writes (options as `capture_identity` makes them)."""
    options = {"reductions": list(reductions), "max_length": 1024, "truncation": "head+end"}
    if sketch is not None:
        options |= {"sketch": sketch.to_json(), "exact_sample": HUGE_EXACT}
    if sample_of:
        options["exact_sample_of"] = sample_of
    return {
        "model": {"name": "smollm2-135m", "fingerprint": "synthetic-bench", "dtype": "float32"},
        "data": {"name": name, "hash": f"synthetic-{name}", "n_samples": n},
        "options": options,
        "shape": {"layers": LAYERS, "neurons": NEURONS},
        "shard_size": HUGE_SHARD,
    }


def huge_clusters(n: int = HUGE_N) -> np.ndarray:
    """The cluster (0, 1, 2: math, code, knowledge) of every pool row, shared by the compact pool, its exact
    sample and the records' sources."""
    return np.random.default_rng(1).integers(3, size=n)


def huge_centres() -> dict[str, np.ndarray]:
    """Exact cluster centres [3, layers, neurons] per reduction (seeded)."""
    rng = np.random.default_rng(0)
    return {r: rng.normal(0, 1.5, (3, LAYERS, NEURONS)).astype(np.float32) for r in HUGE_REDUCTIONS}


def _counts(k: int) -> dict:
    return {
        "tokens": np.full(k, 200, np.int32),
        "response_tokens": np.full(k, 100, np.int32),
        "truncated": np.zeros(k, bool),
    }


def write_huge(root: Path) -> dict:
    """The 1M compact pool (K = 256, `mean` and `last-first`, float16), its 2,000-record exact sample and
    three 64-sample exact targets, written once under `root` (an existing complete store is reopened).

    Compact rows are the projected cluster centre plus seeded noise in sketch space (its variance that of a
    projected unit-normal vector, neurons / K); to keep writing bound by the disk, the noise comes from 8
    blocks reused across shards. The exact sample's rows are its records' cluster centres plus exact noise:
    clusters agree with the pool's, individual values are not the projection's preimage (timings only)."""
    from nait_core.data import sample_rows
    from nait_core.sketch import Sketch
    from nait_core.store import Store

    root.mkdir(parents=True, exist_ok=True)
    sketch = Sketch(HUGE_K)
    centres = huge_centres()
    clusters = huge_clusters()
    timings = {}
    start = time.perf_counter()
    pool = Store.create(root / HUGE_POOL, _huge_manifest(HUGE_POOL, HUGE_N, HUGE_REDUCTIONS, sketch))
    missing = pool.missing_ranges()
    if missing:
        projected = {r: sketch.project(c) for r, c in centres.items()}  # [3, layers, K]
        rng = np.random.default_rng(2)
        scale = np.float32(np.sqrt(NEURONS / HUGE_K))
        blocks = [rng.standard_normal((HUGE_SHARD, LAYERS, HUGE_K), dtype=np.float32) * scale for _ in range(8)]
        for i, (a, b) in enumerate(missing):
            k, c = b - a, clusters[a:b]
            arrays = {
                r: (projected[r][c] + blocks[(i + j) % len(blocks)][:k]).astype(np.float16)
                for j, r in enumerate(HUGE_REDUCTIONS)
            }
            pool.write_shard(a, b, arrays | _counts(k))
            if i % 100 == 0:
                print(f"  compact pool: {b:,} of {HUGE_N:,} rows written", flush=True)
    timings["pool"] = time.perf_counter() - start
    pool = Store.open(pool.path, verify=False)
    rows = sample_rows(HUGE_N, HUGE_EXACT, sketch.seed)
    name = f"{HUGE_POOL}-exact{HUGE_EXACT}-s{sketch.seed}"
    exact = Store.create(
        root / name, _huge_manifest(name, HUGE_EXACT, HUGE_REDUCTIONS, sample_of=pool.path.name) | {"shard_size": 500}
    )
    rng = np.random.default_rng(3)
    for a, b in exact.missing_ranges():
        c = clusters[rows[a:b]]
        arrays = {
            r: (centres[r][c] + rng.standard_normal((b - a, LAYERS, NEURONS), dtype=np.float32)).astype(np.float16)
            for r in HUGE_REDUCTIONS
        }
        exact.write_shard(a, b, arrays | _counts(b - a))
    targets = []
    for g, source in enumerate(["math", "code", "knowledge"]):
        name = f"synthetic-compact-target-{source}"
        store = Store.create(root / name, _huge_manifest(name, BIG_TARGET_N, ("mean", "last", "first")))
        for a, b in store.missing_ranges():
            noise = [rng.standard_normal((b - a, LAYERS, NEURONS), dtype=np.float32) for _ in range(3)]
            arrays = {
                "mean": centres["mean"][g] + noise[0],
                "last": centres["last-first"][g] + noise[1],
                "first": noise[2],
            }
            store.write_shard(a, b, {r: v.astype(np.float16) for r, v in arrays.items()} | _counts(b - a))
        targets.append(Store.open(store.path, verify=False))
    timings["all"] = time.perf_counter() - start
    return {"pool": pool, "exact": Store.open(exact.path, verify=False), "targets": targets, "timings": timings}


def huge_studio():
    """The Studio of the 1M compact session (cached: built once per process), as `load` builds it for
    `NAIT_SKETCH=256 NAIT_REDUCTIONS=mean,last-first`: the compact pool, its exact sample found by
    `sketch.exact_sample_store`, exact targets and their features."""
    import streamlit as st

    @st.cache_resource
    def build(root: str):
        from nait_core.capture import CaptureReport
        from nait_core.data import Dataset, Record
        from nait_core.features import build_feature
        from nait_core.store import Store
        from studio.session import Config, Studio, _model

        root = Path(root)
        sources = ["math", "code", "knowledge"]
        pool = Store.open(root / HUGE_POOL, verify=False)
        clusters = huge_clusters()
        records = []
        for i, c in enumerate(clusters):
            s = sources[c]
            raw = {"instruction": f"Synthetic {s} task number {i}.", "input": "", "output": f"Answer {i}."}
            conversation = [
                {"role": "user", "content": raw["instruction"]},
                {"role": "assistant", "content": raw["output"]},
            ]
            records.append(Record(raw, f"huge:{i + 1}", s, conversation))
        targets, reports, features = [], [], []
        for g, source in enumerate(sources):
            store = Store.open(root / f"synthetic-compact-target-{source}", verify=False)
            targets.append(synthetic_records(f"target-{source}", BIG_TARGET_N, [source], 10 + g))
            reports.append(CaptureReport(store, reused=True, truncated=0))
            features.append(build_feature(store, f"target-{source}"))
        config = Config(
            pool=f"synthetic-compact-{HUGE_N}",
            targets=tuple(sources),
            target_size=BIG_TARGET_N,
            root=str(root),
            sketch=HUGE_K,
            exact_sample=HUGE_EXACT,
            reductions=HUGE_REDUCTIONS,
        )
        return Studio(
            config,
            _model(config.model),
            Dataset(f"synthetic-compact-{HUGE_N}", records),
            CaptureReport(pool, reused=True, truncated=0),
            targets,
            reports,
            features,
        )

    return build(os.environ["NAIT_BENCH_HUGE"])


def huge_app():
    """The AppTest script: the 1M compact session, then the page named in session state."""
    import bench_app

    bench_app.render_page(bench_app.huge_studio())


def profile_huge(root: Path, out: Path) -> None:
    """Each page's first (cold) and second (warm) rerun under cProfile: the top functions by cumulative time."""
    import pstats

    from streamlit.testing.v1 import AppTest

    os.environ["NAIT_BENCH_HUGE"] = str(root)
    out.mkdir(parents=True, exist_ok=True)
    at = AppTest.from_function(huge_app, default_timeout=3600)
    timed_run(at)
    for page in ["data", "samples", "neurons", "map", "select", "transfer"]:
        at.session_state["bench_page"] = page
        for kind in ("cold", "warm"):
            at.session_state["bench_profile"] = str(out / f"{page}-{kind}.prof")
            seconds = timed_run(at)
            print(f"\n=== {page}: {kind} rerun {seconds:.2f} s", flush=True)
            pstats.Stats(str(out / f"{page}-{kind}.prof")).sort_stats("cumulative").print_stats(25)


def bench_huge(root: Path) -> list[str]:
    from streamlit.testing.v1 import AppTest

    from nait_core.sketch import exact_sample_store
    from nait_core.store import Store

    stores = write_huge(root)  # reopened when complete
    os.environ["NAIT_BENCH_HUGE"] = str(root)
    start = time.perf_counter()
    at = AppTest.from_function(huge_app, default_timeout=3600)
    timed_run(at)
    built = time.perf_counter() - start
    print(f"huge: session built and Data & model drawn in {built:.1f} s", flush=True)
    times: dict[str, list[float]] = {}
    for page in ["data", "samples", "neurons", "map", "select", "transfer"]:
        at.session_state["bench_page"] = page
        times[f"open {page}"] = [timed_run(at), timed_run(at), timed_run(at)]
        print(f"  {page}: {times[f'open {page}']}", flush=True)
    at.session_state["bench_page"] = "select"
    timed_run(at)
    ratio = []
    for value in (0.2, 0.3, 0.1):
        widget(at, "select_ratio").set_value(value)
        ratio.append(timed_run(at))
    times["change the ratio (Select & export)"] = ratio
    method = []
    for value in ("nait-pca", "overlap", "nait-pca"):
        widget(at, "select_method").set_value(value)
        method.append(timed_run(at))
    times["method nait-pca / overlap (Select & export; first = scoring 1M by nait-pca)"] = method
    widget(at, "select_method").set_value("overlap")
    timed_run(at)
    at.session_state["bench_page"] = "samples"
    timed_run(at)
    _, rows = exact_sample_store(Store.open(root / HUGE_POOL, verify=False))
    outside = next(r for r in (400_000, 400_001, 400_002) if r not in set(rows.tolist()))
    shown = []
    for value in (int(rows[5]), outside, int(rows[6])):
        widget(at, "samples_row").set_value(value)
        shown.append(timed_run(at))
    times["show another record (Sample explorer: in, outside, in the exact sample)"] = shown
    print(f"  other interactions: {times}", flush=True)
    pool = stores["pool"]
    lines = report(
        f"Compact pool of {HUGE_N:,} samples, K = {HUGE_K} (`mean` + `last-first`, {pool.size_bytes() / 1e9:.1f} GB), "
        f"{HUGE_EXACT:,}-record exact sample, 3 targets × {BIG_TARGET_N} (AppTest; first = cold, then 2 warm reruns)",
        times,
    )
    return lines + [
        "",
        f"Stores written once ({stores['timings']['all']:.0f} s if just written, else reopened); session built "
        f"(1M records, model loaded) and Data & model drawn: {built:.1f} s.",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--big-dir", type=Path, default=Path("/tmp/nait-bench-52k"))
    parser.add_argument("--skip-huge", action="store_true", help="skip the 1,000,000-sample compact pool")
    parser.add_argument("--huge-dir", type=Path, default=Path("/work/big"), help="where the 1M compact stores live")
    parser.add_argument("--write-huge", action="store_true", help="only write (or check) the 1M stores, then stop")
    parser.add_argument("--profile-huge", type=Path, help="profile a warm rerun of each page at 1M into this folder")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    if args.profile_huge:
        profile_huge(args.huge_dir, args.profile_huge)
        return 0
    if args.write_huge:
        stores = write_huge(args.huge_dir)
        print(
            f"1M compact stores under {args.huge_dir}: {stores['timings']}; "
            f"pool {stores['pool'].size_bytes() / 1e9:.2f} GB"
        )
        return 0
    lines = []
    if not args.skip_demo:
        lines += bench_demo(args.repeats) + [""]
    if not args.skip_big:
        lines += bench_big(args.big_dir) + [""]
    if not args.skip_huge:
        lines += bench_huge(args.huge_dir)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
