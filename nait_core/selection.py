"""Cut scores into a selection, merge several targets, compare methods, and export.

Per target, a cut keeps the top `ratio` share, the top `top` records, or those scoring at least
`min_score`. Several targets merge by `union` (the paper: select per target, then merge),
`intersection` (the core subset chosen for every target) or `mean-z` (average the z-scored scores,
then cut once). Ties are broken by input order, so a selection is reproducible.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MERGES = ("union", "intersection", "mean-z")


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

    def mask(self, score: np.ndarray) -> np.ndarray:
        if self.min_score is not None:
            return score >= self.min_score
        k = self.top if self.top is not None else max(1, round(self.ratio * len(score)))
        mask = np.zeros(len(score), dtype=bool)
        mask[ranking(score)[:k]] = True
        return mask


def ranking(score: np.ndarray) -> np.ndarray:
    """Indices from best to worst; NaN last; ties by input order."""
    score = np.where(np.isnan(score), -np.inf, score)
    return np.lexsort((np.arange(len(score)), -score))


def zscore(score: np.ndarray) -> np.ndarray:
    std = np.nanstd(score)
    return (score - np.nanmean(score)) / (std if std > 0 else 1.0)


def percentile(score: np.ndarray) -> np.ndarray:
    """1.0 for the best record, falling by 1/n per rank."""
    out = np.empty(len(score))
    out[ranking(score)] = 1.0 - np.arange(len(score)) / len(score)
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


def select(per_target: dict[str, np.ndarray], cut: Cut, merge: str = "union") -> Selection:
    """Select per target and merge. The combined score orders records the way the merge does:
    max (union) or min (intersection) of per-target percentiles, or mean z-score (mean-z)."""
    if merge not in MERGES:
        raise ValueError(f"unknown merge {merge!r}; choose from {', '.join(MERGES)}")
    if not per_target:
        raise ValueError("no targets to select for")
    scores = list(per_target.values())
    if len(scores) == 1:
        combined, selected = scores[0], cut.mask(scores[0])
    elif merge == "mean-z":
        combined = np.mean([zscore(s) for s in scores], axis=0)
        selected = cut.mask(combined)
    else:
        masks = np.array([cut.mask(s) for s in scores])
        percentiles = np.array([percentile(s) for s in scores])
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

    k = max(1, round(ratio * len(a)))
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


# ---------------------------------------------------------------- export

def _atomic_write_lines(path: Path, lines) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(tmp, path)
    return path


def record_line(record) -> str:
    """The record exactly as read: its original JSONL line, else its fields as one JSON line."""
    return record.raw_line if record.raw_line is not None else json.dumps(record.raw, ensure_ascii=False, default=str)


def selected_lines(records, selection: Selection) -> list[str]:
    return [record_line(records[i]) for i in selection.indices]


def _clean(value: float):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def score_lines(selection: Selection) -> list[str]:
    """One JSON line per candidate, in input order: index, score, rank, selected, and each target's score."""
    names = list(selection.per_target)
    return [
        json.dumps({
            "index": i,
            "score": _clean(float(selection.score[i])),
            "rank": int(selection.rank[i]),
            "selected": bool(selection.selected[i]),
            "targets": {name: _clean(float(selection.per_target[name][i])) for name in names},
        })
        for i in range(len(selection.score))
    ]


def export(records, selection: Selection, out: Path | None = None, scores: Path | None = None) -> None:
    """Write the selected records (JSONL, input order) and/or the scores file, each atomically."""
    if out is not None:
        _atomic_write_lines(out, selected_lines(records, selection))
    if scores is not None:
        _atomic_write_lines(scores, score_lines(selection))
