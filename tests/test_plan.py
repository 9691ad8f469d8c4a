"""`nait plan` and the fit check before a capture (nait_core/plan.py): figures from a config and a tokenizer
alone, store bytes as the store writes them, the 40 GB default, and a capture refused before it starts."""

import json
import shutil

import numpy as np
import pytest

from nait_core.capture import CaptureOptions
from nait_core.cli import main
from nait_core.data import Dataset, Record
from nait_core.models import LazyModel
from nait_core.plan import (
    DEFAULT_STORE_LIMIT,
    ModelShape,
    default_pool_reductions,
    model_shape,
    store_bytes,
)
from nait_core.store import DEFAULT_REDUCTIONS, PER_SAMPLE, Store
from nait_testing import model_configs
from nait_testing.model_configs import llama_config_json
from nait_testing.models import tiny_records

pytestmark = pytest.mark.model

LLAMA_2_7B = llama_config_json(model_configs.LLAMA_2_7B)
SEVEN_B = ModelShape(layers=32, neurons=11008, hidden=4096, params=6_476_271_616)


def config_only_folder(path, tokenizer, config):
    """A model folder with config.json and tokenizer files and no weights: loading it would fail."""
    tokenizer.save_pretrained(path)
    (path / "config.json").write_text(json.dumps(config))
    assert not list(path.glob("*.safetensors")) and not list(path.glob("*.bin"))
    return path


def write_pool(path, n, text="Say something short."):
    path.write_text(
        "".join(json.dumps({"instruction": f"{text} #{i}", "output": "ok " * (1 + i % 7)}) + "\n" for i in range(n))
    )
    return path


def plan_json(capsys, argv) -> tuple[int, dict]:
    rc = main(["plan", "--json", *argv])
    return rc, json.loads(capsys.readouterr().out)


def test_plan_of_a_config_only_7b_folder_loads_no_weights(tmp_path, tokenizer, capsys):
    """Records, tokens (the bundled tokenizer, as capture tokenizes), the 7B store's bytes at 32 × 11,008
    and the compact alternative, free space and times, from a folder holding no weights at all."""
    folder = config_only_folder(tmp_path / "llama-2-7b", tokenizer, LLAMA_2_7B)
    pool = write_pool(tmp_path / "pool.jsonl", 40)
    rc, plan = plan_json(
        capsys, ["--candidates", str(pool), "--model", str(folder), "--store-dir", str(tmp_path / "s")]
    )
    assert rc == 0 and plan["fits"] is True
    assert plan["records"] == 40 and plan["shape"]["layers"] == 32 and plan["shape"]["neurons"] == 11008
    assert plan["shape"]["params"] == SEVEN_B.params  # decoder stack without embeddings: 13 GFLOP per token
    from nait_core.data import read_records
    from nait_core.tokens import tokenize

    assert (
        plan["tokens"] == plan["pool_tokens"] == int(tokenize(read_records(pool), tokenizer, 1024).lengths.sum()) > 40
    )
    # 3 exact summaries × 32 layers × 11,008 neurons × 2 bytes = 2.11 MB per record, and rds's final hidden
    # state (4,096 float32 values: 16 KiB), plus counts and headers
    per_record = 2_113_536 + 4 * 4096
    assert 40 * per_record < plan["store_bytes"] < 40 * per_record + 4096
    assert plan["compact_store_bytes"] < 40 * (33_000 + 4 * 4096)  # --sketch 256 --reductions mean,last-first
    assert abs(plan["free_bytes"] - shutil.disk_usage(tmp_path).free) < 1e9  # the disk the store would go to
    assert {"H100", "A100", "CPU"} <= {word for row in plan["times"] for word in row["device"].split()}
    assert all(row["basis"].startswith("estimate") for row in plan["times"])  # no 7B figure is measured yet


def test_store_bytes_are_what_a_capture_writes(tmp_path, tiny_model_dir, capsys):
    """The plan's bytes and tokens equal the shard files and token counts a real capture then writes, and a
    second plan finds the store and needs no more disk."""
    pool = tmp_path / "pool.jsonl"
    pool.write_text(
        "".join(
            json.dumps({"instruction": r.conversation[0]["content"], "output": r.conversation[1]["content"]}) + "\n"
            for r in tiny_records(37).records
        )
    )
    argv = ["--model", str(tiny_model_dir), "--store-dir", str(tmp_path / "s"), "--shard-size", "16"]
    rc, before = plan_json(capsys, ["--candidates", str(pool), *argv])
    assert rc == 0 and before["need_bytes"] == before["store_bytes"]
    assert main(["capture", "--data", str(pool), *argv]) == 0
    store = Store.open(capsys.readouterr().out.strip().splitlines()[-1])
    written = sum(f.stat().st_size for f in store.path.glob("shard-*/*"))
    assert before["store_bytes"] == written
    assert before["tokens"] == int(store.per_sample("tokens").sum())
    rc, after = plan_json(capsys, ["--candidates", str(pool), *argv])
    assert rc == 0 and after["stores"][0]["reused"] and after["need_bytes"] == 0


