"""nait_core.explore on tiny synthetic stores (no model): the map cache, firing shares, comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from nait_core import activation_map, explore
from nait_core.features import build_feature
from nait_core.scoring import ScoreOptions, explain, score_store
from nait_testing.stores import synthetic_store

pytestmark = pytest.mark.unit

LAYERS, NEURONS = 3, 8


def make_store(root, name, n, seed, shift=0.0):
    return synthetic_store(
        root / name,
        n=n,
        layers=LAYERS,
        neurons=NEURONS,
        reductions=("mean", "last", "first"),
        shard_size=16,
        seed=seed,
        shift=shift,
    )[0]


@pytest.fixture
def stores(tmp_path):
    pool = make_store(tmp_path, "pool", 40, 0)
    target = make_store(tmp_path, "target", 10, 1, shift=1.0)
    return pool, target, build_feature(target, "target")


@pytest.mark.slow  # UMAP compiles with numba on first use (a minute on a small CPU)
def test_map_is_computed_once_and_cached_in_the_pool_folder(stores, monkeypatch):
    pool, target, _ = stores
    table = activation_map.map_coordinates(pool, [target], max_points=30)
    assert list(table["group"].value_counts().sort_index()) == [40, 10]  # every pool sample, every target
    drawn = table[(table["group"] < 0) & table["drawn"]]
    assert set(drawn["index"]) == set(activation_map.map_sample(40, 30))  # UMAP fitted on (and dots for) a sample
    assert sorted(table[table["group"] < 0]["index"]) == list(range(40)) and table["drawn"][table["group"] >= 0].all()
    assert len(list(pool.path.glob("map-*.npy"))) == 1
    monkeypatch.setattr(activation_map, "_pca", lambda *a: pytest.fail("recomputed"))
    assert activation_map.map_coordinates(pool, [target], max_points=30).equals(table)


def test_streamed_pca_matches_numpy():
    """The map's PCA reads the rows a chunk at a time (a 52,000-sample pool does not fit an n×n Gram matrix)
    and still gives numpy's top components of data with structure (a few strong directions, as activations
    have), whatever the chunking; and it reports its progress per chunk read."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(300, 4)) * [20, 10, 5, 3]) @ rng.normal(size=(4, 200)) + rng.normal(size=(300, 200))
    x = x.astype(np.float32)
    sizes = [64, 64, 100, 72]
    starts = np.cumsum([0, *sizes])
    seen = []
    coords, project = activation_map._pca(
        lambda i: x[starts[i] : starts[i + 1]], sizes, 200, 3, progress=lambda *a: seen.append(a)
    )
    centred = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    assert np.allclose(np.abs(coords), np.abs(u[:, :3] * s[:3]), atol=1e-3 * s[2])
    assert seen[-1] == (4 * len(sizes), 4 * len(sizes))  # four passes over the rows, each chunk reported
    assert np.allclose(project(x[:50]), coords[:50], atol=1e-3 * s[2])  # other rows go on the same axes


