"""`rds`: RDS+ (Ivison et al. 2025, arXiv 2503.01807), as its code computes it
(hamishivi/automated-instruction-selection, minimal_multitask/compute_influence_cosinesim.py, pooling
`weighted_mean`): each record's final hidden state (the last of Hugging Face's `hidden_states`), its mean over
the record's tokens weighted by position + 1 (SGPT), L2-normalised; a candidate's score is its cosine to each
target record, then the max over target records (`--rds-pool mean`: their mean).

The pooled vectors are kept by the neurons' own capture pass (`capture.Reducer.pooled_hidden`, store.HIDDEN):
scoring reads n × hidden float32 values and runs no model.
"""

from __future__ import annotations

import numpy as np

from ..scores import Scores
from ..store import Store

CHUNK_ROWS = 16384  # candidates per similarity block: [rows, target records] float32 stays small


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def rds_scores(pool: np.ndarray, target: np.ndarray, pool_mode: str = "max") -> np.ndarray:
    """Scores [n] of pooled candidate vectors [n, hidden] against pooled target vectors [m, hidden]."""
    queries = unit_rows(target.astype(np.float32)).T
    out = np.empty(len(pool), np.float64)
    for start in range(0, len(pool), CHUNK_ROWS):
        sims = unit_rows(pool[start : start + CHUNK_ROWS].astype(np.float32)) @ queries
        out[start : start + len(sims)] = sims.max(axis=1) if pool_mode == "max" else sims.mean(axis=1)
    return out


def score(pool: Store, targets: list[Store], names: list[str], options, root=None) -> list:
    """One `scoring.Scores` per target store (a single "layer": the final hidden state)."""
    vectors = pool.hidden_states()
    out = []
    for target, name in zip(targets, names):
        values = rds_scores(vectors, target.hidden_states(), options.rds_pool)
        out.append(Scores(name, values[:, None], np.zeros(1), np.ones(1)))
    return out
