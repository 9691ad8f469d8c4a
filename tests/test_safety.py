"""Issue 10: nothing lost, nothing silently wrong. One test (or parameter) per failure found by probing
as a hostile but fair user; each failed on the code before the fix."""

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nait_core.cli import main
from nait_core.data import DataError, Dataset, Record, read_records
from nait_core.selection import Cut, export, export_warnings, select
from nait_core.tokens import tokenize

pytestmark = pytest.mark.unit


def pool_file(path, n=6, newline="\n"):
    path.write_bytes(
        "".join(json.dumps({"instruction": f"Q{i}", "output": "word " * (i + 1)}) + newline for i in range(n)).encode()
    )
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


# ---------------------------------------------------------------- 1: outputs never replace inputs


@pytest.mark.parametrize(
    "case", ["out=candidates", "out=symlink", "scores=candidates", "out=target", "out=scores", "out exists"]
)
def test_an_output_never_replaces_an_input_or_an_existing_file(case, tmp_path, capsys):
    pool, target = pool_file(tmp_path / "pool.jsonl"), pool_file(tmp_path / "target.jsonl", 3)
    (tmp_path / "link.jsonl").symlink_to(pool)
    before = {p: p.read_bytes() for p in (pool, target)}
    out, scores = tmp_path / "o.jsonl", tmp_path / "s.jsonl"
    out = {"out=candidates": pool, "out=symlink": tmp_path / "link.jsonl", "out=target": target}.get(case, out)
    scores = {"scores=candidates": pool, "out=scores": out}.get(case, scores)
    if case == "out exists":
        out.write_text("mine\n")
    store = tmp_path / "stores"
    method = ["--target", target] if case == "out=target" else ["--method", "random"]  # random: no model needed
    code, err = run(
        capsys,
        "select",
        "--candidates",
        pool,
        *method,
        "--ratio",
        "0.5",
        "--out",
        out,
        "--scores",
        scores,
        "--store-dir",
        store,
    )
    assert code == 2
    expected = {"out exists": "already exists; pass --force", "out=scores": "are the same file"}.get(
        case, "an output never replaces an input"
    )
    assert expected in err
    assert {p: p.read_bytes() for p in (pool, target)} == before
    assert not store.exists()  # refused before any capture (and before loading the model)
    if case == "out exists":
        assert out.read_text() == "mine\n"


def test_force_replaces_an_existing_output(tmp_path, capsys):
    pool, out = pool_file(tmp_path / "pool.jsonl"), tmp_path / "o.jsonl"
    out.write_text("old\n")
    code, _ = run(capsys, "select", "--candidates", pool, "--method", "random", "--ratio", "1", "--out", out, "--force")
    assert code == 0 and out.read_bytes() == pool.read_bytes()


@pytest.mark.parametrize("command", ["score", "feature", "eval"])
def test_other_commands_refuse_an_input_as_output(command, tmp_path, capsys):
    pool, feature = pool_file(tmp_path / "pool.jsonl"), tmp_path / "f.safetensors"
    feature.write_bytes(b"not really")
    argv = {
        "score": ["score", "--candidates", pool, "--feature", feature, "--scores", feature],
        "feature": ["feature", "--target", pool, "--out", pool],
        "eval": ["eval", "--candidates", pool, "--target", "gsm8k", "--out", pool],
    }[command]
    code, err = run(capsys, *argv, "--store-dir", tmp_path / "stores")
    assert code == 2 and ("never replaces an input" in err or "is a file; give a folder" in err), err
    assert not (tmp_path / "stores").exists()


@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_out_that_cannot_be_written_fails_before_capture(where, tmp_path, capsys):
    pool, folder, file = pool_file(tmp_path / "pool.jsonl"), tmp_path / "folder", tmp_path / "file"
    folder.mkdir()
    file.write_text("x")
    out = folder if where == "a folder" else file / "o.jsonl"
    code, err = run(
        capsys,
        "select",
        "--candidates",
        pool,
        "--target",
        "gsm8k",
        "--target-size",
        "4",
        "--ratio",
        "0.5",
        "--out",
        out,
        "--store-dir",
        tmp_path / "stores",
    )
    assert code == 2
    assert ("is a folder; give a file path" if where == "a folder" else f"{file} is a file, not a folder") in err
    assert not (tmp_path / "stores").exists()
    assert sorted(os.listdir(tmp_path)) == ["file", "folder", "pool.jsonl"] and not os.listdir(folder)


