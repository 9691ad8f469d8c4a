"""Compact (sketched) stores and the matrix-form scoring engine, on synthetic stores and a tiny model."""

import json

import numpy as np
import pytest
import torch

from nait_core.capture import CaptureOptions, Reducer, capture, forward
from nait_core.data import sample_rows
from nait_core.features import build_feature
from nait_core.scoring import ScoreOptions, explain, score_store
from nait_core.sketch import Sketch, SketchError, bytes_per_sample, compact_copy, exact_sample_store, largest_k
from nait_core.tokens import pad_batch, tokenize
from nait_testing.models import tiny_model, tiny_records
from nait_testing.reference import score_store_per_neuron
from nait_testing.stores import synthetic_store

pytestmark = pytest.mark.unit

ALL = ("mean", "last", "first")
METHODS = [
    ScoreOptions(),
    ScoreOptions(centre=False),
    ScoreOptions(method="jaccard", fire_threshold="0.1"),
    ScoreOptions(method="jaccard", fire_threshold="q0.7"),
    ScoreOptions(method="nait-pca"),
    ScoreOptions(method="nait-pca", layer_norm="z"),
    ScoreOptions(method="nait-pca", reduction="mean"),
]


@pytest.fixture
def stores(tmp_path):
    # Shards of 7 rows and a pool mean far from 0: several chunks, and centring that matters.
    pool, data = synthetic_store(tmp_path / "pool", n=40, layers=3, neurons=24, reductions=ALL, shard_size=7, shift=0.4)
    target, _ = synthetic_store(tmp_path / "target", n=6, layers=3, neurons=24, reductions=ALL, seed=1, shift=0.6)
    return pool, data, target


@pytest.mark.parametrize("options", METHODS, ids=lambda o: o.describe())
def test_matrix_scores_equal_the_per_neuron_engine(options, stores, tmp_path):
    pool, _, target = stores
    features = [build_feature(target, "t"), build_feature(pool, "p", indices=range(5, 15))]
    if options.method == "jaccard" and options.fire_threshold == "q0.7":
        features = features[:1]  # the pool-built feature fires for no neuron at its own q0.7
    new = score_store(pool, features, options)
    old = score_store_per_neuron(pool, features, options)
    for a, b in zip(new, old):
        np.testing.assert_allclose(a.per_layer, b.per_layer, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.score, b.score, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.layer_scale, b.layer_scale, rtol=1e-5)


def test_matrices_are_a_pure_function_of_their_arguments():
    a, b = Sketch(16, seed=3), Sketch(16, seed=3)
    np.testing.assert_array_equal(a.matrix(2, 100), b.matrix(2, 100))
    assert not np.array_equal(a.matrix(2, 100), a.matrix(1, 100))  # layers differ
    assert not np.array_equal(a.matrix(2, 100), Sketch(16, seed=4).matrix(2, 100))  # seeds differ
    sparse = Sketch(16, kind="achlioptas").matrix(0, 3000)
    np.testing.assert_allclose(np.unique(sparse), [-np.sqrt(3 / 16), 0, np.sqrt(3 / 16)], rtol=1e-6)
    assert abs((sparse == 0).mean() - 2 / 3) < 0.02
    with pytest.raises(SketchError, match="kind"):
        Sketch(16, kind="fourier")


@pytest.mark.parametrize("kind", ["gaussian", "achlioptas"])
def test_projection_preserves_inner_products_in_expectation(kind):
    rng = np.random.default_rng(0)
    x, v = rng.normal(size=(1, 200)), rng.normal(size=(1, 200))
    v[0] += x[0]  # correlated, so x·v is far from 0
    estimates = [
        float(Sketch(32, seed=s, kind=kind).project(x)[0] @ Sketch(32, seed=s, kind=kind).project(v)[0])
        for s in range(400)
    ]
    exact = float(x[0] @ v[0])
    spread = np.sqrt((exact**2 + (x**2).sum() * (v**2).sum()) / 32)  # one estimate's std, Gaussian entries
    assert abs(np.mean(estimates) - exact) < 4 * spread / np.sqrt(400)  # unbiased: no rescaling needed
    assert 0.7 * spread < np.std(estimates) < 1.3 * spread


