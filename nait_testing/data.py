"""Small data files in each input format a user may give: JSONL, save_to_disk folders, Arrow IPC files."""

from __future__ import annotations

import json


def alpaca_rows(n, topic="sum", start=0):
    """`n` Alpaca records on `topic`, numbered from `start` (distinct numbers: distinct records)."""
    return [
        {
            "instruction": f"What is the {topic} of {i} and {i + 1}?",
            "input": "",
            "output": f"The {topic} is {i * 7 % 13} after a short working {'.' * (i % 5)}",
        }
        for i in range(start, start + n)
    ]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def columns(rows):
    """Every key of every row as a column, null where a row lacks it (from_list would keep the first row's keys)."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    return {key: [row.get(key) for row in rows] for key in keys}


def save_to_disk(path, rows):
    import datasets

    datasets.Dataset.from_dict(columns(rows)).save_to_disk(str(path))
    return path


def write_arrow_file(path, rows):
    """An Arrow IPC *file* (pyarrow's own format, not the stream datasets writes)."""
    import pyarrow as pa

    table = pa.table(columns(rows))
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return path
