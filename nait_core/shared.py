"""Shared neurons and nearest targets: what several targets have in common, and which targets a candidate
resembles.

- `marks` (each target's standardised difference from the pool), `shared_layers`, `shared_neurons`,
  `joint_candidates` (candidates jointly high for every target, with the shared neurons' share of their
  scores), `shared_view` (all of it, for `nait explain shared` and the app);
- `nearest_targets`: the target records closest to a candidate (centred cosine, as `overlap` scores).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from .contrast import pool_std, top_table, zscores
from .scores import Scores
from .scoring import ScoreOptions, explain
from .selection import percentile, ranking
from .store import Store
from .words import counted, verb


def marks(profile: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """What marks a target out [layers, neurons]: its expected activation minus the pool's, in pool
    standard deviations (so the few massive-activation neurons do not outrank everything)."""
    return zscores(profile, mean, std)


def shared_layers(marked: dict[str, np.ndarray], centred: dict[str, np.ndarray], k: int = 50) -> pd.DataFrame:
    """Per layer, how much the targets' features agree: the overlap of their top-k marking neurons
    (|∩| / |∪| over all targets, and |∩|), and the cosine of their profiles centred on the pool (mean over
    pairs, then each pair). marked / centred: name -> [layers, neurons]."""
    names = list(marked)
    n_layers = next(iter(marked.values())).shape[0]
    rows = []
    for layer in range(n_layers):
        sets = [set(np.argsort(-marked[n][layer], kind="stable")[:k].tolist()) for n in names]
        inter, union = set.intersection(*sets), set.union(*sets)
        row = {"layer": layer, f"top-{k} overlap": len(inter) / max(len(union), 1), f"shared in top {k}": len(inter)}
        cosines = {}
        for a, b in combinations(names, 2):
            x, y = centred[a][layer], centred[b][layer]
            cosines[f"cos {a} · {b}"] = float(x @ y / max(np.linalg.norm(x) * np.linalg.norm(y), 1e-12))
        row["centred cosine (mean)"] = float(np.mean(list(cosines.values()))) if cosines else float("nan")
        rows.append({**row, **cosines})
    return pd.DataFrame(rows)


MARK_Z = 1.0  # a neuron marks out a target when the target's mean is this many pool std above the pool's


def shared_neurons(marked: dict[str, np.ndarray], n: int = 50) -> pd.DataFrame:
    """The neurons that mark out every target: ranked by their smallest mark over the targets (z vs the
    pool), kept only where that is at least MARK_Z (a z of 0.25 is no mark: the list can be empty).
    Columns neuron, layer, index, joint z, z: <target>…"""
    joint = np.min(np.stack(list(marked.values())), axis=0)
    table = top_table(joint, n).rename(columns={"value": "joint z"})
    table = table[table["joint z"] >= MARK_Z].reset_index(drop=True)
    for name, z in marked.items():
        table[f"z: {name}"] = z[table["layer"], table["index"]]
    return table


def shared_share(
    store: Store,
    rows,
    features,
    scores: list[Scores],
    options: ScoreOptions,
    shared: pd.DataFrame,
    top: int = 3,
    with_scores: bool = True,
) -> pd.DataFrame:
    """For each row: each target's score (unless `with_scores` is off), the share of it that the shared
    neurons carry (their summed per-neuron contributions over the score), and the shared neurons that
    carry most (summed over targets)."""
    rows = [int(r) for r in rows]
    out = pd.DataFrame({"row": rows})
    if not rows:
        return out
    layers, index = shared["layer"].to_numpy(), shared["index"].to_numpy()
    carried = np.zeros((len(rows), len(shared)))
    for feature, score in zip(features, scores):
        parts = explain(store, rows, feature, options, score)  # [rows, layers, neurons]
        total = parts.reshape(len(rows), -1).sum(axis=1)
        mine = parts[:, layers, index]
        carried += mine
        if with_scores:
            out[f"score: {feature.name}"] = score.score[rows]
        out[f"shared share: {feature.name}"] = np.where(
            np.abs(total) > 1e-12, mine.sum(axis=1) / np.where(total == 0, 1, total), np.nan
        )
    names = shared["neuron"].to_numpy()
    out["carried by"] = [", ".join(names[j] for j in np.argsort(-c, kind="stable")[:top] if c[j] > 0) for c in carried]
    return out


def joint_candidates(scores: list[Scores], k: int = 20) -> np.ndarray:
    """Up to k candidates whose scores are jointly high for every target: ranked by their worst percentile
    over the targets (what the intersection merge orders by), and above the pool's mean score for each
    target (a record below the pool for one is not jointly high, however the others rank it)."""
    joint = np.min([percentile(s.score) for s in scores], axis=0)
    above = np.all([s.score > s.score.mean() for s in scores], axis=0)
    order = ranking(joint)
    return order[above[order]][:k]


@dataclass
class Shared:
    targets: list[str]
    layers: pd.DataFrame
    neurons: pd.DataFrame
    candidates: pd.DataFrame
    k: int

    def to_dict(self) -> dict:
        return {
            "targets": self.targets,
            "top_k_per_layer": self.k,
            "layers": self.layers.to_dict("records"),
            "neurons": self.neurons.to_dict("records"),
            "candidates": self.candidates.to_dict("records"),
        }

    def text(self) -> str:
        with pd.option_context(
            "display.width",
            200,
            "display.max_columns",
            20,
            "display.max_colwidth",
            60,
            "display.float_format",
            "{:.3f}".format,
        ):
            return "\n".join(
                [
                    f"shared neurons of {' × '.join(self.targets)}",
                    f"per layer (top {self.k} marking neurons of each target; cosine of profiles centred on the pool):",
                    self.layers.to_string(index=False),
                    "",
                    f"{counted(len(self.neurons), 'neuron')} {verb(len(self.neurons), 'marks', 'mark')} out every "
                    f"target (smallest z over the targets >= {MARK_Z:g}), best first:"
                    if len(self.neurons)
                    else f"no neuron marks out every target (none has z >= {MARK_Z:g} for all)",
                    self.neurons.head(20).to_string(index=False) if len(self.neurons) else "",
                    "",
                    "candidates jointly high for every target (above the pool's mean score for each), with the "
                    "shared neurons' share of each score:"
                    if len(self.candidates)
                    else "no candidate scores above the pool's mean for every target",
                    self.candidates.to_string(index=False) if len(self.candidates) else "",
                ]
            )


def shared_view(
    pool: Store,
    features,
    scores: list[Scores],
    options: ScoreOptions,
    records=None,
    k: int = 50,
    n: int = 50,
    candidates: int = 10,
) -> Shared:
    """The whole shared-neuron view for two or more targets (features with their pool scores)."""
    if len(features) < 2:
        raise ValueError("shared neurons need two targets or more")
    mean, std = pool.mean("mean"), pool_std(pool)
    marked = {f.name: marks(f.profile, mean, std) for f in features}
    centred = {f.name: f.profile - mean for f in features}
    neurons = shared_neurons(marked, n)
    rows = joint_candidates(scores, candidates)
    table = shared_share(pool, rows, features, scores, options, neurons)
    if records is not None:
        table["source"] = [records[r].source for r in rows]
        table["preview"] = [records[r].preview(80) for r in rows]
    return Shared([f.name for f in features], shared_layers(marked, centred, k), neurons, table, k)


# ---------------------------------------------------------------- nearest targets


def nearest_targets(pool: Store, row: int, targets: dict[str, Store], k: int = 5) -> pd.DataFrame:
    """The k target records whose token-mean profiles are closest to pool record `row`'s: cosine of both
    centred on the pool mean (the similarity `overlap` scores with). Columns target, row, similarity."""
    return nearest_targets_of(pool.rows("mean", [row])[0], pool.mean("mean"), targets, k)


def nearest_targets_of(x: np.ndarray, centre: np.ndarray, targets: dict[str, Store], k: int = 5) -> pd.DataFrame:
    """`nearest_targets` for a token-mean profile x [layers, neurons] centred on `centre` (the pool's mean)."""
    x = (np.asarray(x, np.float32) - centre).ravel()
    x /= max(float(np.linalg.norm(x)), 1e-12)
    parts = []
    for name, store in targets.items():
        t = store.rows("mean", np.arange(store.n_samples)).reshape(store.n_samples, -1) - centre.ravel()
        sims = t @ x / np.maximum(np.linalg.norm(t, axis=1), 1e-12)
        parts.append(pd.DataFrame({"target": name, "row": np.arange(store.n_samples), "similarity": sims}))
    table = pd.concat(parts, ignore_index=True)
    return table.sort_values("similarity", ascending=False, kind="stable").head(k).reset_index(drop=True)
