"""Reading records: formats, exact round-trips, and errors that name file, line and field."""

import json

import pandas as pd
import pytest

from nait_core.data import DataError, Dataset, read_records, render
from nait_core.datasets import load_builtin
from nait_core.selection import Cut, select, selected_lines
from nait_core.tokens import tokenize

pytestmark = pytest.mark.unit
ALPACA = [
    {"instruction": "Add 2 and 3.", "input": "", "output": "5", "id": 7, "score": 0.5},
    {"instruction": "Translate", "input": "bonjour", "output": "hello", "id": 8, "score": None},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_formats_are_detected(tmp_path):
    sharegpt = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]}
    messages = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
        ]
    }
    data = read_records(write_jsonl(tmp_path / "mixed.jsonl", [ALPACA[1], sharegpt, messages]))
    a, s, m = data.records
    assert a.conversation == [
        {"role": "user", "content": "Translate\n\nbonjour"},
        {"role": "assistant", "content": "hello"},
    ]
    assert s.conversation[-1] == {"role": "assistant", "content": "Hello!"}
    assert [t["role"] for t in m.conversation] == ["system", "user", "assistant"]
    text = read_records(write_jsonl(tmp_path / "t.jsonl", [{"body": "plain words"}]), text_field="body")
    assert text.records[0].conversation == [{"role": "assistant", "content": "plain words"}]


@pytest.mark.parametrize("kind", ["json", "parquet", "csv"])
def test_other_file_types_keep_records_exactly(kind, tmp_path):
    rows = [{k: ("" if v is None and kind == "csv" else v) for k, v in r.items()} for r in ALPACA]
    path = tmp_path / f"pool.{kind}"
    if kind == "json":
        path.write_text(json.dumps(rows))
    elif kind == "parquet":
        pd.DataFrame(rows).to_parquet(path)
    else:
        rows = [{k: str(v) for k, v in r.items()} for r in rows]  # CSV holds text: read back as text, unaltered
        pd.DataFrame(rows).to_csv(path, index=False)
    data = read_records(path)
    assert [r.raw for r in data.records] == rows
    assert data.records[1].where.startswith(str(path))


def test_jsonl_export_is_byte_identical(tmp_path):
    path = tmp_path / "pool.jsonl"
    lines = ['{"instruction": "Add 2 and 3.",   "output": "5", "extra": 1.50}', '{"output":"b","instruction":"a"}']
    path.write_text("\n".join(lines) + "\n")
    data = read_records(path)
    chosen = select({"t": [0.1, 0.9]}, Cut(top=2))
    assert selected_lines(data.records, chosen) == (lines, [])


@pytest.mark.parametrize(
    "content, where, field",
    [
        ('{"instruction": "a", "output": "b"}\n{"instruction": "c",\n', ":2", None),
        ('{"instruction": "a", "output": "b"}\n{"instruction": "c"}\n', ":2", "output"),
        ('{"instruction": "a", "output": "b"}\n\n{"instruction": "  ", "output": "x"}\n', ":3", "instruction"),
        ('{"messages": [{"role": "user", "content": "hi"}]}\n', ":1", "messages[0].role"),
        ('{"conversations": [{"from": "alien", "value": "hi"}]}\n', ":1", "conversations[0].from"),
        ("[1, 2]\n", ":1", None),
    ],
)
def test_bad_records_name_file_line_and_field(tmp_path, content, where, field):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataError) as error:
        read_records(path)
    assert error.value.where == f"{path}{where}"
    assert error.value.field == field
    assert str(path) in str(error.value)


def test_skip_invalid_reports_what_it_skipped(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"instruction": "a", "output": "b"}\nnot json\n{"instruction": "c", "output": ""}\n'
        '{"instruction": "d", "output": "e"}\n'
    )
    data = read_records(path, skip_invalid=True)
    assert [r.raw["instruction"] for r in data.records] == ["a", "d"]
    assert len(data.skipped) == 2
    assert data.skipped[0].startswith(f"{path}:2") and data.skipped[1].startswith(f"{path}:3: field 'output'")


def test_unknown_format_asks_for_format(tmp_path):
    with pytest.raises(DataError, match="--format"):
        read_records(write_jsonl(tmp_path / "x.jsonl", [{"question": "q", "answer": "a"}]))


