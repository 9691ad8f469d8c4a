"""Build a general candidate pool in which a target skill is rare: the NAIT paper's setting.

General instruction records (by default the GPTeacher role-play and tool-use sets in ../shared/data/,
MIT, which the product does not ship) are sampled by seed, and a small share of problems of a built-in
set (`--plant gsm8k` or `humaneval`) is planted at seeded positions. The planted problems come from the
part of that set that the built-in `demo` pool holds: the built-in sets are split by content
(nait_core/datasets.py), so they are never in the target `nait eval --target gsm8k` measures, neither
in its feature part nor in its held-out part. That is checked here again, record by record, for the
split `nait eval` will make (`--feature-size`, `--heldout-size`, `--split-seed` must match its options).

Writes the pool as JSONL (Alpaca fields plus `origin`, the file or set a record came from, and
`planted`) and beside it `<name>.manifest.json`: the recipe, the line of every planted record, the
disjointness check and the pool's SHA-256.

    .venv/bin/python bench/make_rare_pool.py --out runs/rare-pool/pool.jsonl            # 500 records, 15 planted
    .venv/bin/python bench/make_rare_pool.py --size 200 --planted-share 0.03 --out /tmp/pilot.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nait_core import atomic  # noqa: E402
from nait_core.data import read_records  # noqa: E402
from nait_core.datasets import load_builtin  # noqa: E402
from nait_core.eval import split_target  # noqa: E402

# ../shared/data beside the checkout (or beside a folder above it, for git worktrees)
SHARED = next(
    (d / "shared" / "data" for d in Path(__file__).resolve().parents[1].parents if (d / "shared" / "data").is_dir()),
    Path("../shared/data"),
)
DEFAULT_GENERAL = (str(SHARED / "gpteacher-roleplay.json"), str(SHARED / "gpteacher-toolformer.json"))
MAX_SHARE = 0.03  # the rare-skill setting: at most 3 % of the pool is the target skill


def _key(conversation: list[dict]) -> str:
    return json.dumps(conversation, sort_keys=True)


def _alpaca(record) -> dict:
    """The record's prompt and response as Alpaca fields (general records are Alpaca already)."""
    raw = record.raw
    if {"instruction", "output"} <= set(raw):
        return {"instruction": raw["instruction"], "input": raw.get("input") or "", "output": raw["output"]}
    prompt = "\n\n".join(t["content"] for t in record.prompt)
    return {"instruction": prompt, "input": "", "output": record.response}


