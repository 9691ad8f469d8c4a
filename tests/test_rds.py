"""`rds` (RDS+) against a plain PyTorch reference on tiny models, and the store's hidden-state array."""

import json

import numpy as np
import pytest
import torch

from nait_core import methods
from nait_core.capture import capture
from nait_core.data import Dataset
from nait_core.pipeline import run_select
from nait_core.scoring import ScoreOptions
from nait_core.selection import Cut
from nait_core.store import HIDDEN, Store, StoreError
from nait_core.tokens import tokenize
from nait_testing.models import tiny_model, tiny_records

pytestmark = pytest.mark.model


def reference_vectors(model, dataset) -> np.ndarray:
    """Each record alone (no padding), through the whole causal LM with output_hidden_states=True: the last
    hidden state, weighted by position + 1 (normalised), L2-normalised."""
    tokens = tokenize(dataset, model.tokenizer, 1024)
    out = []
    with torch.no_grad():
        for ids in tokens.input_ids:
            hidden = model.model(torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0].double()
            weights = torch.arange(1, len(ids) + 1, dtype=torch.float64)
            pooled = (hidden * (weights / weights.sum())[:, None]).sum(0).numpy()
            out.append(pooled / np.linalg.norm(pooled))
    return np.stack(out)


def split(n_pool=13, n_target=4):
    records = tiny_records(n_pool + n_target).records
    return Dataset("pool", records[:n_pool]), Dataset("target", records[n_pool:])


@pytest.mark.parametrize("family", ["llama", "gpt2", "opt"])
def test_rds_matches_a_plain_pytorch_reference(tokenizer, tmp_path, family):
    model = tiny_model(family, tokenizer)
    pool, target = split()
    # one right-padded batch of records of 43 to 67 tokens: padding must never reach a pooled vector
    result = run_select(model, pool, [target], ScoreOptions("rds"), Cut(ratio=0.5), root=tmp_path)
    x, q = reference_vectors(model, pool), reference_vectors(model, target)
    sims = x @ q.T
    np.testing.assert_allclose(result.scores[0].score, sims.max(axis=1), atol=1e-3)
    mean = run_select(model, pool, [target], ScoreOptions("rds", rds_pool="mean"), Cut(ratio=0.5), root=tmp_path)
    np.testing.assert_allclose(mean.scores[0].score, sims.mean(axis=1), atol=1e-3)
    assert result.reports[0].reused is False and mean.reports[0].reused is True  # one capture serves both
    assert not np.allclose(sims.max(axis=1), sims.mean(axis=1))  # the two pools really differ here


def test_a_store_without_hidden_states_serves_neurons_and_refuses_rds_by_name(tokenizer, tmp_path):
    model = tiny_model("llama", tokenizer)
    pool, target = split()
    report = capture(model, pool, tmp_path)
    manifest_file = report.store.path / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    assert manifest["hidden_size"] == 32
    # what an older nait wrote: no hidden_size in the manifest, no hidden array in the shards
    del manifest["hidden_size"]
    manifest_file.write_text(json.dumps(manifest))
    for shard in report.store.shards():
        (shard.path / f"{HIDDEN}.npy").unlink()
        sums = json.loads((shard.path / "checksums.json").read_text())
        del sums["files"][f"{HIDDEN}.npy"]
        (shard.path / "checksums.json").write_text(json.dumps(sums))
    old = Store.open(report.store.path, verify=True)  # still a valid store: the identity did not change
    overlap = run_select(model, pool, [target], ScoreOptions("overlap"), Cut(ratio=0.5), root=tmp_path)
    assert overlap.reports[0].reused
    with pytest.raises(StoreError, match="holds no final hidden states.*delete the folder.*recapture"):
        run_select(model, pool, [target], ScoreOptions("rds"), Cut(ratio=0.5), root=tmp_path)
    # resuming such a store writes shards like its old ones (no hidden array), so it stays whole
    first = old.shards()[0]
    old.remove_shard(first.start, first.end)
    capture(model, pool, tmp_path)
    assert not (first.path / f"{HIDDEN}.npy").exists()
    Store.open(report.store.path, verify=True)


def test_registry_is_what_the_cli_and_eval_offer():
    from nait_core.cli import build_parser
    from nait_core.eval import ARM_METHODS

    parser = build_parser()
    select = parser.parse_args(["select", "--candidates", "a", "--target", "b", "--out", "o", "--ratio", "0.1"])
    assert select.method == "overlap"
    action = next(
        a for p in parser._subparsers._group_actions[0].choices.values() for a in p._actions if a.dest == "method"
    )
    assert tuple(action.choices) == tuple(methods.REGISTRY) == ARM_METHODS
    assert "rds" in methods.names() and methods.get("rds").reads == "hidden" and methods.get("rds").compact
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        methods.get("nope")


def run(capsys, *argv):
    from nait_core.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_select_rds_and_its_refusals(tmp_path, tiny_model_dir, capsys):
    records = tiny_records(10).records
    files = {}
    for name, part in (("pool", records[:7]), ("target", records[7:])):
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text(
            "".join(
                json.dumps({"instruction": r.conversation[0]["content"], "output": r.conversation[1]["content"]}) + "\n"
                for r in part
            )
        )
    common = ["--candidates", files["pool"], "--model", tiny_model_dir, "--store-dir", tmp_path / "s"]
    out = tmp_path / "picked.jsonl"
    code, _, err = run(capsys, "select", *common, "--target", files["target"], "--method", "rds", "--top", "2",
                       "--out", out, "--scores", tmp_path / "scores.jsonl")  # fmt: skip
    assert code == 0, err
    assert "rds (RDS+: final hidden state" in err and len(out.read_text().splitlines()) == 2
    scores = [json.loads(line)["score"] for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert all(-1 <= s <= 1 for s in scores) and len(set(scores)) == 7
    # bad input: a clear `nait: error`, exit 2, before any capture
    code, _, err = run(capsys, "select", *common, "--target", files["target"], "--method", "overlap",
                       "--layers", "5-2", "--top", "2", "--out", tmp_path / "o2.jsonl")  # fmt: skip
    assert code == 2 and "nait: error: --layers must be layer indices or ranges" in err
    code, _, err = run(capsys, "select", *common, "--target", files["target"], "--method", "rds",
                       "--layers", "1", "--top", "2", "--out", tmp_path / "o3.jsonl")  # fmt: skip
    assert code == 2 and "--layers applies to overlap, overlap-balanced, overlap-z, nait-pca, not to rds" in err
    feature = tmp_path / "f.safetensors"
    code, _, err = run(capsys, "score", *common, "--feature", feature, "--method", "rds", "--scores", "-")
    assert code == 2 and "use nait select --method rds --target FILE" in err


def test_explain_refuses_a_method_without_per_neuron_parts_before_any_work(tmp_path, capsys):
    code, _, err = run(capsys, "explain", "shared", "--target", "gsm8k", "--target", "humaneval", "--method", "rds")
    assert code == 2 and "nait explain splits a score into per-neuron parts" in err, err