def test_a_failed_export_leaves_no_temp_file(tmp_path):
    folder = tmp_path / "out.jsonl"
    folder.mkdir()
    data = read_records(pool_file(tmp_path / "pool.jsonl"))
    with pytest.raises(OSError):
        export(data.records, select({"t": np.arange(6.0)}, Cut(top=2)), folder)
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl", "pool.jsonl"]


# ---------------------------------------------------------------- 4: byte-for-byte exports


def test_crlf_jsonl_exports_byte_for_byte(tmp_path, capsys):
    pool, out = pool_file(tmp_path / "pool.jsonl", newline="\r\n"), tmp_path / "o.jsonl"
    assert run(capsys, "select", "--candidates", pool, "--method", "random", "--ratio", "1", "--out", out)[0] == 0
    assert out.read_bytes() == pool.read_bytes() and b"\r\n" in out.read_bytes()


def test_parquet_nan_exports_as_valid_json_and_says_so(tmp_path, capsys):
    path, out = tmp_path / "pool.parquet", tmp_path / "o.jsonl"
    pq.write_table(
        pa.table({"instruction": ["a", "b"], "output": ["x", "y"], "s": [float("nan"), 1.5], "t": [float("inf"), 2.0]}),
        path,
    )
    code, err = run(capsys, "select", "--candidates", path, "--method", "random", "--ratio", "1", "--out", out)
    assert code == 0

    def no_constants(name):
        raise AssertionError(f"{name} is not JSON")

    rows = [json.loads(line, parse_constant=no_constants) for line in out.read_text().splitlines()]
    assert rows == [
        {"instruction": "a", "output": "x", "s": None, "t": None},
        {"instruction": "b", "output": "y", "s": 1.5, "t": 2.0},
    ]
    assert "2 exported values changed" in err
    assert f"{path}:row 0: field 's': nan exported as null" in err and f"{path}:row 0: field 't': inf" in err