def build_pool(
    general_files: list[str],
    size: int,
    planted_share: float,
    plant: str = "gsm8k",
    feature_size: int = 64,
    heldout_size: int = 100,
    split_seed: int = 0,
    seed: int = 0,
) -> tuple[list[dict], dict]:
    """(rows, manifest): `size` rows, round(planted_share * size) of them planted `plant` problems."""
    if not 0 < planted_share <= MAX_SHARE:
        raise ValueError(f"--planted-share must be in (0, {MAX_SHARE}], not {planted_share}: the skill must be rare")
    n_planted = max(1, round(planted_share * size))
    rng = np.random.default_rng(seed)

    # Every target record `nait eval --target <plant>` will use, feature and held-out parts.
    target = load_builtin(plant)
    feature, heldout = split_target(target, feature_size, heldout_size, split_seed)
    target_keys = {_key(r.conversation) for r in target.records}
    candidates = [r for r in load_builtin("demo").records if r.source == plant]
    if len(candidates) < n_planted:
        raise ValueError(
            f"only {len(candidates)} {plant} problems are outside the target set; asked to plant {n_planted}"
        )
    planted = [candidates[i] for i in np.sort(rng.choice(len(candidates), n_planted, replace=False))]

    general, seen = [], set(target_keys)
    for path in general_files:
        for record in read_records(path).records:
            key = _key(record.conversation)
            if key not in seen:  # content duplicates (and anything in the target) are left out
                seen.add(key)
                general.append((Path(path).stem, record))
    n_general = size - n_planted
    if len(general) < n_general:
        raise ValueError(f"the general files hold {len(general)} distinct records; the pool needs {n_general}")
    chosen = [general[i] for i in np.sort(rng.choice(len(general), n_general, replace=False))]

    rows = [{**_alpaca(r), "origin": origin, "planted": False} for origin, r in chosen]
    rows += [{**_alpaca(r), "origin": plant, "planted": True} for r in planted]
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    planted_where = [
        planted[i - n_general].where.split("site-packages/")[-1]  # in pool order
        for i in order
        if i >= n_general
    ]

    # The check that matters, on the rows as written: no planted (or general) problem is in the
    # target's feature or held-out part.
    pool_keys = {_key(read_conversation(row)) for row in rows}
    overlap_feature = len(pool_keys & {_key(r.conversation) for r in feature.records})
    overlap_heldout = len(pool_keys & {_key(r.conversation) for r in heldout.records})
    if overlap_feature or overlap_heldout:
        raise AssertionError(f"pool overlaps the target: {overlap_feature} feature, {overlap_heldout} held-out records")
    origins: dict[str, int] = {}
    for row in rows:
        origins[row["origin"]] = origins.get(row["origin"], 0) + 1
    manifest = {
        "records": len(rows),
        "seed": seed,
        "origins": origins,
        "general_files": [str(p) for p in general_files],
        "general_distinct_records": len(general),
        "planted": {
            "set": plant,
            "from": f"the {plant} problems of the built-in demo pool (outside the {plant} target)",
            "count": n_planted,
            "share": n_planted / len(rows),
            "lines": [n + 1 for n, row in enumerate(rows) if row["planted"]],
            "where": planted_where,
        },
        "target_check": {
            "target": plant,
            "feature_size": len(feature),
            "heldout_size": len(heldout),
            "split_seed": split_seed,
            "in_feature_part": overlap_feature,
            "in_heldout_part": overlap_heldout,
            "in_whole_target": len(pool_keys & target_keys),
        },
    }
    return rows, manifest


def read_conversation(row: dict) -> list[dict]:
    """A written row as `nait` reads it (Alpaca)."""
    from nait_core.data import to_conversation

    return to_conversation(row, "alpaca", "row")


def write_pool(rows: list[dict], manifest: dict, out: Path) -> Path:
    """Write the JSONL and its manifest (each atomically); returns the manifest's path."""
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out, text)
    manifest = {"pool": str(out), "sha256": hashlib.sha256(text.encode()).hexdigest(), **manifest}
    path = out.with_name(out.name.removesuffix(".jsonl") + ".manifest.json")
    atomic.write_text(path, json.dumps(manifest, indent=1) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="the pool's JSONL (its manifest goes beside it)")
    p.add_argument(
        "--general", action="append", help="general Alpaca JSON/JSONL file; repeat (default: the GPTeacher sets)"
    )
    p.add_argument("--size", type=int, default=500, help="records in the pool, planted ones included")
    p.add_argument(
        "--planted-share", type=float, default=MAX_SHARE, help=f"share of planted problems (at most {MAX_SHARE})"
    )
    p.add_argument("--plant", default="gsm8k", choices=["gsm8k", "humaneval"], help="the rare skill (a built-in set)")
    p.add_argument("--feature-size", type=int, default=64, help="as `nait eval --feature-size`")
    p.add_argument("--heldout-size", type=int, default=100, help="as `nait eval --heldout-size`")
    p.add_argument("--split-seed", type=int, default=0, help="as `nait eval --split-seed`")
    p.add_argument("--seed", type=int, default=0, help="sampling and planting seed")
    args = p.parse_args(argv)
    rows, manifest = build_pool(
        args.general or list(DEFAULT_GENERAL),
        args.size,
        args.planted_share,
        args.plant,
        args.feature_size,
        args.heldout_size,
        args.split_seed,
        args.seed,
    )
    path = write_pool(rows, manifest, args.out)
    print(
        f"{args.out}: {len(rows)} records, {manifest['planted']['count']} planted {args.plant} "
        f"({manifest['origins']}); manifest {path}"
    )


if __name__ == "__main__":
    main()