def test_compact_store_scores_are_the_same_inner_products_in_sketch_space(stores, tmp_path):
    pool, _, target = stores
    sketch = Sketch(8, seed=5)
    compact = compact_copy(tmp_path / "compact", pool, sketch)
    assert compact.width == 8 and compact.n_neurons == 24
    assert compact.rows("mean", [0]).shape == (1, 3, 8)
    feature = build_feature(target, "t")  # targets stay exact
    y = compact.rows("mean", range(40)).reshape(40, -1).astype(np.float64)
    c = y.mean(0)
    p = sketch.project(feature.profile).ravel()
    expected = (y - c) @ (p - c) / (np.linalg.norm(y - c, axis=1) * np.linalg.norm(p - c))
    [got] = score_store(compact, [feature], ScoreOptions())
    np.testing.assert_allclose(got.score, expected, rtol=1e-4, atol=1e-5)
    delta = compact.rows("last", range(40)) - compact.rows("first", range(40))
    v = sketch.project(feature.direction("last-first"))
    [pca] = score_store(compact, [feature], ScoreOptions(method="nait-pca"))
    np.testing.assert_allclose(pca.score, np.einsum("nlk,lk->n", delta, v), rtol=1e-4, atol=1e-5)
    with pytest.raises(SketchError, match="jaccard cannot be computed from the compact store"):
        score_store(compact, [feature], ScoreOptions(method="jaccard"))
    with pytest.raises(SketchError, match="exact values"):
        explain(compact, [0], feature, ScoreOptions())


def _spearman(a, b):
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


CALIBRATED = [ScoreOptions(), ScoreOptions(centre=False), ScoreOptions(method="nait-pca")]
CALIBRATED += [ScoreOptions(method="nait-pca", layer_norm="z")]


@pytest.mark.parametrize("options", CALIBRATED, ids=lambda o: o.describe())
def test_exact_sample_calibrates_compact_scores(options, tmp_path):
    # Activations lie near a few patterns (as real ones do): with K = 32 of 128 neurons per layer the plain
    # projection is noisy against a PCA direction, and the read-out fitted on 120 exact records is not.
    pool, _ = synthetic_store(
        tmp_path / "pool", n=400, layers=4, neurons=128, reductions=ALL, shard_size=64, shift=0.3, rank=5
    )
    target, _ = synthetic_store(
        tmp_path / "target", n=12, layers=4, neurons=128, reductions=ALL, seed=1, shift=0.5, rank=5
    )
    feature = build_feature(target, "t")
    exact = score_store(pool, [feature], options)[0].score
    sketch = Sketch(32, seed=2)
    plain = compact_copy(tmp_path / "plain" / "pool", pool, sketch)
    compact = compact_copy(tmp_path / "calibrated" / "pool", pool, sketch, exact_sample=120)
    sample, rows = exact_sample_store(compact)
    np.testing.assert_array_equal(rows, sample_rows(400, 120, seed=2))
    np.testing.assert_array_equal(sample.rows("last", range(120)), pool.rows("last", rows))
    assert exact_sample_store(plain) is None
    [uncalibrated] = score_store(plain, [feature], options)
    [calibrated] = score_store(compact, [feature], options)
    # Centred overlap's norm ‖x − c‖ is still the projection's estimate (relative error √(2 / (layers·K)),
    # 12 % here, 1.6 % at 30 layers × K = 256), so it gains less on this tiny shape.
    assert _spearman(calibrated.score, exact) > (0.9 if options.method == "overlap" and options.centre else 0.99)
    assert _spearman(calibrated.score, exact) > _spearman(uncalibrated.score, exact) + 0.01
    if options.method == "nait-pca" and options.layer_norm == "none":  # a read-out of exact values, intercepts too
        assert np.abs(calibrated.score - exact).max() < 0.1 * np.ptp(exact)
    # The reference engine (per-neuron contributions) sums to the same per-layer values.
    [reference] = score_store_per_neuron(compact, [feature], options)
    np.testing.assert_allclose(calibrated.per_layer, reference.per_layer, rtol=1e-4, atol=1e-5)


def test_sizes_and_sample_rows():
    assert bytes_per_sample(32, 11008, 3) == 2_113_536
    assert bytes_per_sample(32, 11008, 3, k=128) == 24_576 <= 32 * 1024
    assert largest_k(32, 3, 32 * 1024) == 170
    assert bytes_per_sample(32, 11008, 2, k=256) == 32 * 1024  # the recommended mean,last-first at K = 256
    rows = sample_rows(1000, 50, seed=2)
    assert len(set(rows)) == 50 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, sample_rows(1000, 50, seed=2))
    assert len(sample_rows(10, 50)) == 10


@pytest.mark.model
def test_cli_suggests_sketch_when_exact_would_not_fit(tokenizer, capsys, tmp_path):
    from nait_core.cli import build_parser, warn_if_exact_too_big

    model = tiny_model("llama", tokenizer)
    args = build_parser().parse_args(["capture", "--data", "x.jsonl", "--store-dir", str(tmp_path)])
    warn_if_exact_too_big(args, model, 10**6)  # 1e6 × 3 × 3 × 48 × 2 B = 0.86 GB: fits, no warning
    assert capsys.readouterr().err == ""
    warn_if_exact_too_big(args, model, 10**12)  # 864 TB: larger than any disk here
    err = capsys.readouterr().err
    assert "warning: an exact store of 1,000,000,000,000 samples" in err and "--sketch 256" in err
    args = build_parser().parse_args(["capture", "--data", "x.jsonl", "--store-dir", str(tmp_path), "--sketch", "64"])
    warn_if_exact_too_big(args, model, 10**12)
    assert capsys.readouterr().err == ""


