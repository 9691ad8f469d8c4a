"""Property-based tests (Hypothesis) over every reader (JSON, JSONL and .jsonl.gz, Parquet, CSV) and the
option parsers: random bytes, encodings, BOMs, line endings, JSON shapes, nesting and field types.

Properties: only the project's own errors (DataError, with the file in its location; ValueError for
options) or records come out; a valid record is never lost or altered; the export of a record is its
input bytes (JSONL) or its fields as valid JSON, every changed value noted (other formats).

The profile is bounded so the whole file runs in well under a minute on a shared 2-core machine:
NAIT_HYPOTHESIS_EXAMPLES (default 40) examples per test; set it higher for a longer hunt.
"""

import csv
import gzip
import io
import json
import math
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nait_core import cli
from nait_core.data import FORMATS, DataError, read_records
from nait_core.scoring import parse_threshold
from nait_core.selection import Cut, record_export, select

pytestmark = pytest.mark.unit
EXAMPLES = int(os.environ.get("NAIT_HYPOTHESIS_EXAMPLES", "40"))
BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
SUFFIXES = [".jsonl", ".jsonl.gz", ".json", ".parquet", ".csv"]

# Text a record may hold: any Unicode but surrogates (not valid text), and not blank where required.
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
required_text = text.filter(lambda s: s.strip())
json_leaf = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | text
)
json_value = st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
)
extra_keys = text.filter(lambda k: k not in ("instruction", "input", "output", "conversations", "messages", "text"))


@st.composite
def records(draw):
    """A valid record in one of the formats, with extra fields of any JSON type."""
    kind = draw(st.sampled_from(["alpaca", "sharegpt", "messages"]))
    if kind == "alpaca":
        row = {"instruction": draw(required_text), "output": draw(required_text)}
        if draw(st.booleans()):
            row["input"] = draw(text)
    elif kind == "sharegpt":
        row = {
            "conversations": [
                {"from": "human", "value": draw(required_text)},
                {"from": "gpt", "value": draw(required_text)},
            ]
        }
    else:
        row = {
            "messages": [
                {"role": "user", "content": draw(required_text)},
                {"role": "assistant", "content": draw(required_text)},
            ]
        }
    row.update(draw(st.dictionaries(extra_keys, json_value, max_size=3)))
    return row


def write(tmp_path, suffix, data: bytes):
    path = tmp_path / f"in{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    return path


def read_or_error(path, **options):
    """read_records, allowing only a DataError that names the file."""
    try:
        return read_records(path, **options)
    except DataError as error:
        assert str(error).startswith(str(path)) and error.where.startswith(str(path)), error
        return None


# ---------------------------------------------------------------- anything in, no traceback out


@BOUNDED
@given(
    suffix=st.sampled_from(SUFFIXES),
    data=st.binary(max_size=300),
    skip=st.booleans(),
    fmt=st.sampled_from([None, *FORMATS]),
)
@example(suffix=".json", data=b"5", skip=False, fmt=None)
@example(suffix=".json", data=b"null", skip=True, fmt=None)
@example(suffix=".jsonl", data=b'{"instruction": "\\ud800", "output": "b"}', skip=False, fmt=None)
@example(suffix=".jsonl", data=b"[" * 5000 + b"]" * 5000, skip=True, fmt=None)
@example(suffix=".csv", data=b"\xef\xbb\xbfq,a\r\nx,y,z\r\n", skip=False, fmt=None)
@example(suffix=".csv", data=b"instruction,output\n\xff,y\n", skip=True, fmt=None)
def test_random_bytes_give_records_or_a_located_data_error(tmp_path_factory, suffix, data, skip, fmt):
    path = write(tmp_path_factory.mktemp("bytes"), suffix, data)
    dataset = read_or_error(path, skip_invalid=skip, fmt=fmt)
    if dataset is not None:
        for record in dataset.records:
            assert record.where.startswith(str(path))
            json.loads(record_export(record)[0])  # every export is valid JSON
        assert all(line.startswith(str(path)) for line in dataset.skipped)


@BOUNDED
@given(value=json_value | st.lists(json_value, max_size=4), bom=st.booleans(), skip=st.booleans())
def test_any_json_document_gives_records_or_a_located_data_error(tmp_path_factory, value, bom, skip):
    data = json.dumps(value, ensure_ascii=False).encode()
    path = write(tmp_path_factory.mktemp("json"), ".json", (b"\xef\xbb\xbf" if bom else b"") + data)
    read_or_error(path, skip_invalid=skip)


