"""Hugging Face `datasets` inputs (sources.py): save_to_disk folders, Arrow files and hub ids, read like
JSONL files (same format detection, same errors naming source, row and field), and `nait select` on them."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nait_core.cli import main
from nait_core.data import DataError, read_records
from nait_core.pipeline import load_data
from nait_core.sources import parse_hub
from nait_testing.data import alpaca_rows, save_to_disk, write_arrow_file, write_jsonl

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[1]

# One row of each format, as a mixed pool would hold them.
MIXED = [
    {"instruction": "Add 2 and 3.", "input": "", "output": "5"},
    {"conversations": [{"from": "human", "value": "Name a prime."}, {"from": "gpt", "value": "7"}]},
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris"},
        ]
    },
    {"text": "Plain text is one response span."},
]


def stream_arrow(folder: Path) -> Path:
    """The Arrow stream file inside a save_to_disk folder (what datasets writes)."""
    return next(folder.glob("*.arrow"))


def conversations(dataset):
    return [r.conversation for r in dataset.records]


def test_folder_and_arrow_files_read_like_jsonl(tmp_path):
    expected = read_records(write_jsonl(tmp_path / "mixed.jsonl", MIXED))
    folder = save_to_disk(tmp_path / "mixed_ds", MIXED)
    for spec in (folder, stream_arrow(folder), write_arrow_file(tmp_path / "mixed.arrow", MIXED)):
        data = load_data(str(spec))
        assert conversations(data) == conversations(expected)  # each row's format detected as in JSONL
        assert [r.raw for r in data.records] == MIXED  # the columns other rows have are not added to a row
        assert [r.where for r in data.records] == [f"{spec}:row {i}" for i in range(len(MIXED))]
        assert all(r.raw_line is None for r in data.records)
    assert load_data(str(folder)).name == "mixed_ds"


def test_errors_name_source_row_and_field(tmp_path):
    rows = alpaca_rows(3)
    rows[2]["output"] = "  "
    folder = save_to_disk(tmp_path / "bad_ds", rows)
    arrow = write_arrow_file(tmp_path / "bad.arrow", rows)
    for spec in (folder, arrow):
        with pytest.raises(DataError, match=rf"^{spec}:row 2: field 'output': empty text$"):
            load_data(str(spec))
        data = load_data(str(spec), skip_invalid=True)
        assert len(data) == 2 and data.skipped == [f"{spec}:row 2: field 'output': empty text"]
    numbers = write_arrow_file(tmp_path / "numbers.arrow", [{"instruction": "x", "output": 1}])
    with pytest.raises(DataError, match=r"numbers.arrow:row 0: field 'output': expected text, got int"):
        load_data(str(numbers))
    with pytest.raises(DataError, match="cannot tell the record format"):
        load_data(str(write_arrow_file(tmp_path / "odd.arrow", [{"question": "q", "answer": "a"}])))
    (tmp_path / "broken.arrow").write_bytes(b"not arrow at all")
    with pytest.raises(DataError, match="broken.arrow: not an Arrow IPC stream or file"):
        load_data(str(tmp_path / "broken.arrow"))


def test_folders_that_are_not_one_dataset_are_refused(tmp_path):
    import datasets

    split = datasets.Dataset.from_list(alpaca_rows(3))
    datasets.DatasetDict(train=split, test=split).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(DataError, match=r"dd: holds several splits \(test, train\): give one split's folder"):
        load_data(str(tmp_path / "dd"))
    data = load_data(str(tmp_path / "dd" / "train"))
    assert len(data) == 3 and data.name == "dd-train"
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="plain: is a folder but not one written by save_to_disk"):
        load_data(str(tmp_path / "plain"))


def test_hub_spec_syntax():
    assert parse_hub("hf:tatsu-lab/alpaca") == ("tatsu-lab/alpaca", None, "train")
    assert parse_hub("hf:openai/gsm8k:main:test") == ("openai/gsm8k", "main", "test")
    assert parse_hub("hf:tatsu-lab/alpaca::train") == ("tatsu-lab/alpaca", None, "train")
    for bad in ("hf:", "hf:a:b:c:d"):
        with pytest.raises(DataError, match=r"hf:ID\[:CONFIG\[:SPLIT\]\]"):
            parse_hub(bad)


def _run(code_or_args, env=None, module=False):
    command = [sys.executable, "-m", "nait_core", *code_or_args] if module else [sys.executable, "-c", code_or_args]
    return subprocess.run(
        command,
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def test_uncached_hub_id_offline_is_a_clear_error(tmp_path):
    """No network in tests: offline, a hub id resolves through the (here empty) local cache only."""
    spec = "hf:nait-test/not-cached:main:test"
    result = _run(
        ["select", "--candidates", spec, "--target", "gsm8k", "--ratio", "0.5", "--out", str(tmp_path / "out.jsonl")],
        module=True,
        env={"HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(
        f"nait: error: {spec}: cannot load hub data set 'nait-test/not-cached', config main, "
        "split test (offline: HF_DATASETS_OFFLINE is set, so only the local cache is used)"
    )
    assert not (tmp_path / "out.jsonl").exists()


def test_cached_hub_id_offline_reads_from_the_cache(tmp_path):
    """Offline, `hf:ID` comes from the local cache. The cache is laid out as datasets lays out a hub download
    (<HF_DATASETS_CACHE>/<owner>___<name>/<config>/<version>/<hash>/<name>-<split>.arrow), built from a local file."""
    jsonl = write_jsonl(tmp_path / "rows.jsonl", MIXED)
    code = f"""
