"""Explanations (nait_core/explain.py) on synthetic stores, tiny random models and the bundled tokenizer."""

import numpy as np
import pytest

from nait_core import explain as ex
from nait_core.features import build_feature
from nait_core.scoring import ScoreOptions, Scores, explain, score_store
from nait_core.selection import Cut, select
from nait_core.store import Store
from nait_testing.models import tiny_model

pytestmark = pytest.mark.unit


def planted_store(path, n=40, layers=3, neurons=8, seed=0, bumps=(), fingerprint="f"):
    """A store of random token means where neuron (1, 0) is massive in every sample (large, nearly constant)
    and each (row, layer, neuron) in `bumps` is raised by 3 for that row."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, layers, neurons))
    x[:, 1, 0] = 50 + 0.01 * rng.normal(size=n)
    for row, layer, neuron in bumps:
        x[row, layer, neuron] += 3
    manifest = {
        "model": {"name": "m", "fingerprint": fingerprint, "dtype": "float32"},
        "data": {"name": path.name, "hash": f"h{seed}", "n_samples": n},
        "options": {"reductions": ["mean"], "max_length": 8},
        "shape": {"layers": layers, "neurons": neurons},
        "shard_size": 16,
    }
    store = Store.create(path, manifest)
    for start, end in store.shard_ranges():
        store.write_shard(
            start,
            end,
            {
                "mean": x[start:end].astype(np.float16),
                "tokens": np.arange(start, end, dtype=np.int32),
                "response_tokens": np.ones(end - start, np.int32),
                "truncated": np.zeros(end - start, bool),
            },
        )
    return Store.open(path), x.astype(np.float16).astype(np.float32)


@pytest.fixture
def pool(tmp_path):
    return planted_store(tmp_path / "pool", bumps=[(5, 2, 3)])


def test_pool_std_is_cached_and_exact(pool):
    store, x = pool
    std = ex.pool_std(store)
    np.testing.assert_allclose(std, x.std(axis=0), rtol=1e-3, atol=1e-4)
    assert (store.path / "pool-std-mean.npy").exists()
    np.testing.assert_array_equal(ex.pool_std(store), std)


def test_contrastive_ranking_ignores_massive_neurons(pool):
    store, x = pool
    mean, std = store.mean("mean"), ex.pool_std(store)
    raw_top = np.unravel_index(np.argmax(x[5]), x[5].shape)
    assert raw_top == (1, 0)  # by raw size the massive neuron tops this record, as it tops every record
    table = ex.contrastive_top(x[5], mean, std, k=3)
    assert table["neuron"].iloc[0] == "L2.N3"  # what sets record 5 apart
    assert "L1.N0" not in set(table["neuron"])
    assert table["z vs pool"].is_monotonic_decreasing
    assert table["activation"].iloc[0] == pytest.approx(x[5, 2, 3])


def test_robust_limits_are_not_set_by_outliers():
    z = np.random.default_rng(0).normal(size=(30, 1536))
    z[28, 1095] = 1000.0
    lo, hi = ex.robust_limits(z)
    assert -4 < lo < -1.5 and 1.5 < hi < 4 and lo == pytest.approx(-hi)
    lo, hi = ex.robust_limits(z + 7, centre=7)
    assert (lo + hi) / 2 == pytest.approx(7)


@pytest.mark.model
def test_template_tokens_are_marked_and_do_not_set_the_scale(tokenizer):
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Add two and three."}, {"role": "assistant", "content": "Five."}], tokenize=False
    )
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    mask = ex.template_mask(tokenizer, ids)
    pieces = [tokenizer.decode([i]) for i in ids]
    marked = {p for p, m in zip(pieces, mask) if m}
    assert {"<|im_start|>", "<|im_end|>", "user", "ass", "istant", "\n"} <= marked  # role headers too
    assert not mask[pieces.index(" three")] and not mask[pieces.index("Five")]
    values = np.where(mask, 190.0, 30.0)
    values[pieces.index("Five")] = 31.0
    assert ex.token_limit(values, mask) == 31.0  # the attention-sink spike does not set the scale


def test_share_note_explains_the_union():
    masks = {
        "a": np.r_[np.ones(10, bool), np.zeros(90, bool)],
        "b": np.r_[np.zeros(5, bool), np.ones(10, bool), np.zeros(85, bool)],
        "c": np.r_[np.zeros(90, bool), np.ones(10, bool)],
    }
    note = ex.share_note(masks, Cut(ratio=0.1), "union")
    assert note.startswith("union of 3 targets at 10% each = 25.0% of the pool (25 records)")
    assert "10 + 10 + 10" in note and "5 of the picks are shared" in note
    assert ex.share_note(masks, Cut(ratio=0.1), "intersection").startswith(
        "intersection of 3 targets at 10% each = 0.0%"
    )
    assert ex.share_note({"a": masks["a"]}, Cut(ratio=0.1), "union") == ""
    selection = select({k: m.astype(float) for k, m in masks.items()}, Cut(top=10))
    assert f"{selection.selected.mean():.1%}" in ex.share_note(masks, Cut(top=10), "union")


def test_counts_in_prose_agree_with_their_number(tmp_path, pool):
    """Issue 25's minor items: "1 neurons mark out every target", "(1 records)" read as bugs beside the number."""
    one = {"a": np.r_[True, np.zeros(99, bool)], "b": np.r_[True, np.zeros(99, bool)]}
    assert "(1 record):" in ex.share_note(one, Cut(top=1), "intersection")
    store, _ = pool
    a, _ = planted_store(tmp_path / "a", n=12, seed=1, bumps=[(i, 0, 2) for i in range(12)])
    b, _ = planted_store(tmp_path / "b", n=12, seed=2, bumps=[(i, 0, 2) for i in range(12)])
    features = [build_feature(a, "a", reductions=()), build_feature(b, "b", reductions=())]
    scores = score_store(store, features, ScoreOptions())
    view = ex.shared_view(store, features, scores, ScoreOptions(), k=2, n=10, candidates=5)
    assert list(view.neurons["neuron"]) == ["L0.N2"]
    assert "1 neuron marks out every target" in view.text()