# ---------------------------------------------------------------- valid records: never lost, never altered


@BOUNDED
@given(
    rows=st.lists(records(), min_size=1, max_size=5),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    gz=st.booleans(),
    ascii_=st.booleans(),
    compact=st.booleans(),
    junk=st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=3),
    last_newline=st.booleans(),
)
def test_jsonl_keeps_every_valid_record_and_exports_its_bytes(
    tmp_path_factory, rows, newline, bom, gz, ascii_, compact, junk, last_newline
):
    separators = (",", ":") if compact else (", ", ": ")
    lines = [json.dumps(r, ensure_ascii=ascii_, separators=separators).encode() for r in rows]
    eol = newline.encode()
    body = eol.join(lines[:1] + junk + lines[1:]) + (eol if last_newline else b"")
    path = write(
        tmp_path_factory.mktemp("jsonl"), ".jsonl.gz" if gz else ".jsonl", (b"\xef\xbb\xbf" if bom else b"") + body
    )
    dataset = read_records(path, skip_invalid=True)
    good_lines = [1, *range(len(junk) + 2, len(junk) + len(rows) + 1)]
    kept = [r for r in dataset.records if int(r.where.rsplit(":", 1)[1]) in good_lines]
    assert [r.raw for r in kept] == rows  # none lost, none altered
    last = len(junk) + len(rows)
    for record, line, number in zip(kept, lines, good_lines):
        ending = b"\r" if newline == "\r\n" and (number < last or last_newline) else b""
        assert record_export(record)[0].encode() == line + ending  # the input bytes ("\n" is the line separator)


@BOUNDED
@given(rows=st.lists(records(), min_size=1, max_size=5), bom=st.booleans(), wrapped=st.booleans())
def test_json_keeps_every_valid_record(tmp_path_factory, rows, bom, wrapped):
    document = {"data": rows} if wrapped else rows
    path = write(
        tmp_path_factory.mktemp("json"),
        ".json",
        (b"\xef\xbb\xbf" if bom else b"") + json.dumps(document, ensure_ascii=False, indent=1).encode(),
    )
    dataset = read_records(path)
    assert [r.raw for r in dataset.records] == rows
    assert [json.loads(record_export(r)[0]) for r in dataset.records] == rows  # the export holds the same values