@pytest.mark.unit
def test_per_sample_arrays_are_the_stores():
    from nait_core.plan import PER_SAMPLE_DTYPES

    assert set(PER_SAMPLE_DTYPES) == set(PER_SAMPLE)
    one = store_bytes(1, ModelShape(2, 8, 4, 0), ("mean",))
    assert one > 2 * 8 * 2 + 9  # summaries and counts, plus headers and checksums


def test_a_default_select_of_52k_records_at_7b_stays_under_40_gb(tmp_path, tokenizer):
    """Issue 23: mean,last,first for 52k records at LLaMA-2-7B's shape is 110 GB; the default stores only what
    --method reads past 40 GB (overlap: the token mean, 36.6 GB), unless an old default store is on disk."""
    folder = config_only_folder(tmp_path / "llama-2-7b", tokenizer, LLAMA_2_7B)
    shape = model_shape(str(folder))
    assert shape == SEVEN_B
    pool = Dataset(
        "alpaca-like", [Record({}, f"m:{i}", "x", [{"role": "user", "content": f"q{i}"}]) for i in range(52_002)]
    )
    model, root, options = LazyModel(str(folder)), tmp_path / "stores", CaptureOptions()
    assert store_bytes(len(pool), shape, DEFAULT_REDUCTIONS) > 109e9  # 2.11 MB a record
    chosen, note = default_pool_reductions(model, pool, root, options, shape, "overlap", "last-first")
    assert chosen == ("mean",) and store_bytes(len(pool), shape, chosen) <= DEFAULT_STORE_LIMIT
    assert "storing only mean" in note and "--reductions mean,last,first" in note
    assert default_pool_reductions(model, pool, root, options, shape, "jaccard", "last-first")[0] == ("mean",)
    assert default_pool_reductions(model, pool, root, options, shape, "nait-pca", "last-first")[0] == ("last-first",)
    small = pool.subset(np.arange(1000), "small")  # 2.1 GB: the defaults and the keys stores already have
    assert default_pool_reductions(model, small, root, options, shape, "overlap", "last-first") == (
        DEFAULT_REDUCTIONS,
        None,
    )
    # An old default store of this pool on disk (here a started one): kept, so it is reused or resumed.
    from nait_core.capture import store_key, store_path

    key, manifest = store_key(model, pool, None, options, shape=False)
    Store.create(store_path(root, key), manifest | {"shape": {"layers": 32, "neurons": 11008}})
    assert default_pool_reductions(model, pool, root, options, shape, "overlap", "last-first") == (
        DEFAULT_REDUCTIONS,
        None,
    )


HUGE = LLAMA_2_7B | {
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 1_000_000,
    "num_hidden_layers": 100,
}


@pytest.mark.parametrize("command", ["select", "capture", "plan"])
def test_a_capture_that_cannot_fit_is_refused_before_the_model_loads(tmp_path, tokenizer, capsys, command):
    """A pool larger than the free disk (600 MB per record: 100 layers × 1M neurons × 3 × 2 bytes) is
    refused with the options that would fit, before any weights load (the folder has none)."""
    folder = config_only_folder(tmp_path / "huge", tokenizer, HUGE)
    per_record = store_bytes(1, model_shape(str(folder)), DEFAULT_REDUCTIONS)
    n = int(shutil.disk_usage(tmp_path).free // per_record) + 2
    pool, target = write_pool(tmp_path / "pool.jsonl", n), write_pool(tmp_path / "target.jsonl", 2, "Add two numbers.")
    store_dir = tmp_path / "stores"
    common = ["--model", str(folder), "--store-dir", str(store_dir), "--reductions", "mean,last,first"]
    argv = {
        "select": [
            "select",
            "--candidates",
            str(pool),
            "--target",
            str(target),
            "--out",
            str(tmp_path / "o.jsonl"),
            "--ratio",
            "0.1",
        ],
        "capture": ["capture", "--data", str(pool)],
        "plan": ["plan", "--candidates", str(pool), "--target", str(target)],
    }[command]
    assert main(argv + common) == 2
    err = capsys.readouterr().err
    assert "nait: error: the capture needs about" in err and f"under {store_dir}" in err, err
    assert "--sketch 256 --reductions mean,last-first --exact-sample 0" in err  # fits: 100 × 256 × 2 × 2 B a record
    assert "Could not load" not in err and not store_dir.exists()  # nothing loaded, nothing written