@pytest.mark.parametrize("header", ["instruction,output", "q,a"])
def test_csv_row_with_an_extra_field_names_file_line_and_field(header, tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text(f"{header}\na,b,c\n")
    with pytest.raises(DataError) as error:
        read_records(path)
    assert (error.value.where, error.value.field) == (f"{path}:2", "column 3")
    assert "row has 3 fields, the header has 2" in str(error.value)


# ---------------------------------------------------------------- 5: errors, never tracebacks

BAD_INPUTS = {  # name: (file name, bytes, where, field, message part)
    "scalar 5": ("x.json", b"5", "", None, "expected a JSON array of records (or one record object), got int"),
    "scalar null": ("x.json", b"null", "", None, "got null"),
    "deep nesting": ("x.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n", ":1", None, "nested too deeply"),
    "deep nesting .json": ("x.json", b"[" * 100_000 + b"]" * 100_000, "", None, "nested too deeply"),
    "lone surrogate": (
        "x.jsonl",
        b'{"instruction": "a\\ud800", "output": "b"}\n',
        ":1",
        "instruction",
        "contains a lone surrogate \\ud800",
    ),
    "non-UTF-8 jsonl": (
        "x.jsonl",
        b'{"instruction": "a\xff", "output": "b"}\n',
        ":1",
        None,
        "not valid UTF-8 (byte 0xff at column 19)",
    ),
    "non-UTF-8 json": ("x.json", b'[\n{"instruction": "a\xff", "output": "b"}]', ":2", None, "not valid UTF-8"),
    "non-UTF-8 csv": (
        "x.csv",
        b"instruction,output\nfine,row\na\xfe,b\n",
        ":3",
        "instruction",
        "not valid UTF-8 (byte 0xfe)",
    ),
    "csv repeated column": ("x.csv", b"instruction,output,output\na,b,c\n", ":1", "output", "more than once"),
    "csv short row": ("x.csv", b"instruction,output\na\n", ":2", "column 2", "row has 1 fields"),
    "huge integer": (
        "x.jsonl",
        b'{"instruction": "a", "output": "b", "n": ' + b"9" * 5000 + b"}\n",
        ":1",
        None,
        "not readable JSON",
    ),
    "damaged gzip": ("x.jsonl.gz", b"\x1f\x8b\x08\x00garbage", ":1", None, "cannot read the file"),
    "damaged parquet": ("x.parquet", b"PAR1 nope", "", None, "not a readable Parquet file"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_a_data_error_naming_file_line_and_field(name, tmp_path):
    file_name, content, where, field, message = BAD_INPUTS[name]
    path = tmp_path / file_name
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        read_records(path)
    assert error.value.where == f"{path}{where}" and error.value.field == field
    assert message in str(error.value)


def test_a_folder_named_like_a_data_file_is_an_error(tmp_path, capsys):
    (tmp_path / "x.jsonl").mkdir()
    code, err = run(
        capsys,
        "select",
        "--candidates",
        tmp_path / "x.jsonl",
        "--method",
        "random",
        "--ratio",
        "1",
        "--out",
        tmp_path / "o.jsonl",
    )
    assert code == 2 and f"{tmp_path / 'x.jsonl'}: is a folder" in err


@pytest.mark.parametrize(
    "bad",
    [
        b'{"instruction": "a\\ud800", "output": "b"}',
        b'{"instruction": "a\xff", "output": "b"}',
        b'{"instruction": "a", "output": "b", "deep": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    ],
)
def test_skip_invalid_skips_every_kind_of_bad_record(bad, tmp_path, capsys):
    good = b'{"instruction": "c", "output": "d"}'
    pool, out = tmp_path / "pool.jsonl", tmp_path / "o.jsonl"
    pool.write_bytes(good + b"\n" + bad + b"\n" + good + b"\r\n")
    code, err = run(
        capsys, "select", "--candidates", pool, "--method", "random", "--ratio", "1", "--out", out, "--skip-invalid"
    )
    assert code == 0 and f"{pool}:2" in err
    assert out.read_bytes() == good + b"\n" + good + b"\r\n"


@pytest.mark.parametrize("kind", ["jsonl", "csv", "json"])
def test_utf8_bom_files_are_read_and_the_bom_is_not_part_of_a_record(kind, tmp_path, capsys):
    path, out = tmp_path / f"pool.{kind}", tmp_path / "o.jsonl"
    body = {
        "jsonl": '{"instruction": "é", "output": "b"}\n',
        "csv": "instruction,output\né,b\n",
        "json": '[{"instruction": "é", "output": "b"}]',
    }[kind]
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    assert [r.raw for r in read_records(path).records] == [{"instruction": "é", "output": "b"}]
    assert run(capsys, "select", "--candidates", path, "--method", "random", "--ratio", "1", "--out", out)[0] == 0
    assert json.loads(out.read_text(encoding="utf-8")) == {"instruction": "é", "output": "b"}
    if kind == "jsonl":
        assert out.read_bytes() == body.encode()


# ---------------------------------------------------------------- 6: options checked before slow work


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["score", "--feature", "f.safetensors", "--scores", "s.jsonl", "--ratio", "0"],
            "--ratio must be in (0, 1], not 0.0",
        ),
        (
            ["score", "--feature", "f.safetensors", "--scores", "s.jsonl", "--top", "0"],
            "--top must be at least 1, not 0",
        ),
        (
            ["select", "--target", "gsm8k", "--out", "o.jsonl", "--ratio", "0.1", "--target-size", "1"],
            "--target-size must be at least 2 (a capability feature needs 2 target samples), not 1",
        ),
        (["select", "--target", "gsm8k", "--out", "o.jsonl", "--ratio", "0.1", "--target-size", "0"], "not 0"),
        (["select", "--target", "gsm8k", "--out", "o.jsonl", "--ratio", "0.1", "--target-size", "-3"], "not -3"),
        (["feature", "--target", "gsm8k", "--target-size", "0"], "--target-size must be at least 2"),
        (
            ["select", "--target", "gsm8k", "--out", "o.jsonl", "--ratio", "0.1", "--fire-threshold", "q2"],
            "fire threshold",
        ),
        (["capture", "--worker", "3/2"], "--worker must be I/N"),
        (["capture", "--reductions", "mean,median"], "--reductions: unknown ['median']"),
        (["capture", "--max-length", "0"], "--max-length must be at least 1"),
    ],
)
def test_bad_options_are_refused_before_any_slow_work(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pool = pool_file(tmp_path / "pool.jsonl")
    option = "--data" if argv[0] == "capture" else "--target" if argv[0] == "feature" else "--candidates"
    if argv[0] == "feature":
        argv = [a if a != "gsm8k" else str(pool) for a in argv]
        option_args = []
    else:
        option_args = [option, pool]
    code, err = run(capsys, *argv, *option_args, "--store-dir", tmp_path / "stores")
    assert code == 2 and message in err, err
    assert not (tmp_path / "stores").exists()


def test_top_above_the_pool_size_says_so(tmp_path, capsys):
    pool, out = pool_file(tmp_path / "pool.jsonl"), tmp_path / "o.jsonl"
    code, err = run(capsys, "select", "--candidates", pool, "--method", "random", "--top", "100", "--out", out)
    assert code == 0 and "--top 100 is more than the 6 candidates" in err
    assert len(out.read_text().splitlines()) == 6


# ---------------------------------------------------------------- 10: evaluation edges


def test_eval_with_a_target_inside_the_pool_says_nothing_is_left_to_measure(tmp_path, capsys):
    pool = pool_file(tmp_path / "pool.jsonl", 8)
    code, err = run(
        capsys,
        "eval",
        "--candidates",
        pool,
        "--target",
        pool,
        "--methods",
        "random",
        "--random-seeds",
        "0",
        "--feature-size",
        "2",
        "--heldout-size",
        "3",
        "--out",
        tmp_path / "run",
    )
    assert code == 2
    assert f"target '{pool}': all 3 held-out records are also in the pool or a subset" in err


@pytest.mark.parametrize("cut", [Cut(ratio=1.0), Cut(top=5), Cut(min_score=-np.inf)])
@pytest.mark.parametrize("merge", ["union", "intersection", "mean-z"])
def test_nan_scores_are_never_selected_and_are_counted(cut, merge):
    a = np.array([np.nan, 1.0, 2.0, np.nan, 0.5])
    b = np.array([3.0, 1.0, np.nan, np.nan, 0.5])
    one = select({"a": a}, cut)
    assert one.indices.tolist() == [1, 2, 4] and one.unscored == 2
    both = select({"a": a, "b": b}, cut, merge)
    assert not both.selected[3] and both.unscored == 3
    assert set(both.indices) <= ({0, 1, 2, 4} if merge == "union" else {1, 4})


@pytest.mark.unit
def test_export_warnings_say_what_was_dropped_or_changed():
    """What the CLI prints and the app shows after an export: unscored records, then values JSON could
    not hold (20 named, the rest counted); nothing when nothing was lost or changed."""
    scored = select({"a": np.array([1.0, 2.0])}, Cut(ratio=1.0))
    assert export_warnings(scored, []) == []
    partly = select({"a": np.array([np.nan, 2.0, np.nan])}, Cut(ratio=1.0))
    notes = [f"pool.parquet:row {i}: field 'x': nan exported as null" for i in range(23)]
    (unscored, _), (changed, details) = export_warnings(partly, notes)
    assert unscored == "2 records have no score (NaN, e.g. a response truncated away) and were not selected"
    assert changed == "23 exported values changed because JSON cannot hold them:"
    assert details == notes[:20] + ["… and 3 more"]


@pytest.mark.model
@pytest.mark.parametrize("prompt_words, response_words", [(400, 20), (5, 400), (400, 400)])
def test_truncation_keeps_the_template_start_and_the_response_end(tokenizer, prompt_words, response_words):
    """The bundled tokenizer: a record over --max-length keeps its opening template tokens and its last
    tokens, so the last token is the untruncated record's last token and the response keeps its end."""
    conversation = [
        {"role": "user", "content": "words " * prompt_words + "QUESTION?"},
        {"role": "assistant", "content": "The answer " + "because " * response_words + "END."},
    ]
    data = Dataset("one", [Record({}, "x", "x", conversation)])
    full, cut = tokenize(data, tokenizer, 10**6), tokenize(data, tokenizer, 64)
    ids, start = cut.input_ids[0], cut.response_start[0]
    assert cut.truncated == [True] and len(ids) == 64 and 0 < start < 64
    assert ids[-8:] == full.input_ids[0][-8:]  # the end is kept: the "last token" is the record's own
    text = tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\n")  # the template's opening is kept
    assert "END." in tokenizer.decode(ids[start:]) and "QUESTION" not in tokenizer.decode(ids[start:])
    if response_words < 100:  # a short response is kept whole, right after the generation prompt
        assert ids[start:] == full.input_ids[0][full.response_start[0] :]
        assert tokenizer.decode(ids[:start]).endswith("<|im_start|>assistant\n")
    assert cut.data_hash != tokenize(data, tokenizer, 63).data_hash
