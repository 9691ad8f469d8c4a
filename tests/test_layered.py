"""Layer choice for the neuron methods (`--layers`, `overlap-balanced`, `overlap-z`) against a NumPy reference."""

import numpy as np
import pytest

from nait_core.features import build_feature
from nait_core.methods.layered import parse_layers
from nait_core.scoring import ScoreOptions, score_store
from nait_testing.stores import synthetic_store

pytestmark = pytest.mark.unit


SCALE = (1.0, 3.0, 0.5, 8.0)  # layers of very different scales, as real models have
ALL = ("mean", "last", "first")


@pytest.fixture
def setup(tmp_path):
    pool, data = synthetic_store(tmp_path / "p", n=40, layers=4, neurons=6, reductions=ALL, layer_scale=SCALE)
    target, _ = synthetic_store(
        tmp_path / "t", n=8, layers=4, neurons=6, reductions=ALL, seed=1, shift=0.3, layer_scale=SCALE
    )
    feature = build_feature(target, "t")
    x = data["mean"].astype(np.float64)
    return pool, feature, x, x - x.mean(axis=0), feature.profile.astype(np.float64) - x.mean(axis=0)


def score(pool, feature, method, layers=None, **kw):
    return score_store(pool, [feature], ScoreOptions(method, layers=layers, **kw))[0].score


def cosine(a, b):
    a, b = a.reshape(len(a), -1), b.reshape(-1)
    return a @ b / (np.linalg.norm(a, axis=1) * np.linalg.norm(b))


def test_parse_layers():
    assert parse_layers("29") == (29,)
    assert parse_layers("10-12") == (10, 11, 12)
    assert parse_layers("0-1, 5-6") == (0, 1, 5, 6)
    assert parse_layers(None) is None
    for bad in ("a", "5-2", "-1", "1-"):
        with pytest.raises(ValueError, match="--layers must be"):
            parse_layers(bad)
    with pytest.raises(ValueError, match="the model has 30 layers"):
        parse_layers("0-30", 30)


def test_overlap_on_chosen_layers_is_the_centred_cosine_of_those_layers(setup):
    pool, feature, x, xc, pc = setup
    np.testing.assert_allclose(score(pool, feature, "overlap", (1, 2)), cosine(xc[:, [1, 2]], pc[[1, 2]]), atol=1e-4)
    # every layer chosen: the same scores as the existing overlap engine
    np.testing.assert_allclose(
        score(pool, feature, "overlap", (0, 1, 2, 3)), score(pool, feature, "overlap"), atol=1e-5
    )
    uncentred = score(pool, feature, "overlap", (3,), centre=False)
    np.testing.assert_allclose(uncentred, cosine(x[:, [3]], feature.profile[[3]].astype(np.float64)), atol=1e-4)


def test_overlap_balanced_averages_each_layers_cosine(setup):
    pool, feature, x, xc, pc = setup
    per_layer = np.stack([cosine(xc[:, [layer]], pc[[layer]]) for layer in range(4)], axis=1)
    np.testing.assert_allclose(score(pool, feature, "overlap-balanced"), per_layer.mean(axis=1), atol=1e-4)
    np.testing.assert_allclose(
        score(pool, feature, "overlap-balanced", (0, 2)), per_layer[:, [0, 2]].mean(1), atol=1e-4
    )
    # the big last layer no longer dominates: balanced differs from plain overlap's ranking
    assert not np.allclose(score(pool, feature, "overlap-balanced"), score(pool, feature, "overlap"), atol=1e-2)


def test_overlap_z_standardises_each_neuron_by_the_pool_spread(setup):
    pool, feature, x, xc, pc = setup
    spread = x.std(axis=0)
    np.testing.assert_allclose(score(pool, feature, "overlap-z"), cosine(xc / spread, pc / spread), atol=1e-3)
    np.testing.assert_allclose(
        score(pool, feature, "overlap-z", (0, 3)), cosine((xc / spread)[:, [0, 3]], (pc / spread)[[0, 3]]), atol=1e-3
    )


def test_nait_pca_on_chosen_layers_sums_only_those_layers(setup):
    pool, feature = setup[:2]
    full = score_store(pool, [feature], ScoreOptions("nait-pca"))[0]
    np.testing.assert_allclose(score(pool, feature, "nait-pca", (1, 3)), full.layer_contributions[:, [1, 3]].sum(1))


def test_layers_refused_by_name(setup):
    pool, feature = setup[:2]
    with pytest.raises(ValueError, match="layer 7 is past the 4 layers"):
        score(pool, feature, "overlap", (7,))
    with pytest.raises(ValueError, match="--layers applies to .*not to jaccard"):
        ScoreOptions("jaccard", layers=(1,))


@pytest.mark.parametrize(
    "options, text",
    [
        (ScoreOptions("overlap-max"), "overlap-max (overlap to each target record, the max"),
        (ScoreOptions("overlap-balanced", layers=(10, 11, 12)), "overlap-balanced (each layer's overlap, averaged"),
        (ScoreOptions("overlap-z"), "overlap-z (overlap of neurons standardised by the pool)"),
        (ScoreOptions("overlap", layers=(1, 5)), "overlap (centred cosine of token-mean profiles, layers 1,5)"),
        (ScoreOptions("nait-pca", layers=(3, 4)), "nait-pca (Eq. 5, last-first, layer-norm none, layers 3-4)"),
    ],
)
def test_every_method_is_described_by_its_own_name_and_layers(options, text):
    """The sidebar's Scoring line and the shown command read describe(): it named every method not special-cased
    'nait-pca (Eq. 5 …)'."""
    assert options.describe().startswith(text)
    assert ("layers 10-12" in options.describe()) == (options.layers == (10, 11, 12))