def test_shared_neurons_and_joint_candidates_say_none_when_there_is_none():
    """Issue 25: "50 neurons mark out every one of these targets" stood under a joint z of about 0.25, and
    the joint list held records scoring below the pool for a target. A weak mark is no mark; a record below
    the pool's mean for one target is not jointly high."""
    marked = {"a": np.full((2, 3), 0.25), "b": np.full((2, 3), 0.3)}
    marked["a"][1, 2], marked["b"][1, 2] = 2.0, 1.5
    table = ex.shared_neurons(marked, n=5)
    assert list(table["neuron"]) == ["L1.N2"] and table["joint z"].iloc[0] == pytest.approx(1.5)
    marked["b"][1, 2] = 0.9
    assert ex.shared_neurons(marked, n=5).empty
    a = np.array([0.9, 0.8, 0.1, -0.5, 0.0])
    b = np.array([-0.2, 0.7, 0.6, 0.9, 0.1])  # row 0 ranks first for a, but sits below b's pool mean
    scores = [Scores(None, x[:, None], np.zeros(1), np.ones(1)) for x in (a, b)]
    assert list(ex.joint_candidates(scores, k=3)) == [1]
    assert len(ex.joint_candidates([scores[0], Scores(None, -a[:, None], np.zeros(1), np.ones(1))])) == 0


def test_shared_view_finds_planted_shared_neurons(tmp_path, pool):
    store, x = pool
    # Two targets share neuron (0, 2) and (2, 5); each has one of its own.
    a, _ = planted_store(
        tmp_path / "a", n=12, seed=1, bumps=[(i, l, j) for i in range(12) for l, j in [(0, 2), (2, 5), (1, 7)]]
    )
    b, _ = planted_store(
        tmp_path / "b", n=12, seed=2, bumps=[(i, l, j) for i in range(12) for l, j in [(0, 2), (2, 5), (2, 1)]]
    )
    features = [build_feature(a, "a", reductions=()), build_feature(b, "b", reductions=())]
    options = ScoreOptions()
    scores = score_store(store, features, options)
    view = ex.shared_view(store, features, scores, options, k=2, n=10, candidates=5)
    assert set(view.neurons["neuron"].head(2)) == {"L0.N2", "L2.N5"}
    assert (view.neurons["joint z"] >= ex.MARK_Z).all() and view.neurons["joint z"].is_monotonic_decreasing
    layers = view.layers.set_index("layer")
    assert layers.loc[0, "shared in top 2"] >= 1 and layers.loc[2, "shared in top 2"] >= 1
    mean = store.mean("mean")
    pa, pb = features[0].profile[1] - mean[1], features[1].profile[1] - mean[1]
    assert layers.loc[1, "cos a · b"] == pytest.approx(pa @ pb / np.linalg.norm(pa) / np.linalg.norm(pb), rel=1e-5)
    # The candidates: jointly high, and the shared neurons' share equals their summed contributions / score.
    rows = view.candidates["row"].to_numpy()
    joint = np.minimum(*[np.argsort(np.argsort(-s.score)) for s in scores])
    assert set(rows) == set(np.argsort(joint, kind="stable")[:5]) or len(set(rows)) == 5
    parts = explain(store, rows, features[0], options)
    shared = view.neurons
    expected = parts[:, shared["layer"], shared["index"]].sum(1) / parts.reshape(5, -1).sum(1)
    np.testing.assert_allclose(view.candidates["shared share: a"], expected, rtol=1e-5)
    assert "shared neurons of a × b" in view.text() and view.to_dict()["neurons"][0]["neuron"] in {"L0.N2", "L2.N5"}
    with pytest.raises(ValueError, match="two targets"):
        ex.shared_view(store, features[:1], scores[:1], options)


