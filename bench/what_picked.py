"""What each arm of a rare-skill `nait eval` run selected, beyond the kinds results.md counts: per
selection, its tool-use / role-play split, which tools its tool-use records offer (the `toolformer access:`
line of a GPTeacher record), and how many records hold arithmetic (a calculation such as `3 * 4`, or
"calculate", "how many", "total", "percent", "sum", "equation"). docs/results.md reads it.

    .venv/bin/python bench/what_picked.py runs/rare-pool-4000-general/pool.jsonl runs/rare-gsm8k-general-cpu
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter

ARITHMETIC = re.compile(
    r"\d+\s*[-+*/x×]\s*\d+|\bcalculat|\bhow many\b|\btotal\b|\bpercent|\bsum\b|\bequation", re.IGNORECASE
)


def tools(record: dict) -> list[str]:
    match = re.search(r"toolformer access: ([^\n]*)", record["instruction"])
    return [t.strip() for t in match.group(1).split(",")] if match else []


def has_arithmetic(record: dict) -> bool:
    return bool(ARITHMETIC.search(" ".join(str(record.get(k, "")) for k in ("instruction", "input", "output"))))


def describe(name: str, records: list[dict]) -> str:
    kinds = Counter(r.get("origin", "?") for r in records)
    used = Counter(t for r in records for t in tools(r))
    arithmetic = sum(has_arithmetic(r) for r in records)
    return (
        f"{name}: {len(records)} records, {dict(kinds)}; with arithmetic {arithmetic} "
        f"({arithmetic / max(len(records), 1):.0%}); tools {used.most_common(6)}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pool", help="the pool's JSONL, as given to nait eval --candidates")
    parser.add_argument("run", help="the nait eval --out folder")
    args = parser.parse_args(argv)
    with open(args.pool, encoding="utf-8") as f:
        pool = [json.loads(line) for line in f]
    with open(f"{args.run}/results.json", encoding="utf-8") as f:
        selections = json.load(f)["selections"]
    print(describe("pool", pool))
    for name, indices in selections.items():
        print(describe(name, [pool[i] for i in indices]))


if __name__ == "__main__":
    main()
