"""Cuts, merges, agreement and AUROC on hand-made scores."""

import numpy as np
import pytest

from nait_core.selection import Cut, agreement, auroc, score_lines, select

pytestmark = pytest.mark.unit


def test_ratio_top_and_min_score():
    score = np.array([0.1, 0.9, 0.5, 0.9, np.nan, 0.3])
    assert list(select({"t": score}, Cut(ratio=0.5)).indices) == [1, 2, 3]
    assert list(select({"t": score}, Cut(top=2)).indices) == [1, 3]  # tie broken by input order
    assert list(select({"t": score}, Cut(top=1)).indices) == [1]
    assert list(select({"t": score}, Cut(min_score=0.3)).indices) == [1, 2, 3, 5]
    ranked = select({"t": score}, Cut(top=1))
    assert list(ranked.rank) == [5, 1, 3, 2, 6, 4]  # NaN ranks last


def test_merges():
    a = np.array([9, 8, 1, 2, 3.0])
    b = np.array([1, 9, 8, 2, 3.0])
    union = select({"a": a, "b": b}, Cut(top=2), "union")
    inter = select({"a": a, "b": b}, Cut(top=2), "intersection")
    meanz = select({"a": a, "b": b}, Cut(top=1), "mean-z")
    assert list(union.indices) == [0, 1, 2]
    assert list(inter.indices) == [1]  # the core subset
    assert list(meanz.indices) == [1]
    assert list(union.rank[:2]) == [1, 2]  # both best for one target; tie by input order
    assert inter.rank[1] == 1


def test_bad_cuts_and_merge():
    with pytest.raises(ValueError):
        Cut()
    with pytest.raises(ValueError):
        Cut(ratio=0.1, top=3)
    with pytest.raises(ValueError):
        Cut(ratio=1.5)
    with pytest.raises(ValueError):
        select({"a": np.ones(3)}, Cut(top=1), "vote")


def test_agreement_and_auroc():
    a = np.arange(10.0)
    same = agreement(a, a, 0.3)
    assert same["top_k"] == 3 and same["shared_top_k"] == 1.0 and same["spearman"] == pytest.approx(1.0)
    assert agreement(a, -a, 0.3)["shared_top_k"] == 0.0
    positive = a >= 7
    assert auroc(a, positive) == 1.0 and auroc(-a, positive) == 0.0
    assert auroc(np.zeros(10), positive) == 0.5


def test_score_lines_are_json_in_input_order():
    import json

    selection = select({"gsm8k": np.array([0.2, np.nan, 0.7])}, Cut(top=1))
    rows = [json.loads(line) for line in score_lines(selection)]
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert rows[1] == {"index": 1, "score": None, "rank": 3, "selected": False, "targets": {"gsm8k": None}}
    assert rows[2]["selected"] and rows[2]["rank"] == 1


def test_ranking_orders_ties_by_input_order_and_nan_last():
    """The stable sort gives exactly the order of the two-key lexsort it replaced (ties, NaN, ±inf, -0.0)."""
    from nait_core.selection import percentile, ranking

    rng = np.random.default_rng(0)
    score = rng.integers(-3, 4, 2000).astype(np.float64)  # many ties
    score[rng.choice(2000, 50, replace=False)] = np.nan
    score[:3] = [np.inf, -np.inf, -0.0]
    expected = np.lexsort((np.arange(len(score)), -np.where(np.isnan(score), -np.inf, score)))
    assert np.array_equal(ranking(score), expected)
    assert np.array_equal(percentile(score), percentile(score, expected))


def test_select_with_kept_orders_selects_the_same():
    """The app keeps each target's ranking across cuts; handing it to `select` changes nothing."""
    from nait_core.selection import ranking

    rng = np.random.default_rng(1)
    per_target = {"a": rng.normal(size=500), "b": rng.integers(0, 5, 500).astype(float)}
    orders = {n: ranking(v) for n, v in per_target.items()}
    for cut in (Cut(ratio=0.1), Cut(top=7), Cut(min_score=0.5)):
        for merge in ("union", "intersection", "mean-z"):
            plain, given = select(per_target, cut, merge), select(per_target, cut, merge, orders)
            assert np.array_equal(plain.selected, given.selected) and np.array_equal(plain.rank, given.rank)
    single = {"a": per_target["a"]}
    assert np.array_equal(select(single, Cut(top=9)).selected, select(single, Cut(top=9), orders=orders).selected)