import json, os, shutil, datasets
from nait_core.data import DataError
from nait_core.pipeline import load_data
builder = datasets.load_dataset_builder("json", data_files={{"train": {str(jsonl)!r}}}, cache_dir={str(tmp_path / "build")!r})
builder.download_and_prepare()
cached = os.path.join(datasets.config.HF_DATASETS_CACHE, "nait-test___tiny", "default", "0.0.0", "h")
shutil.copytree(builder.cache_dir, cached)
os.rename(os.path.join(cached, "json-train.arrow"), os.path.join(cached, "tiny-train.arrow"))
data = load_data("hf:nait-test/tiny")
try:
    load_data("hf:nait-test/tiny:default:test")
    error = None
except DataError as e:
    error = str(e)
print(json.dumps({{"name": data.name, "where": [r.where for r in data.records], "raw": [r.raw for r in data.records],
                  "error": error}}))
"""
    result = _run(code, env={"HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["name"] == "tiny:train" and out["raw"] == MIXED
    assert out["where"] == [f"hf:nait-test/tiny:row {i}" for i in range(len(MIXED))]
    assert out["error"].startswith(
        "hf:nait-test/tiny:default:test: cannot load hub data set 'nait-test/tiny', config default, split test (offline"
    )
    assert 'Unknown split "test"' in out["error"]


def test_datasets_is_imported_only_for_hub_ids_and_folders(tmp_path):
    arrow = write_arrow_file(tmp_path / "a.arrow", alpaca_rows(2))
    jsonl = write_jsonl(tmp_path / "a.jsonl", alpaca_rows(2))
    folder = save_to_disk(tmp_path / "a_ds", alpaca_rows(2))
    result = _run(
        f"import sys; from nait_core.pipeline import load_data; load_data({str(arrow)!r}); "
        f"load_data({str(jsonl)!r}); print('datasets' in sys.modules); "
        f"load_data({str(folder)!r}); print('datasets' in sys.modules)"
    )
    assert result.stdout.split() == ["False", "True"], result.stderr


@pytest.mark.model
def test_nait_select_on_a_folder_pool_and_arrow_target(tmp_path, tiny_model_dir):
    """The same rows as JSONL files and as a save_to_disk pool + an Arrow target give the same selection;
    the export holds each selected row as one JSON object."""
    pool_rows = alpaca_rows(12) + alpaca_rows(4, topic="product", start=20)
    target_rows = alpaca_rows(4, topic="product", start=40)
    jsonl_pool, jsonl_target = (
        write_jsonl(tmp_path / "pool.jsonl", pool_rows),
        write_jsonl(tmp_path / "t.jsonl", target_rows),
    )
    folder = save_to_disk(tmp_path / "pool_ds", pool_rows)
    for name, target in (
        ("stream", stream_arrow(save_to_disk(tmp_path / "t_ds", target_rows))),
        ("file", write_arrow_file(tmp_path / "t.arrow", target_rows)),
    ):
        outputs = {}
        for kind, pool, tgt in (("jsonl", jsonl_pool, jsonl_target), ("hf", folder, target)):
            out, scores = tmp_path / f"{name}-{kind}.jsonl", tmp_path / f"{name}-{kind}-scores.jsonl"
            assert (
                main(
                    [
                        "select",
                        "--candidates",
                        str(pool),
                        "--target",
                        str(tgt),
                        "--ratio",
                        "0.5",
                        "--model",
                        str(tiny_model_dir),
                        "--device",
                        "cpu",
                        "--dtype",
                        "float32",
                        "--store-dir",
                        str(tmp_path / "stores"),
                        "--out",
                        str(out),
                        "--scores",
                        str(scores),
                    ]
                )
                == 0
            )
            outputs[kind] = (out.read_text(), [json.loads(line)["score"] for line in scores.read_text().splitlines()])
        assert outputs["hf"][1] == outputs["jsonl"][1]
        lines = outputs["hf"][0].splitlines()
        assert len(lines) == 8
        assert outputs["hf"][0] == outputs["jsonl"][0]  # rows as one JSON line each = the JSONL lines here
        chosen = [
            r["index"]
            for r in map(json.loads, (tmp_path / f"{name}-hf-scores.jsonl").read_text().splitlines())
            if r["selected"]
        ]
        assert [json.loads(line) for line in lines] == [pool_rows[i] for i in chosen]


@pytest.mark.model
def test_app_data_picker_reads_a_folder_pool_and_arrow_target(tmp_path, tiny_model_dir, monkeypatch):
    """The sidebar's pool and target boxes take a save_to_disk folder and an Arrow file; the sample explorer
    names a record's place (`<folder>:row N`), and a built-in record its set and row (`mmlu:row N`)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("NAIT_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("NAIT_DEMO_SIZE", "20")
    monkeypatch.setenv("NAIT_TARGET_SIZE", "4")
    monkeypatch.setenv("NAIT_STORE_DIR", str(tmp_path / "stores"))
    monkeypatch.setenv("NAIT_DATA_ROOT", str(tmp_path.parent))  # the app's data root: the tiny model and the data
    folder = save_to_disk(tmp_path / "pool_ds", alpaca_rows(10) + alpaca_rows(6, topic="product", start=20))
    arrow = write_arrow_file(tmp_path / "target.arrow", alpaca_rows(5, topic="product", start=40))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    def load(pool, targets):
        at.text_input(key="sb_pool").set_value(pool)
        at.text_area(key="sb_targets").set_value("\n".join(targets))
        at.button(key="FormSubmitter:sb_form-Load").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        return [c.value for c in at.sidebar.caption]

    captions = load(str(folder), [str(arrow), "gsm8k"])
    assert "**Pool** pool_ds: 16 records" in captions
    assert "**Targets** target-n4-s0 (4), gsm8k-n4-s0 (4)" in captions
    at.switch_page("pages/samples.py").run()
    assert not at.exception and not at.error
    assert any(re.fullmatch(rf"{re.escape(str(folder))}:row \d+", c.value) for c in at.main.caption)

    captions = load("mmlu:anatomy", [str(stream_arrow(folder))])
    assert "**Pool** mmlu:anatomy: 127 records" in captions
    assert "**Targets** data-00000-of-00001-n4-s0 (4)" in captions
    assert any(re.fullmatch(r"mmlu:row \d+", c.value) for c in at.main.caption)
    assert "site-packages" not in " ".join(c.value for c in at.main.caption)


def test_builtin_records_name_their_set_and_row(monkeypatch):
    """`where` of a built-in record is `<set>:row N`, N its row in the packaged file (not a site-packages path)."""
    from nait_core.datasets import _package_file, load_builtin

    monkeypatch.setenv("NAIT_DEMO_SIZE", "60")
    for name in ("gsm8k", "humaneval", "mmlu", "demo"):
        for record in load_builtin(name).records[:50]:
            match = re.fullmatch(r"(gsm8k|humaneval|mmlu):row (\d+)", record.where)
            assert match, record.where
            assert record.source == (match.group(1) if name == "demo" else name)
    gsm8k = load_builtin("gsm8k").records[17]
    lines = _package_file("gsm8k").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[int(gsm8k.where.split()[-1])])["question"] == gsm8k.raw["instruction"]