@pytest.mark.model
def test_capture_time_projection_equals_post_hoc_projection(tokenizer, tmp_path):
    model = tiny_model("llama", tokenizer)
    records = tiny_records(6)
    sketch = Sketch(6, seed=1)
    # The hook itself: projecting on the device equals projecting the same float32 rows afterwards.
    tokens = tokenize(records, tokenizer, 64)
    ids, mask = pad_batch(tokens.input_ids, tokenizer.pad_token_id, "cpu")
    starts = torch.tensor(tokens.response_start)
    outs = {}
    for name, s in (("exact", None), ("compact", sketch)):
        reducer = Reducer(model, ALL, s)
        with torch.inference_mode(), reducer.hooks():
            reducer.set_batch(mask, starts)
            forward(model, ids, mask)
        outs[name] = reducer.out.numpy().copy()
    assert outs["compact"].shape == (3, 6, 3, 6) and outs["exact"].shape == (3, 6, 3, 48)
    np.testing.assert_allclose(outs["compact"], sketch.project(outs["exact"]), rtol=1e-5, atol=1e-5)

    # The stores: compact capture vs the exact store projected post hoc, within float16 rounding.
    exact = capture(model, records, tmp_path, CaptureOptions(shard_size=4)).store
    compact = capture(model, records, tmp_path, CaptureOptions(shard_size=4, sketch=sketch, exact_sample=3)).store
    manifest = json.loads((compact.path / "manifest.json").read_text())
    assert manifest["options"]["sketch"] == {"k": 6, "seed": 1, "kind": "gaussian"}
    assert compact.width == 6 and exact.width == 48
    for reduction in ALL:
        post_hoc = sketch.project(exact.rows(reduction, range(6)))
        scale = np.abs(post_hoc).max()
        np.testing.assert_allclose(compact.rows(reduction, range(6)), post_hoc, rtol=2e-3, atol=2e-3 * scale)
    # ΔA stored directly (--reductions mean,last-first): the same values at two thirds of the bytes.
    delta = capture(model, records, tmp_path, CaptureOptions(reductions=("mean", "last-first"), sketch=sketch)).store
    np.testing.assert_allclose(
        delta.rows("last-first", range(6)),
        compact.rows("last", range(6)) - compact.rows("first", range(6)),
        rtol=2e-3,
        atol=2e-3 * scale,
    )
    feature = build_feature(exact, "t", indices=[0, 1, 2])
    options = ScoreOptions(method="nait-pca")
    np.testing.assert_allclose(
        score_store(delta, [feature], options)[0].score,
        score_store(compact, [feature], options)[0].score,
        rtol=1e-2,
        atol=1e-2 * scale,
    )
    # The exploration sample: exact values of seeded pool rows, found from the compact store alone.
    sample, rows = exact_sample_store(compact)
    np.testing.assert_array_equal(rows, sample_rows(6, 3, seed=1))
    np.testing.assert_array_equal(sample.rows("mean", range(3)), exact.rows("mean", rows))
    assert exact_sample_store(exact) is None


def test_targets_are_captured_exact_with_the_reductions_features_need():
    from nait_core.pipeline import target_capture_options

    pool = CaptureOptions(reductions=("mean", "last-first"), sketch=Sketch(256), exact_sample=2000)
    target = target_capture_options(pool)
    assert target.sketch is None and target.exact_sample == 0
    assert target.reductions == ("mean", "last", "first")
    assert (
        target_capture_options(CaptureOptions()).reductions == CaptureOptions().reductions
    )  # same store keys as before


@pytest.mark.model
def test_nait_select_on_a_compact_pool_says_how_scores_are_estimated(tiny_model_dir, tmp_path, capsys):
    from nait_core.cli import main

    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps({"messages": r.conversation}) + "\n" for r in tiny_records(60).records))
    target = tmp_path / "target.jsonl"
    target.write_text("".join(json.dumps({"messages": r.conversation}) + "\n" for r in tiny_records(6).records))
    common = ["--candidates", str(pool), "--target", str(target), "--model", str(tiny_model_dir)]
    common += ["--store-dir", str(tmp_path / "stores"), "--sketch", "8", "--ratio", "0.1"]
    assert main(["select", *common, "--exact-sample", "40", "--out", str(tmp_path / "a.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "compact pool (sketch K=8): scores are estimates, calibrated on its 40-record exact sample" in err
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 6
    # Refused before any capture or model load, with the reason.
    assert main(["select", *common, "--method", "jaccard", "--out", str(tmp_path / "j.jsonl")]) == 2
    assert "--method jaccard cannot score a compact pool (--sketch 8)" in capsys.readouterr().err
    # Without an exact sample: another store (the key holds it), scored from the projection alone.
    assert main(["select", *common, "--exact-sample", "0", "--out", str(tmp_path / "b.jsonl")]) == 0
    assert "from the projection alone (no exact sample" in capsys.readouterr().err
