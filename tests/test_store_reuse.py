"""Stores found and reused without the model (issue 9 item 3), repaired by the capture that needs them
(issue 10 item 7), and derived features checked like shards (issue 10 item 2), on a tiny Llama saved as a
real model folder."""

import json
import struct
import warnings

import numpy as np
import pytest
import torch

from nait_core import models
from nait_core.capture import CaptureOptions, capture, find_store
from nait_core.cli import main
from nait_core.models import LazyModel, load_model, model_fingerprint
from nait_core.pipeline import feature_for, feature_path, load_data
from nait_core.store import CacheWarning, Store, StoreError

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    """A tiny random Llama with the bundled model's tokenizer and chat template, saved as a model folder."""
    return tiny_model_dir


def write_records(path, n, topic="sum"):
    path.write_text(
        "".join(
            json.dumps(
                {
                    "instruction": f"What is the {topic} of {i} and {i * 7 % 13}?",
                    "output": f"It is {i + i * 7 % 13}. " * (1 + i % 3),
                }
            )
            + "\n"
            for i in range(n)
        )
    )
    return path


def forbid_loading(monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def boom(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(models, "load_model", boom)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", boom)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", boom)


def test_second_select_never_loads_the_model(model_dir, tmp_path, monkeypatch):
    pool, target = write_records(tmp_path / "pool.jsonl", 40), write_records(tmp_path / "t.jsonl", 6, "product")
    common = [
        "select",
        "--model",
        str(model_dir),
        "--candidates",
        str(pool),
        "--target",
        str(target),
        "--ratio",
        "0.25",
        "--max-length",
        "64",
        "--store-dir",
        str(tmp_path / "stores"),
    ]
    assert main(common + ["--out", str(tmp_path / "a.jsonl"), "--scores", str(tmp_path / "a.scores")]) == 0
    forbid_loading(monkeypatch)
    for method in ("overlap", "nait-pca"):  # pool mean and target feature come from checksummed caches
        assert (
            main(
                common
                + [
                    "--method",
                    method,
                    "--out",
                    str(tmp_path / f"b-{method}.jsonl"),
                    "--scores",
                    str(tmp_path / f"b-{method}.scores"),
                ]
            )
            == 0
        )
    assert main(common + ["--out", str(tmp_path / "c.jsonl"), "--scores", str(tmp_path / "c.scores")]) == 0
    assert (tmp_path / "c.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
    assert (tmp_path / "c.scores").read_bytes() == (tmp_path / "a.scores").read_bytes()
    # The same records from another file (here: the same lines with CRLF) find the same store.
    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes(pool.read_bytes().replace(b"\n", b"\r\n"))
    found = {
        name: find_store(
            LazyModel(str(model_dir)), load_data(str(path)), tmp_path / "stores", CaptureOptions(max_length=64)
        )
        for name, path in (("lf", pool), ("crlf", crlf))
    }
    assert found["crlf"] is not None and found["crlf"].n_samples == 40
    assert found["crlf"].path == found["lf"].path


def test_fingerprint_comes_from_files_and_follows_them(model_dir, tmp_path):
    import shutil

    from transformers import AutoModelForCausalLM

    assert model_fingerprint(str(model_dir)) == load_model(str(model_dir)).fingerprint  # equal before and after loading
    assert model_fingerprint(str(model_dir), "mlp.down_proj") != model_fingerprint(str(model_dir))
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    assert model_fingerprint(str(copy)) == model_fingerprint(str(model_dir))  # content, not location
    model = AutoModelForCausalLM.from_pretrained(copy)
    with torch.no_grad():
        model.model.layers[1].mlp.down_proj.weight[0, 0] += 1.0  # a fine-tuned weight, same file size
    model.save_pretrained(copy)
    tuned = model_fingerprint(str(copy))
    assert tuned != model_fingerprint(str(model_dir))
    config = json.loads((copy / "tokenizer_config.json").read_text())
    template = copy / "chat_template.jinja"
    if template.exists():
        template.write_text(template.read_text() + "{# another template #}")
    else:
        config["chat_template"] = (config.get("chat_template") or "") + "{# another template #}"
        (copy / "tokenizer_config.json").write_text(json.dumps(config))
    assert model_fingerprint(str(copy)) != tuned  # a changed chat template is a changed capture


def test_interrupted_small_capture_resumes_without_redoing_work(model_dir, tmp_path):
    """100 records (< 512): the default shard size (32 here) keeps finished shards across an interruption."""
    data = load_data(str(write_records(tmp_path / "pool.jsonl", 100)))
    model = LazyModel(str(model_dir))
    options = CaptureOptions(max_length=64)

    def interrupt(progress):
        if progress.samples_done >= 40:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        capture(model, data, tmp_path / "stores", options, interrupt)
    seen = []
    report = capture(model, data, tmp_path / "stores", options, seen.append)
    assert report.store.shard_size == 32 and seen[-1].samples_total == 100 - 32  # shard 0 was kept
    fresh = capture(model, data, tmp_path / "fresh", options).store
    np.testing.assert_array_equal(report.store.rows("mean", range(100)), fresh.rows("mean", range(100)))


def test_a_damaged_shard_is_recaptured_by_the_same_command(model_dir, tmp_path, capsys):
    pool = write_records(tmp_path / "pool.jsonl", 12)
    args = [
        "capture",
        "--model",
        str(model_dir),
        "--data",
        str(pool),
        "--max-length",
        "64",
        "--shard-size",
        "4",
        "--store-dir",
        str(tmp_path / "stores"),
    ]
    assert main(args) == 0
    store = Store.open(capsys.readouterr().out.strip())
    before = store.rows("last", range(12))
    shard = store.path / "shard-000000004-000000008"

    raw = bytearray((shard / "last.npy").read_bytes())  # 1. one flipped byte: same size, only a checksum sees it
    raw[-3] ^= 0x40
    (shard / "last.npy").write_bytes(bytes(raw))
    assert main(["verify", str(store.path)]) == 2
    shown = capsys.readouterr()
    assert "shard-000000004-000000008/last.npy: checksum mismatch" in shown.out and "nait verify --repair" in shown.err
    assert main(args + ["--verify"]) == 0  # the capture with --verify replaces just that shard
    assert "removing shard 4-8" in capsys.readouterr().err
    np.testing.assert_array_equal(Store.open(store.path, verify=True).rows("last", range(12)), before)

    (shard / "mean.npy").write_bytes((shard / "mean.npy").read_bytes()[:-10])  # 2. truncated: caught at open
    with pytest.raises(StoreError, match="shard-000000004-000000008/mean.npy.*nait verify --repair"):
        Store.open(store.path)
    assert main(args) == 0  # rerunning the same command repairs it (it used to repeat the error forever)
    np.testing.assert_array_equal(Store.open(store.path, verify=True).rows("last", range(12)), before)

    (shard / "tokens.npy").write_bytes(b"junk")  # 3. `nait verify --repair`, then the same command
    assert main(["verify", "--repair", str(store.path)]) == 0
    assert Store(store.path, store.manifest).missing_ranges() == [(4, 8)]
    assert main(args) == 0 and main(["verify", str(store.path)]) == 0


def _flip_tensor_byte(path, tensor):
    raw = bytearray(path.read_bytes())
    header_len = struct.unpack("<Q", raw[:8])[0]
    start, _ = json.loads(raw[8 : 8 + header_len])[tensor]["data_offsets"]
    raw[8 + header_len + start + 2] ^= 0x10
    path.write_bytes(bytes(raw))


def test_a_damaged_cached_feature_is_detected_and_rebuilt(model_dir, tmp_path):
    data = load_data(str(write_records(tmp_path / "t.jsonl", 6)))
    store = capture(LazyModel(str(model_dir)), data, tmp_path / "stores", CaptureOptions(max_length=64)).store
    built = feature_for(store, tmp_path / "stores")
    path = feature_path(store)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(feature_for(store, tmp_path / "stores").profile, built.profile)  # reused as is
    _flip_tensor_byte(path, "profile")
    assert [name for name, _ in store.damaged_caches()] == ["feature"]
    with pytest.warns(CacheWarning, match="feature.*fails its checksum"):
        again = feature_for(store, tmp_path / "stores")
    np.testing.assert_array_equal(again.profile, built.profile)
    assert not store.damaged_caches()


def test_capture_to_a_url_is_reused_without_the_model(model_dir, tmp_path, monkeypatch):
    import shutil
    import uuid

    monkeypatch.setenv("NAIT_CACHE", str(tmp_path / "cache"))
    data = load_data(str(write_records(tmp_path / "pool.jsonl", 10)))
    root = f"memory://bucket-{uuid.uuid4().hex[:8]}/stores"
    first = capture(LazyModel(str(model_dir)), data, root, CaptureOptions(max_length=64, shard_size=4)).store
    assert str(first.location).startswith(root)
    values = first.rows("mean", range(10))
    shutil.rmtree(tmp_path / "cache" / "stores")  # another machine: nothing local
    forbid_loading(monkeypatch)
    again = capture(LazyModel(str(model_dir)), data, root, CaptureOptions(max_length=64))
    assert again.reused
    np.testing.assert_array_equal(again.store.rows("mean", range(10)), values)