csv_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@BOUNDED
@given(
    extra=st.lists(csv_text.filter(lambda k: k not in ("instruction", "output")), unique=True, max_size=3),
    data=st.data(),
    terminator=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
)
def test_csv_keeps_every_valid_record(tmp_path_factory, extra, data, terminator, bom, quoting):
    header = ["instruction", "output", *extra]
    rows = data.draw(
        st.lists(st.tuples(required_text, required_text, *[csv_text for _ in extra]), min_size=1, max_size=5)
    )
    if any("\r" in field for row in [header, *rows] for field in row):
        # CPython's writer leaves a bare CR unquoted when the terminator is "\n" ('0\r,0\n'): an ambiguous
        # file (RFC 4180 quotes CR), read by every CSV reader as a line end. Quote all, as RFC 4180 asks.
        quoting = csv.QUOTE_ALL
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator=terminator, quoting=quoting)
    writer.writerow(header)
    writer.writerows(rows)
    path = write(tmp_path_factory.mktemp("csv"), ".csv", (b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode())
    dataset = read_records(path, fmt="alpaca")
    assert [r.raw for r in dataset.records] == [dict(zip(header, row)) for row in rows]
    assert [json.loads(record_export(r)[0]) for r in dataset.records] == [dict(zip(header, row)) for row in rows]


parquet_columns = {
    "int": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "float": (pa.float64(), st.floats()),  # NaN and ±inf included: JSON cannot hold them
    "bool": (pa.bool_(), st.booleans()),
    "text": (pa.string(), text),
    "binary": (pa.binary(), st.binary(max_size=8)),
    "list": (pa.list_(pa.int32()), st.lists(st.integers(-(2**31), 2**31 - 1), max_size=3)),
    "struct": (
        pa.struct([("a", pa.float64()), ("b", pa.string())]),
        st.fixed_dictionaries({"a": st.floats(), "b": text}),
    ),
}


def _expected_json(value):
    """What the export holds for a value read from Parquet, and how many notes it takes."""
    if isinstance(value, float) and not math.isfinite(value):
        return None, 1
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode(), 1
    if isinstance(value, dict):
        pairs = {k: _expected_json(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, sum(n for _, n in pairs.values())
    return value, 0


@BOUNDED
@given(
    columns=st.lists(st.sampled_from(sorted(parquet_columns)), unique=True, max_size=4),
    data=st.data(),
    n=st.integers(1, 4),
)
def test_parquet_keeps_every_record_and_exports_valid_json_noting_each_change(tmp_path_factory, columns, data, n):
    table = {
        "instruction": data.draw(st.lists(required_text, min_size=n, max_size=n)),
        "output": data.draw(st.lists(required_text, min_size=n, max_size=n)),
    }
    types = {"instruction": pa.string(), "output": pa.string()}
    for name in columns:
        kind, values = parquet_columns[name]
        table[name], types[name] = data.draw(st.lists(st.none() | values, min_size=n, max_size=n)), kind
    path = tmp_path_factory.mktemp("parquet") / "in.parquet"
    pq.write_table(pa.table(table, schema=pa.schema(types.items())), path)
    dataset = read_records(path)
    rows = [{k: table[k][i] for k in table} for i in range(n)]
    assert len(dataset.records) == n
    for record, row in zip(dataset.records, rows):
        assert record.raw.keys() == row.keys()
        assert json.dumps(record.raw, default=repr, sort_keys=True) == json.dumps(
            row, default=repr, sort_keys=True
        )  # as read, NaN included
        line, notes = record_export(record)
        expected = {k: _expected_json(v) for k, v in row.items()}
        assert json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in export")) == {
            k: v for k, (v, _) in expected.items()
        }
        assert len(notes) == sum(count for _, count in expected.values())
        assert all(note.startswith(f"{path}:row ") for note in notes)


# ---------------------------------------------------------------- option parsers


@BOUNDED
@given(value=st.text(max_size=12) | st.floats().map(str) | st.floats(0, 1).map(lambda q: f"q{q}"))
def test_fire_threshold_parses_or_says_why(value):
    try:
        mode, number = parse_threshold(value)
    except ValueError as error:
        assert "fire threshold" in str(error)
        return
    assert mode in ("absolute", "quantile")
    assert mode == "absolute" or 0 < number < 1


option_values = (
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
    | st.integers(-5, 5).map(str)
    | st.floats().map(str)
)


@BOUNDED
@given(
    option=st.sampled_from(
        [
            "--worker",
            "--ratio",
            "--top",
            "--min-score",
            "--target-size",
            "--max-length",
            "--batch-tokens",
            "--reductions",
            "--fire-threshold",
            "--format",
            "--merge",
        ]
    ),
    value=option_values,
    command=st.sampled_from(["select", "capture", "score"]),
)
def test_any_option_value_gives_a_clean_exit_before_any_work(tmp_path_factory, option, value, command):
    """A missing candidates file makes every accepted option end in `nait: error` (exit 2); a refused one
    ends in the same, or argparse's usage error: never a traceback, and never any work done."""
    tmp = tmp_path_factory.mktemp("cli")
    base = {
        "select": [
            "select",
            "--candidates",
            str(tmp / "missing.jsonl"),
            "--target",
            "gsm8k",
            "--out",
            str(tmp / "o.jsonl"),
        ],
        "capture": ["capture", "--data", str(tmp / "missing.jsonl")],
        "score": [
            "score",
            "--candidates",
            str(tmp / "missing.jsonl"),
            "--feature",
            "f",
            "--scores",
            str(tmp / "s.jsonl"),
        ],
    }
    argv = base[command] + [f"{option}={value}", "--store-dir", str(tmp / "stores")]
    if command == "select" and option not in ("--ratio", "--top", "--min-score"):
        argv += ["--ratio", "0.1"]
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse: an unknown option for this command, a bad number or choice
        assert exit_.code == 2
        return
    assert code == 2
    assert not (tmp / "stores").exists() and not (tmp / "o.jsonl").exists()


@BOUNDED
@given(
    score=st.lists(st.floats(allow_infinity=False) | st.just(float("nan")), min_size=1, max_size=20),
    ratio=st.floats(0.01, 1),
    top=st.integers(1, 30),
)
def test_cuts_never_select_a_record_without_a_score(score, ratio, top):
    for cut in (Cut(ratio=ratio), Cut(top=top), Cut(min_score=min(score))):
        chosen = select({"t": score}, cut)
        assert not any(math.isnan(score[i]) for i in chosen.indices)
        assert chosen.unscored == sum(math.isnan(s) for s in score)
        scored = sum(not math.isnan(s) for s in score)
        if cut.top is not None:
            assert len(chosen.indices) == min(top, scored)
