"""`nait eval`'s settings, its arms, and the data it reads: the pool, subsets, and each target split once,
by seed, into a feature part (builds the capability feature) and a held-out part (measured)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import methods
from ..capture import DEFAULT_STORE_ROOT
from ..data import Dataset, content_hash, read_records
from ..finetune import FinetuneSettings
from ..metrics import MeasureSettings
from ..models import BUNDLED_MODEL
from ..pipeline import load_data, unique_names
from ..selection import MERGES, Cut

ARM_METHODS = tuple(methods.REGISTRY)
FULL_STEPS = ("epoch", "matched", "both")  # which full-pool arms: its own epochs, step-matched, or both
# Score bins (does closeness predict gain?): each target-scoring method's ranking cut at its top (the method's
# own arm), its middle (centred on the median rank) and its bottom, each the ratio's count of records.
BINS = ("top", "middle", "bottom")


@dataclass(frozen=True)
class EvalSettings:
    model: str = BUNDLED_MODEL
    device: str | None = None
    dtype: str | None = None
    neuron_module: str | None = None
    trust_remote_code: bool = False
    candidates: str = "demo"
    candidates_limit: int | None = None  # seeded random sample of the pool (split_seed)
    targets: tuple[str, ...] = ("gsm8k",)
    methods: tuple[str, ...] = ("overlap", "nait-pca", "ifd", "random")
    ratio: float = 0.1
    bins: tuple[str, ...] = ("top",)  # BINS: score bins of every target-scoring method (top: its own arm)
    random_seeds: tuple[int, ...] = (0, 1, 2)
    full: bool = True
    full_steps: str = "epoch"  # FULL_STEPS
    base: bool = True
    subsets: tuple[str, ...] = ()  # JSONL files, each trained on as it is
    feature_size: int = 64  # target records that build the feature
    heldout_size: int = 100  # target records measured (never selected or trained on)
    split_seed: int = 0
    merge: str = "union"
    store_dir: str = str(DEFAULT_STORE_ROOT)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    measure: MeasureSettings = field(default_factory=MeasureSettings)

    def __post_init__(self):
        unknown = set(self.methods) - set(ARM_METHODS)
        if unknown:
            raise ValueError(f"unknown methods {sorted(unknown)}; choose from {', '.join(ARM_METHODS)}")
        Cut(ratio=self.ratio)  # validates the ratio
        if self.merge not in MERGES:
            raise ValueError(f"unknown merge {self.merge!r}; choose from {', '.join(MERGES)}")
        if any(b not in BINS for b in self.bins) or "top" not in self.bins or len(set(self.bins)) != len(self.bins):
            raise ValueError(
                f"--bins {','.join(self.bins)}: give each of {', '.join(BINS)} at most once, with top (each "
                "method's own arm, always run), e.g. --bins top,middle,bottom"
            )
        if self.full_steps not in FULL_STEPS:
            raise ValueError(f"unknown full-steps {self.full_steps!r}; choose from {', '.join(FULL_STEPS)}")

    def to_json(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


@dataclass(frozen=True)
class Arm:
    name: str  # "base", "full", "full-matched", "overlap", "overlap@bottom", "random#1", "subset:mine"
    kind: str  # "base", "full", "full-matched", "method", "random", "subset"
    method: str | None = None
    seed: int | None = None
    path: str | None = None
    bin: str | None = None  # method arms: which part of the method's ranking (BINS); "top" is the method's name

    @property
    def group(self) -> str:
        """Arms that differ only by seed share a group (a row of the table)."""
        return self.name.split("#")[0]


def arms_of(settings: EvalSettings) -> list[Arm]:
    arms = [Arm("base", "base")] if settings.base else []
    for method in settings.methods:
        if method == "random":
            arms += [Arm(f"random#{s}", "random", "random", s) for s in settings.random_seeds]
        else:
            arms.append(Arm(method, "method", method, bin="top"))
            if methods.get(method).target:  # the target-free baselines have no closeness to bin
                arms += [Arm(f"{method}@{b}", "method", method, bin=b) for b in settings.bins if b != "top"]
    # step-matched before full: the short arm first, so an interrupted run has more arms finished
    if settings.full and settings.full_steps in ("matched", "both"):
        arms.append(Arm("full-matched", "full-matched"))
    if settings.full and settings.full_steps in ("epoch", "both"):
        arms.append(Arm("full", "full"))
    arms += [Arm(name, "subset", path=p) for name, p in zip(subset_names(settings), settings.subsets)]
    return arms


def subset_names(settings: EvalSettings) -> list[str]:
    """`subset:<file stem>`, with `-2`, `-3`… for repeated stems ('#' is kept for seeds)."""
    return [name.replace("#", "-") for name in unique_names([f"subset:{Path(p).stem}" for p in settings.subsets])]


def settings_from_json(data: dict) -> EvalSettings:
    """The settings `EvalSettings.to_json` wrote (keys this version does not know are ignored)."""

    def build(cls, values: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names})

    top = {k: v for k, v in data.items() if k not in ("finetune", "measure")}
    return dataclasses.replace(
        build(EvalSettings, top),
        finetune=build(FinetuneSettings, data.get("finetune") or {}),
        measure=build(MeasureSettings, data.get("measure") or {}),
    )


# ---------------------------------------------------------------- data


def _key(record) -> str:
    return json.dumps(record.conversation, sort_keys=True)


def split_target(dataset: Dataset, feature_size: int, heldout_size: int, seed: int) -> tuple[Dataset, Dataset]:
    """Disjoint (feature part, held-out part) of a target, drawn by seed, each kept in input order."""
    order = np.random.default_rng(seed).permutation(len(dataset))
    feature, heldout = np.sort(order[:feature_size]), np.sort(order[feature_size : feature_size + heldout_size])
    if len(feature) == 0 or len(heldout) == 0:
        raise ValueError(
            f"target {dataset.name!r} has {len(dataset)} records: too few for a feature part of "
            f"{feature_size} and a held-out part"
        )
    return (
        dataset.subset(feature, f"{dataset.name}-feature-n{len(feature)}-s{seed}"),
        dataset.subset(heldout, f"{dataset.name}-heldout-n{len(heldout)}-s{seed}"),
    )


@dataclass
class EvalData:
    pool: Dataset
    features: list[Dataset]  # per target: the part that builds the feature
    heldout: list[Dataset]  # per target: the part measured, minus records seen in the pool or a subset
    excluded: list[int]  # per target: held-out records left out because the pool or a subset holds them
    subsets: dict[str, Dataset]


def data_fingerprint(data: EvalData) -> dict:
    """Content hashes of every input: saved selections are indices into the pool, so a resumed run
    must see the very same data."""
    digest = lambda d: content_hash(_key(r) for r in d.records)  # noqa: E731
    return {
        "pool": digest(data.pool),
        "features": [digest(d) for d in data.features],
        "heldout": [digest(d) for d in data.heldout],
        "subsets": {k: digest(d) for k, d in data.subsets.items()},
    }


def load_eval_data(settings: EvalSettings) -> EvalData:
    pool = load_data(settings.candidates, limit=settings.candidates_limit, seed=settings.split_seed)
    subsets = {name: read_records(p) for name, p in zip(subset_names(settings), settings.subsets)}
    seen = {_key(r) for d in [pool, *subsets.values()] for r in d.records}
    features, heldout, excluded = [], [], []
    for spec in settings.targets:
        feature, held = split_target(load_data(spec), settings.feature_size, settings.heldout_size, settings.split_seed)
        clean = [i for i, r in enumerate(held.records) if _key(r) not in seen]
        if not clean:  # nothing left to measure: say so before any selection or training
            raise ValueError(
                f"target {spec!r}: all {len(held)} held-out records are also in the pool or a subset, "
                "so nothing is left to measure; use a target that is not part of the pool"
            )
        features.append(feature)
        heldout.append(held.subset(clean))
        excluded.append(len(held) - len(clean))
    return EvalData(pool, features, heldout, excluded, subsets)