@pytest.mark.model
def test_response_span_with_chat_template(tokenizer):
    record = load_builtin("gsm8k").records[0]
    data = Dataset("one", [record])
    tokens = tokenize(data, tokenizer, max_length=4096)
    text, start = render(record.conversation, tokenizer)
    assert text[start:].startswith(record.response)
    response = tokenizer.decode(tokens.input_ids[0][tokens.response_start[0] :])
    assert response.startswith(record.response[:40])
    prompt = tokenizer.decode(tokens.input_ids[0][: tokens.response_start[0]])
    assert prompt.endswith("assistant\n") and record.response[:20] not in prompt


@pytest.mark.model
def test_truncation_is_counted(tokenizer):
    data = Dataset("one", load_builtin("gsm8k").records[:3])
    tokens = tokenize(data, tokenizer, max_length=50)
    assert all(tokens.truncated) and all(len(ids) == 50 for ids in tokens.input_ids)


def test_builtin_sets_are_disjoint_from_demo():
    demo = load_builtin("demo")
    assert 900 <= len(demo) <= 1100
    assert {r.source for r in demo.records} == {"gsm8k", "humaneval", "mmlu"}
    for name in ("gsm8k", "humaneval", "mmlu"):
        named = load_builtin(name)
        assert not {json.dumps(r.raw, sort_keys=True) for r in named.records} & {
            json.dumps(r.raw, sort_keys=True) for r in demo.records
        }
    assert len(load_builtin("gsm8k")) + sum(r.source == "gsm8k" for r in demo.records) == 1319
    assert len(load_builtin("mmlu")) + 700 <= 14042  # stray header rows dropped; repeated questions kept together
    algebra = load_builtin("mmlu:abstract_algebra")
    assert len(algebra) > 0 and all(r.raw["subject"] == "abstract algebra" for r in algebra.records)
    with pytest.raises(DataError, match="no such MMLU subject"):
        load_builtin("mmlu:astrology")


# ---------------------------------------------------------------- issue 21: gzip and Parquet maps


@pytest.mark.parametrize("kind", ["json", "csv", "jsonl"])
def test_gzipped_files_are_read_decompressed(kind, tmp_path):
    import gzip

    rows = [{"instruction": f"Q{i}", "output": f"A{i}"} for i in range(3)]
    text = {
        "json": json.dumps(rows),
        "csv": "instruction,output\n" + "".join(f"Q{i},A{i}\n" for i in range(3)),
        "jsonl": "".join(json.dumps(r) + "\n" for r in rows),
    }[kind]
    path = tmp_path / f"pool.{kind}.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert [r.raw for r in read_records(path).records] == rows


def test_a_damaged_gzipped_json_names_the_file(tmp_path):
    import gzip

    path = tmp_path / "pool.json.gz"
    path.write_bytes(gzip.compress(b'[{"instruction": "Q", "output": "A"}]')[:20])
    with pytest.raises(DataError, match=f"{path}: cannot read the file"):
        read_records(path)


def test_parquet_maps_export_as_json_objects_and_repeated_keys_say_so(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nait_core.selection import export_warnings

    path = tmp_path / "maps.parquet"
    meta = pa.array([[("lang", "en"), ("src", "web")], []], type=pa.map_(pa.string(), pa.string()))
    tags = pa.array([[("a", 1), ("a", 2)], [("b", 3)]], type=pa.map_(pa.string(), pa.int64()))  # row 0 repeats "a"
    pq.write_table(pa.table({"instruction": ["Q0", "Q1"], "output": ["A0", "A1"], "meta": meta, "tags": tags}), path)
    data = read_records(path)
    selection = select({"t": [1.0, 0.5]}, Cut(ratio=1.0))
    lines, notes = selected_lines(data.records, selection)
    first, second = (json.loads(line) for line in lines)
    assert first["meta"] == {"lang": "en", "src": "web"} and second["meta"] == {}
    assert first["tags"] == [["a", 1], ["a", 2]] and second["tags"] == {"b": 3}
    assert notes == [f"{path}:row 0: field 'tags': a map with a repeated key exported as a list of [key, value] pairs"]
    assert any("exported values changed" in headline for headline, _ in export_warnings(selection, notes))
