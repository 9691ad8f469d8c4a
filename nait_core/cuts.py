"""Cut scores into a selection, merge several targets, and compare methods.

Per target, a cut keeps the top `ratio` share, the top `top` records, or those scoring at least
`min_score`. Several targets merge by `union` (the paper: select per target, then merge),
`intersection` (the core subset chosen for every target) or `mean-z` (average the z-scored scores,
then cut once). Ties are broken by input order, so a selection is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MERGES = ("union", "intersection", "mean-z")


def ratio_count(ratio: float, n: int) -> int:
    """Records a `ratio` cut keeps of `n`: the nearest whole number, a half rounded up (0.5 of 5 keeps 3,
    not Python's round-half-to-even 2), and at least 1."""
    return max(1, math.floor(ratio * n + 0.5))


@dataclass(frozen=True)
class Cut:
    ratio: float | None = None
    top: int | None = None
    min_score: float | None = None

    def __post_init__(self):
        given = [v is not None for v in (self.ratio, self.top, self.min_score)]
        if sum(given) != 1:
            raise ValueError("give exactly one of ratio, top or min_score")
        if self.ratio is not None and not 0 < self.ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], not {self.ratio}")
        if self.top is not None and self.top < 1:
            raise ValueError(f"top must be at least 1, not {self.top}")

    def mask(self, score: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
        """Selected records. A record without a score (NaN, e.g. IFD of a response truncated away) is
        never selected, whatever the cut: a ratio or top above the scored count selects fewer.
        `order`: `ranking(score)` when the caller has it already."""
        score = np.asarray(score, dtype=np.float64)
        if self.min_score is not None:
            return score >= self.min_score  # NaN compares False
        k = self.top if self.top is not None else ratio_count(self.ratio, len(score))
        mask = np.zeros(len(score), dtype=bool)
        mask[(ranking(score) if order is None else order)[:k]] = True
        return mask & ~np.isnan(score)


def ranking(score: np.ndarray) -> np.ndarray:
    """Indices from best to worst; NaN last; ties by input order (a stable sort of the negated scores: the
    order `np.lexsort((arange, -score))` gives, about 3x faster at a million records)."""
    score = np.where(np.isnan(score), -np.inf, score)
    return np.argsort(-score, kind="stable")


def zscore(score: np.ndarray) -> np.ndarray:
    std = np.nanstd(score)
    return (score - np.nanmean(score)) / (std if std > 0 else 1.0)


def percentile(score: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """1.0 for the best record, falling by 1/n per rank. `order`: `ranking(score)` when the caller has it."""
    out = np.empty(len(score))
    out[ranking(score) if order is None else order] = 1.0 - np.arange(len(score)) / len(score)
    return out


@dataclass
class Selection:
    score: np.ndarray  # the combined score (the target's own score when there is one target)
    rank: np.ndarray  # 1 = best
    selected: np.ndarray  # bool
    per_target: dict[str, np.ndarray]

    @property
    def indices(self) -> np.ndarray:
        return np.nonzero(self.selected)[0]

    @property
    def unscored(self) -> int:
        """Records without a score (NaN) for at least one target: never selected for that target."""
        if not self.per_target:
            return 0
        return int(
            np.isnan(np.array([np.asarray(s, dtype=np.float64) for s in self.per_target.values()])).any(axis=0).sum()
        )


def select(
    per_target: dict[str, np.ndarray], cut: Cut, merge: str = "union", orders: dict[str, np.ndarray] | None = None
) -> Selection:
    """Select per target and merge. The combined score orders records the way the merge does:
    max (union) or min (intersection) of per-target percentiles, or mean z-score (mean-z).
    `orders`: each target's `ranking` when the caller keeps them (the app, across cuts of the same scores)."""
    if merge not in MERGES:
        raise ValueError(f"unknown merge {merge!r}; choose from {', '.join(MERGES)}")
    if not per_target:
        raise ValueError("no targets to select for")
    scores = list(per_target.values())
    given = [orders.get(name) for name in per_target] if orders else [None] * len(scores)
    if len(scores) == 1:
        combined, selected = scores[0], cut.mask(scores[0], given[0])
    elif merge == "mean-z":
        combined = np.mean([zscore(s) for s in scores], axis=0)
        selected = cut.mask(combined)
    else:
        # one sort per target serves its cut and its percentiles
        order = [ranking(s) if o is None else o for s, o in zip(scores, given)]
        masks = np.array([cut.mask(s, o) for s, o in zip(scores, order)])
        percentiles = np.array([percentile(s, o) for s, o in zip(scores, order)])
        if merge == "union":
            combined, selected = percentiles.max(axis=0), masks.any(axis=0)
        else:
            combined, selected = percentiles.min(axis=0), masks.all(axis=0)
    rank = np.empty(len(combined), dtype=np.int64)
    rank[ranking(combined)] = np.arange(1, len(combined) + 1)
    return Selection(np.asarray(combined, dtype=np.float64), rank, selected, dict(per_target))


def agreement(a: np.ndarray, b: np.ndarray, ratio: float) -> dict:
    """How far two scorings agree: shared share of their top-k and Spearman rank correlation."""
    from scipy.stats import spearmanr

    k = ratio_count(ratio, len(a))
    top_a, top_b = set(ranking(a)[:k]), set(ranking(b)[:k])
    rho = spearmanr(a, b, nan_policy="omit").statistic
    return {"top_k": k, "shared_top_k": len(top_a & top_b) / k, "spearman": float(rho)}


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `score` separating `positive` records from the rest (ties count ½)."""
    from scipy.stats import rankdata

    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.nan_to_num(score, nan=-np.inf))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