def test_nearest_targets_are_centred_cosines(tmp_path, pool):
    store, x = pool
    t, tx = planted_store(tmp_path / "t", n=6, seed=3)
    table = ex.nearest_targets(store, 5, {"t": t}, k=3)
    c = store.mean("mean").ravel()
    q = x[5].ravel() - c
    sims = (tx.reshape(6, -1) - c) @ q / (np.linalg.norm(tx.reshape(6, -1) - c, axis=1) * np.linalg.norm(q))
    assert list(table["row"]) == list(np.argsort(-sims)[:3])
    np.testing.assert_allclose(table["similarity"], np.sort(sims)[::-1][:3], rtol=1e-4)


@pytest.mark.model
@pytest.mark.parametrize("family", ["llama", "gemma", "gpt2"])
def test_logit_effects_follow_the_weights(family, tokenizer):
    """Promoted and suppressed tokens: down-projection column × final norm scale through the unembedding."""
    model = tiny_model(family, tokenizer)
    net = model.model
    layer, index = 1, 7
    effects = ex.logit_effects(model, layer, index, k=5)
    module = model.neuron_modules[layer]
    column = module.weight[index] if family == "gpt2" else module.weight[:, index]
    norm = net.transformer.ln_f if family == "gpt2" else net.model.norm
    if family == "gpt2":
        column = column - column.mean()
    scale = (1 + norm.weight) if family == "gemma" else norm.weight
    logits = (net.get_output_embeddings().weight @ (column * scale)).detach().numpy()
    best, worst = np.argsort(-logits)[:5], np.argsort(logits)[:5]
    assert [t for t, _ in effects.promoted] == [tokenizer.decode([int(i)]) for i in best]
    assert [t for t, _ in effects.suppressed] == [tokenizer.decode([int(i)]) for i in worst]
    np.testing.assert_allclose([v for _, v in effects.promoted], logits[best], rtol=1e-4)
    assert "direct path" in effects.note
    assert ("LayerNorm bias" in effects.note) == (family == "gpt2")


@pytest.mark.model
def test_neuron_card_live_tokens(tokenizer, tmp_path):
    from nait_core.datasets import load_builtin

    model = tiny_model("llama", tokenizer)
    records = load_builtin("gsm8k").records[:4]
    values = np.array([0.1, 0.9, 0.5, -0.2])
    card = ex.neuron_card(model, 2, 3, {"pool": (values, records)}, threshold=0.3, threshold_text="0.3", k=2, live=1)
    assert list(card.top["row"]) == [1, 2] and card.density == {"pool": 0.5}
    assert list(card.firing) == [("pool", 1)]
    fired = card.firing[("pool", 1)]
    assert fired.template[0] and len(fired.tokens) == len(fired.values)
    live = ex.firing_tokens(model, records[1], 2, 3)
    np.testing.assert_allclose(fired.values, live.values)
    assert all(not fired.template[fired.tokens.index(t)] for t, _ in fired.firing())
    data = card.to_dict()
    assert data["neuron"] == "L2.N3" and len(data["promotes"]) == 10 and data["top_records"][0]["firing_tokens"]
    assert "fires on:" in card.text()
    with pytest.raises(ValueError, match="outside"):
        ex.neuron_card(model, 9, 0, {"pool": (values, records)}, 0.3, "0.3")
