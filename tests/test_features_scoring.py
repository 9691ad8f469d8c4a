"""Capability features and scoring kernels on synthetic stores (no model needed)."""

import numpy as np
import pytest

from nait_core.features import Feature, FeatureError, build_feature, first_principal_direction
from nait_core.scoring import ScoreOptions, explain, fire_thresholds, score_store, target_firing_set
from nait_testing.stores import synthetic_store

pytestmark = pytest.mark.unit
ALL = ("mean", "last", "first")


@pytest.mark.parametrize("shape", [(6, 40), (50, 8)])
def test_first_principal_direction_matches_svd(shape):
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape) * np.linspace(3, 0.1, shape[1])
    v, share = first_principal_direction(x)
    centred = x - x.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    assert abs(float(v @ vt[0])) == pytest.approx(1.0, abs=1e-6)
    assert share == pytest.approx(s[0] ** 2 / (s**2).sum(), rel=1e-6)


@pytest.fixture
def stores(tmp_path):
    pool, pool_data = synthetic_store(tmp_path / "pool", n=12, layers=3, neurons=5, reductions=ALL, shard_size=5)
    target, target_data = synthetic_store(tmp_path / "target", n=4, layers=3, neurons=5, reductions=ALL, seed=1)
    return pool, pool_data, target, target_data


def test_feature_contents_and_round_trip(stores, tmp_path):
    pool, _, target, target_data = stores
    feature = build_feature(target, "t")
    np.testing.assert_allclose(feature.profile, target_data["mean"].astype(np.float32).mean(0), rtol=1e-6)
    np.testing.assert_allclose(feature.median, np.median(target_data["mean"].astype(np.float32), axis=0), rtol=1e-6)
    delta = target_data["last"].astype(np.float32) - target_data["first"].astype(np.float32)
    for layer in range(3):
        v = feature.direction("last-first")[layer]
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
        assert delta[:, layer].mean(0) @ v >= 0  # Eq. 4 sign
    path = feature.save(tmp_path / "f" / "t.safetensors")
    loaded = Feature.load(path)
    assert loaded.meta["samples"] == 4 and loaded.meta["target"] == "target"
    for key, value in feature.tensors.items():
        np.testing.assert_array_equal(loaded.tensors[key], value)
    assert path.stat().st_size < 2000 + 8 * 4 * 15 * 4  # small: a few [layers, neurons] float32 tensors


def test_feature_errors(stores, tmp_path):
    pool, _, target, _ = stores
    other, _ = synthetic_store(tmp_path / "other", n=3, layers=3, neurons=5, fingerprint="another-model")
    feature = build_feature(target, "t")
    with pytest.raises(FeatureError, match="same model"):
        feature.check_compatible(other)
    with pytest.raises(FeatureError, match="no PCA direction for 'last'"):
        build_feature(target, "t", reductions=("mean",)).direction("last")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(FeatureError, match="not a NAIT feature"):
        Feature.load(tmp_path / "junk.safetensors")
    with pytest.raises(FeatureError, match="at least 2"):
        build_feature(target, "t", indices=[0])


@pytest.mark.parametrize(
    "options",
    [
        ScoreOptions(),
        ScoreOptions(centre=False),
        ScoreOptions(method="jaccard", fire_threshold="0.1"),
        ScoreOptions(method="jaccard", fire_threshold="q0.7"),
        ScoreOptions(method="nait-pca"),
        ScoreOptions(method="nait-pca", layer_norm="z"),
        ScoreOptions(method="nait-pca", reduction="mean"),
    ],
)
def test_scores_split_exactly_into_layers_and_neurons(options, stores):
    pool, data, target, _ = stores
    feature = build_feature(target, "t")
    [scores] = score_store(pool, [feature], options)
    np.testing.assert_allclose(scores.layer_contributions.sum(1), scores.score, rtol=1e-9)
    for index in (0, 7, 11):
        contributions = explain(pool, [index], feature, options, scores)[0]
        offset = (scores.layer_offset / scores.layer_scale).sum()
        assert contributions.sum() - offset == pytest.approx(scores.score[index], rel=1e-5, abs=1e-6)


def test_overlap_and_jaccard_formulas(stores):
    pool, data, target, target_data = stores
    feature = build_feature(target, "t")
    x = data["mean"].astype(np.float32).reshape(12, -1)
    p = feature.profile.ravel()
    c = x.mean(0)
    expected = (x - c) @ (p - c) / (np.linalg.norm(x - c, axis=1) * np.linalg.norm(p - c))
    np.testing.assert_allclose(score_store(pool, [feature], ScoreOptions())[0].score, expected, rtol=1e-5)
    fires, t = x > 0.1, feature.median.ravel() > 0.1
    expected = (fires & t).sum(1) / (fires | t).sum(1)
    got = score_store(pool, [feature], ScoreOptions(method="jaccard", fire_threshold="0.1"))[0].score
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_quantile_thresholds_are_per_neuron(stores):
    pool, data, _, _ = stores
    thresholds = fire_thresholds(pool, "q0.5")
    np.testing.assert_allclose(thresholds, np.quantile(data["mean"].astype(np.float32), 0.5, axis=0), rtol=1e-6)
    with pytest.raises(ValueError, match="fire threshold"):
        ScoreOptions(method="jaccard", fire_threshold="q1.5")


def test_target_firing_set_is_never_empty():
    """The median rule when any neuron passes it; else the top 0.5 % (at least one) by median − threshold."""
    median = np.array([[0.5, 2.0, -1.0], [3.0, 0.0, 1.0]])
    np.testing.assert_array_equal(target_firing_set(median, np.full_like(median, 2.5)), median > 2.5)  # one passes
    top = target_firing_set(median, np.full_like(median, 10.0), fallback=0.3)  # none passes: the 2 closest
    np.testing.assert_array_equal(top, [[False, True, False], [True, False, False]])
    assert target_firing_set(median, np.full_like(median, 10.0)).sum() == 1


def test_high_quantile_threshold_still_scores(stores):
    """At a per-neuron quantile no target median beats, jaccard still ranks (it used to stop with an error)."""
    pool, data, target, _ = stores
    feature = build_feature(target, "t")
    thresholds = fire_thresholds(pool, "q0.99")
    assert not (feature.median > thresholds).any()
    score = score_store(pool, [feature], ScoreOptions(method="jaccard", fire_threshold="q0.99"))[0].score
    fires = data["mean"].astype(np.float32) > thresholds
    t = target_firing_set(feature.median, thresholds)
    expected = (fires & t).reshape(12, -1).sum(1) / np.maximum((fires | t).reshape(12, -1).sum(1), 1)
    np.testing.assert_allclose(score, expected, rtol=1e-9)