@pytest.mark.slow  # UMAP
def test_a_pool_beyond_the_fitted_sample_is_placed_in_full_where_its_kind_lies(tmp_path):
    """Beyond `max_points` every pool row is still placed: UMAP is fitted on a seeded sample (and the targets)
    and places the others with its transform, next to the fitted points they resemble (pool rows among pool
    rows, not among the far-off targets); a map cached without the drawn column reads as all drawn."""
    pool = make_store(tmp_path, "pool", 300, 0)
    target = make_store(tmp_path, "target", 60, 1, shift=3.0)
    seen = []
    table = activation_map.map_coordinates(pool, [target], max_points=120, progress=lambda f, t: seen.append((f, t)))
    pool_rows = table[table["group"] < 0]
    assert sorted(pool_rows["index"]) == list(range(300)) and pool_rows["drawn"].sum() == 120
    assert np.isfinite(table[["x", "y"]].to_numpy()).all()
    assert any(t.startswith("placing them on the map: 180 of 180") for _, t in seen) and seen[-1][0] == 1.0
    fitted = table[table["drawn"]]
    placed = pool_rows[~pool_rows["drawn"]]
    xy, at = fitted[["x", "y"]].to_numpy(), placed[["x", "y"]].to_numpy()
    nearest = np.argmin(((at[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2), axis=1)
    assert (fitted["group"].to_numpy()[nearest] < 0).mean() > 0.95  # beside pool points, not targets
    assert activation_map.map_cached(pool, [target], max_points=120) and not activation_map.map_cached(
        pool, [target], max_points=300
    )
    stem, inputs = activation_map.map_path(pool, [target], "mean", 120).stem, {"targets": [target.content_id]}
    v2 = table[["group", "index", "x", "y"]].to_numpy(np.float64)  # what a map cached before the drawn column holds
    pool.save_cached_array(stem, v2, inputs)
    assert activation_map.map_coordinates(pool, [target], max_points=120)["drawn"].all()


def test_neuron_tables(stores):
    pool, target, feature = stores
    weights = explore.feature_weights(feature, pool.mean("mean"))
    per_layer = explore.top_neurons(weights, per_layer=2)
    assert list(per_layer["layer"]) == [0, 0, 1, 1, 2, 2]
    best = explore.top_neurons(weights, total=1).iloc[0]
    assert best["weight"] == weights.max() and best["neuron"] == f"L{best['layer']}.N{best['index']}"
    values = explore.gather_neurons(pool, per_layer["layer"], per_layer["index"])
    assert np.array_equal(values[:, 1], pool.neuron_values("mean", per_layer["layer"][1], per_layer["index"][1]))
    shares = explore.firing_shares({"all": values, "none": values[:0]}, np.zeros(6))
    assert np.allclose(shares.loc["all"], (values > 0).mean(axis=0)) and shares.loc["none"].isna().all()
    assert list(explore.top_samples(np.array([1.0, 3.0, 2.0, 3.0]), 3)) == [1, 3, 2]


def test_explanations_add_up(stores):
    pool, _, feature = stores
    for options in (
        ScoreOptions(),
        ScoreOptions("jaccard", fire_threshold="q0.5"),
        ScoreOptions("nait-pca", layer_norm="z"),
    ):
        scores = score_store(pool, [feature], options)[0]
        parts = explain(pool, [3, 7], feature, options, scores)
        assert np.allclose(parts[1], explain(pool, [7], feature, options, scores)[0], atol=1e-6)
        text = explore.reasons(pool, [3, 7], [feature], [scores], options)
        assert all(t.startswith("target: neurons L") and "; layers " in t for t in text), text  # neurons first


def test_comparisons(stores):
    pool, target, feature = stores
    other = build_feature(pool, "pool-part", np.arange(10))
    methods = {
        m: {s.feature: s.score for s in score_store(pool, [feature, other], ScoreOptions(m))}
        for m in ("overlap", "nait-pca")
    }
    methods["random"] = dict.fromkeys(methods["overlap"], np.random.default_rng(0).random(pool.n_samples))
    table = explore.method_agreement(methods, 0.25)
    assert list(table.columns) == list(explore.AGREEMENT_FIELDS)
    pairs = list(zip(table["method_a"], table["method_b"]))
    assert pairs == [("overlap", "nait-pca")] * 2 + [("overlap", "random")] * 2 + [("nait-pca", "random")] * 2
    assert table["top_k"].eq(10).all()
    matrix = explore.agreement_matrix(table, feature.name)
    assert list(matrix.index) == ["overlap", "nait-pca", "random"] and np.allclose(np.diag(matrix), 1)
    same = table[(table["target"] == feature.name) & (table["method_a"] == "overlap") & (table["method_b"] == "random")]
    assert matrix.loc["random", "overlap"] == matrix.loc["overlap", "random"] == same["shared_top_k"].item()
    masks = {"a": np.array([1, 1, 0, 0], bool), "b": np.array([0, 1, 1, 1], bool)}
    overlap = explore.overlap_matrix(masks)
    assert overlap.loc["a", "b"] == 0.5 and overlap.loc["b", "a"] == pytest.approx(1 / 3) and overlap.loc["a", "a"] == 1
    counts = explore.source_composition(["x", "y", "x", "y"], masks)
    assert counts.loc["a"].tolist() == [1, 1] and counts.loc["b"].tolist() == [1, 2]
    rho = explore.score_correlations({"a": np.arange(5.0), "b": -np.arange(5.0)})
    assert rho.loc["a", "b"] == pytest.approx(-1)


def test_positions_find_pool_rows_in_a_sorted_sample():
    sample = np.array([2, 5, 9, 30])
    assert explore.positions(sample, [5, 3, 30, 0, 31, 2]).tolist() == [1, -1, 3, -1, -1, 0]
    assert explore.positions(np.array([], dtype=np.int64), [1, 2]).tolist() == [-1, -1]


def test_reasons_on_a_compact_pool_name_neurons_only_for_its_exact_sample(stores, tmp_path):
    """A compact pool's reasons: per-neuron ones from its exact sample's exact values (what `explain` gives on
    the exact store for that row), per-layer ones from the compact scores for any other row; no error."""
    from nait_core.sketch import Sketch, compact_copy

    pool, _, feature = stores
    compact = compact_copy(tmp_path / "compact", pool, Sketch(16))
    options = ScoreOptions("overlap")
    scores = score_store(compact, [feature], options)
    rows = [0, 7, 21]
    sample = make_store(tmp_path, "sample", 20, 0)  # the same seed: the pool's first 20 rows (token means)
    assert np.array_equal(sample.rows("mean", range(20)), pool.rows("mean", range(20)))
    text = explore.reasons(compact, rows, [feature], scores, options, exact=(sample, np.arange(20)))
    assert text[0].startswith("target: neurons L") and text[1].startswith("target: neurons L")  # in the sample
    assert text[2].startswith("target: layers ") and text[2].endswith("(no neurons: not in the exact sample)")
    # row 7: its exact per-neuron contributions (centred on the exact sample's mean), the compact layers
    parts = explain(sample, [7], feature, options, scores[0])[0]
    assert text[1] == "target: " + explore.reason(parts, scores[0].layer_contributions[7])
    assert explore.reasons(compact, rows, [feature], scores, options, exact=None)[0].endswith("exact sample)")


def test_the_map_lists_only_neurons_the_target_fires():
    """Issue 25: the map's per-neuron heatmap listed "top" neurons (largest target minus pool) that no sample
    fires at threshold 0 (both means negative)."""
    weights = np.array([[3.0, 1.0, 0.5], [2.0, 1.0, 0.0]])
    profile = np.array([[-0.5, 0.2, 0.9], [-1.0, -0.2, -0.3]])  # L0.N0 and all of layer 1 stay below 0
    top = explore.firing_top_neurons(weights, profile, np.zeros_like(profile), per_layer=2)
    assert list(top["neuron"]) == ["L0.N1", "L0.N2"]
    assert explore.firing_top_neurons(weights, profile, np.full_like(profile, 5.0)).empty


def test_a_reason_gives_shares_of_the_score_neurons_first():
    """Issue 25: the reason said "layers 29 (+0.621), 28 ..." for every record (the top layers are the same
    for most) with raw parts; now the record's own neurons come first, each part as a share of the score."""
    per_neuron = np.zeros((3, 4))
    per_neuron[2, 1], per_neuron[0, 3], per_neuron[2, 0] = 0.3, 0.1, 0.05
    per_layer = np.array([0.1, 0.0, 0.4])  # score 0.5
    assert explore.reason(per_neuron, per_layer, k=2) == "neurons L2.N1 60%, L0.N3 20%; layers 2 80%, 0 20%"
    other = per_neuron.copy()
    other[2, 1], other[2, 2] = 0.0, 0.3  # the same layers, another neuron: another reason
    assert explore.reason(other, per_layer, k=2) != explore.reason(per_neuron, per_layer, k=2)
    # a score of ~0 has no meaningful shares: the parts in scientific notation instead of 1e9 %
    assert (
        explore.reason(per_neuron * 1e-8, np.array([1e-10, -1e-10, 0.0]), k=1)
        == "neurons L2.N1 +3.00e-09; layers 0 +1.00e-10"
    )


def test_subset_scores_keep_the_pool_layer_norm(stores):
    pool, _, feature = stores
    scores = score_store(pool, [feature], ScoreOptions("nait-pca", reduction="mean", layer_norm="z"))
    rows = np.array([3, 9, 11])
    (part,) = explore.subset_scores(scores, rows)
    assert np.allclose(part.score, scores[0].score[rows])
    assert np.allclose(explore.totals(scores[0]), scores[0].score)  # without the [n, layers] temporary
    assert np.array_equal(explore.row_layers(scores[0], 9), scores[0].layer_contributions[9])


def test_previews_are_on_one_line():
    """Issue 25: previews in the app's tables and hovers kept the records' line breaks."""
    from nait_core.data import Record

    turns = [{"role": "user", "content": "Solve:\n  2 + 2\n\nthen\tsay why"}, {"role": "assistant", "content": "4"}]
    record = Record(raw={}, where="f:1", source="s", conversation=turns)
    assert "\n" in record.preview()  # what the tables showed
    assert explore.preview(record) == "Solve: 2 + 2 then say why"
    assert explore.preview(record, 10) == "Solve: 2 …" and len(explore.preview(record, 10)) == 10
    assert explore.one_line("a\r\nb", 5) == "a b"


def test_a_box_or_lasso_holds_the_points_inside_it_whether_drawn_or_not():
    """`in_regions`: boxes in any corner order, a concave lasso (its notch left out), their union."""
    x = np.array([0.5, 1.5, 2.5, 1.5, 1.0, 5.0])
    y = np.array([0.5, 0.5, 0.5, 1.6, 0.2, 5.0])
    assert activation_map.in_regions(x, y).tolist() == [False] * 6
    assert activation_map.in_regions(x, y, boxes=[(2.0, 0.0, 1.0, 0.0)]).tolist() == [
        True,
        True,
        False,
        False,
        True,
        False,
    ]
    u = [(0, 0), (3, 0), (3, 2), (2, 2), (2, 1), (1, 1.2), (1, 2), (0, 2)]  # a U: (1.5, 1.6) sits in its notch
    assert activation_map.in_regions(x, y, lassos=[u]).tolist() == [True, True, True, False, True, False]
    both = activation_map.in_regions(x, y, boxes=[(4, 6, 4, 6)], lassos=[u])
    assert both.tolist() == [True, True, True, False, True, True]
