"""Stores and models that trust nothing they read, where a (tiny) model is needed: an edited manifest on
reuse, a truncated GGUF file, a --neuron-module that is not the MLP's down projection (issue 21 items 4, 7, 8)."""

import json

import pytest

from nait_core.capture import CaptureOptions, capture, store_key
from nait_core.cli import main
from nait_core.models import LazyModel, ModelError, bundled_gguf_path, load_model, wrap_model
from nait_core.pipeline import load_data
from nait_core.sketch import Sketch, SketchError
from nait_core.store import StoreError
from nait_testing.models import tiny_config, tiny_model, tiny_records
from nait_testing.mounts import read_only

pytestmark = pytest.mark.model


def test_a_manifest_edited_to_fewer_samples_is_refused_before_any_score(tokenizer, tmp_path, capsys):
    model, records = tiny_model("llama", tokenizer), tiny_records(6)
    options = CaptureOptions(max_length=32, shard_size=2)
    store = capture(model, records, tmp_path, options).store
    manifest = json.loads((store.path / "manifest.json").read_text())
    manifest["data"]["n_samples"] = 4  # shards 0-2 and 2-4 exist: a complete-looking store of 4 records
    (store.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="does not describe this input \\(data.n_samples is 4, the input's is 6\\)"):
        capture(model, records, tmp_path, options)
    # ...and every shard's checksums are bound to the manifest as written: verify calls them foreign too
    assert main(["verify", str(store.path)]) == 2
    assert capsys.readouterr().out.count("belongs to another store") == 2


def test_a_truncated_gguf_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("NAIT_CACHE", str(tmp_path / "cache"))
    short = tmp_path / "short.gguf"
    with open(bundled_gguf_path(), "rb") as source, open(short, "wb") as out:
        out.write(source.read(50 << 20))  # half of the file: "cannot reshape array" before
    with pytest.raises(ModelError, match="short.gguf: cannot read this GGUF file .*truncated or damaged"):
        load_model(str(short))


@pytest.mark.parametrize("wrong", ["mlp.up_proj", "self_attn.o_proj"])
def test_a_neuron_module_that_is_not_the_down_projection_is_refused(wrong):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(tiny_config("llama"))
    with pytest.raises(
        ModelError, match=f"--neuron-module {wrong}: its input is \\[32\\] wide.*size is 48.*'mlp.down_proj'"
    ):
        wrap_model("tiny", model, None, "f", neuron_module=wrong)
    assert wrap_model("tiny", model, None, "f", neuron_module="mlp.down_proj").neurons_per_layer == 48


def test_a_capture_into_a_read_only_folder_fails_before_the_model_loads(tiny_model_dir, tmp_path, capsys):
    records = tmp_path / "pool.jsonl"
    records.write_text("".join(json.dumps({"instruction": f"q{i}", "output": "a"}) + "\n" for i in range(4)))
    (tmp_path / "ro").mkdir()
    with read_only(tmp_path / "ro"):
        argv = ["capture", "--model", str(tiny_model_dir), "--data", str(records), "--store-dir", str(tmp_path / "ro")]
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"nait: error: {tmp_path}/ro: cannot write the store" in err and "pick another --store-dir" in err


def test_a_sketch_wider_than_the_layers_is_refused_before_capture(tokenizer, tmp_path):
    model = tiny_model("llama", tokenizer)  # 48 neurons per layer
    with pytest.raises(SketchError, match="--sketch 64 is wider than this model's 48 neurons per layer"):
        capture(model, tiny_records(4), tmp_path, CaptureOptions(sketch=Sketch(64)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("manifest", [[], {}])
def test_a_select_on_a_store_with_an_ill_typed_manifest_fails_before_the_model_loads(
    tiny_model_dir, tmp_path, capsys, manifest
):
    records = tmp_path / "pool.jsonl"
    records.write_text("".join(json.dumps({"instruction": f"q{i}", "output": "a"}) + "\n" for i in range(4)))
    model = LazyModel(str(tiny_model_dir))
    key, _ = store_key(model, load_data(str(records)), options=CaptureOptions(), shape=False)
    (tmp_path / "stores" / key).mkdir(parents=True)
    (tmp_path / "stores" / key / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="manifest.json: (is a JSON list|field 'model.fingerprint' is missing)"):
        capture(model, load_data(str(records)), tmp_path / "stores", CaptureOptions())
    assert not model.loaded
