"""Capability features: a target set summarised once into a small, reusable file.

A feature holds, per layer l and neuron j:
- `profile`: the target's expected activation, the mean over target samples of each sample's
  token-mean activation (what `overlap` compares against);
- `median`: the median over target samples of the same; a neuron "fires for the target" at threshold θ
  when median > θ, i.e. when it fires for at least half of the target samples (what `jaccard` uses);
- `pca.<reduction>`: the paper's direction v_l, the first principal component of the target samples'
  ΔA^(l) (Eq. 3), sign-aligned with their mean ΔA (Eq. 4). `last-first` is Eq. 2 as written
  (last token minus first token); `mean` is the token-mean reading of the paper's prose;
- `explained.<reduction>`: the share of variance each layer's direction explains.

Saved as one safetensors file whose header carries JSON metadata (model, target, sample count, options).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save

from . import atomic
from .store import Store, derive

PCA_REDUCTIONS = ("last-first", "mean", "last")
FEATURE_VERSION = 3
STORE_FEATURE = "feature.safetensors"  # a target store's own feature: a derived cache inside the store folder


class FeatureError(ValueError):
    """A feature file that is unreadable or made for another model."""


def summary(store: Store, reduction: str, indices=None) -> np.ndarray:
    """Per-sample summary [n, layers, neurons] for a reduction name, incl. `last-first` (ΔA, Eq. 2)."""
    indices = np.arange(store.n_samples) if indices is None else indices
    return derive(reduction, store.reductions, lambda name: store.rows(name, indices))


def layer_summary(store: Store, reduction: str, layer: int, indices) -> np.ndarray:
    """One layer of `summary`: [n, neurons]."""
    return derive(reduction, store.reductions, lambda name: store.layer_rows(name, layer, indices))


def first_principal_direction(x: np.ndarray) -> tuple[np.ndarray, float]:
    """First principal component of rows of `x` [n, d] (unit vector [d]) and its explained-variance share.

    Exact: an eigen-decomposition of the smaller Gram matrix (n×n or d×d), in float64.
    """
    x = x.astype(np.float64) - x.mean(axis=0, dtype=np.float64)
    total = float((x**2).sum())
    if total == 0.0:
        return np.zeros(x.shape[1], dtype=np.float32), 0.0
    if x.shape[0] <= x.shape[1]:
        values, vectors = np.linalg.eigh(x @ x.T)
        direction = x.T @ vectors[:, -1]
    else:
        values, vectors = np.linalg.eigh(x.T @ x)
        direction = vectors[:, -1]
    direction /= np.linalg.norm(direction)
    return direction.astype(np.float32), float(values[-1] / total)


@dataclass
class Feature:
    name: str
    tensors: dict[str, np.ndarray]  # "profile", "pca.<r>", "explained.<r>", "delta-mean.<r>"
    meta: dict = field(default_factory=dict)

    @property
    def profile(self) -> np.ndarray:
        return self.tensors["profile"]

    @property
    def median(self) -> np.ndarray:
        return self.tensors["median"]

    def direction(self, reduction: str) -> np.ndarray:
        key = f"pca.{reduction}"
        if key not in self.tensors:
            have = [k.split(".", 1)[1] for k in self.tensors if k.startswith("pca.")]
            raise FeatureError(f"feature {self.name!r} has no PCA direction for '{reduction}' (has {have}); rebuild it")
        return self.tensors[key]

    @property
    def model_fingerprint(self) -> str:
        return self.meta["model_fingerprint"]

    def check_compatible(self, store: Store) -> None:
        if self.model_fingerprint != store.model_fingerprint:
            raise FeatureError(
                f"feature {self.name!r} was built with model {self.meta.get('model')!r}, "
                f"but the store {store.path} was captured with {store.manifest['model']['name']!r}; "
                f"build the feature with the same model"
            )
        if self.profile.shape != (store.n_layers, store.n_neurons):
            raise FeatureError(
                f"feature {self.name!r} has shape {self.profile.shape}, store has {(store.n_layers, store.n_neurons)}"
            )

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Bytes, written by atomic.write_bytes: safetensors' own save_file writes through a 0600 temporary
        # file of its own, which left features unreadable to the group that shares the store.
        data = save(
            {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in self.tensors.items()},
            metadata={"nait_feature": json.dumps({**self.meta, "name": self.name})},
        )
        atomic.write_bytes(path, data)
        return path

    @classmethod
    def load(cls, path: Path) -> "Feature":
        path = Path(path)
        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = json.loads((f.metadata() or {})["nait_feature"])
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except FileNotFoundError as error:
            raise FeatureError(f"{path}: feature file not found") from error
        except (KeyError, json.JSONDecodeError, Exception) as error:
            raise FeatureError(f"{path}: not a NAIT feature file ({error})") from error
        if meta.get("version") != FEATURE_VERSION:
            raise FeatureError(f"{path}: feature version {meta.get('version')} is not {FEATURE_VERSION}; rebuild it")
        return cls(meta.get("name", path.stem), tensors, meta)


def build_feature(store: Store, name: str, indices=None, reductions=PCA_REDUCTIONS) -> Feature:
    """Summarise the target samples of `store` (all, or `indices`) into a capability feature."""
    indices = np.arange(store.n_samples) if indices is None else np.asarray(indices)
    if len(indices) < 2:
        raise FeatureError(f"a capability feature needs at least 2 target samples, got {len(indices)}")
    shape = (store.n_layers, store.n_neurons)
    token_means = [store.layer_rows("mean", layer, indices) for layer in range(shape[0])]  # [n, neurons] each
    tensors = {
        "profile": np.stack([m.mean(axis=0) for m in token_means]),
        "median": np.stack([np.median(m, axis=0) for m in token_means]),
    }
    del token_means
    for reduction in reductions:
        directions, explained = np.empty(shape, np.float32), np.empty(shape[0], np.float32)
        for layer in range(store.n_layers):  # one layer at a time: memory stays at [n, neurons]
            deltas = layer_summary(store, reduction, layer, indices)
            v, share = first_principal_direction(deltas)
            if float(deltas.mean(axis=0) @ v) < 0:  # Eq. 4: point the direction along the mean ΔA
                v = -v
            directions[layer], explained[layer] = v, share
        tensors[f"pca.{reduction}"] = directions
        tensors[f"explained.{reduction}"] = explained
    meta = {
        "version": FEATURE_VERSION,
        "model": store.manifest["model"]["name"],
        "model_fingerprint": store.model_fingerprint,
        "target": store.manifest["data"]["name"],
        "target_hash": store.manifest["data"]["hash"],
        "samples": int(len(indices)),
        "reductions": list(reductions),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return Feature(name, tensors, meta)


def library(root: Path) -> list[dict]:
    """Every feature under a store folder `root`: each target store's own (`<store>/feature.safetensors`),
    then the explicit builds in `<root>/features/` (the app's library, `nait feature --out` copies)."""
    return list_features(Path(root), f"*/{STORE_FEATURE}") + list_features(Path(root) / "features")


def list_features(folder: Path, pattern: str = "*.safetensors") -> list[dict]:
    out = []
    for path in sorted(Path(folder).glob(pattern)):
        try:
            f = Feature.load(path)
            out.append(
                {
                    "path": str(path),
                    "name": f.name,
                    "model": f.meta.get("model"),
                    "target": f.meta.get("target"),
                    "samples": f.meta.get("samples"),
                    "size_kb": round(path.stat().st_size / 1e3, 1),
                }
            )
        except FeatureError as error:
            out.append({"path": str(path), "error": str(error)})
    return out
