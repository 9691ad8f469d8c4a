"""The whole flow, records → store → features → scores → selection, shared by the CLI and the app."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import methods
from .capture import DEFAULT_STORE_ROOT, CaptureOptions, CaptureReport, capture
from .data import Dataset, read_records, sample_rows
from .datasets import is_builtin, load_builtin
from .features import FEATURE_VERSION, STORE_FEATURE, Feature, FeatureError, build_feature
from .models import LoadedModel
from .progress import ProgressCallback
from .scoring import ScoreOptions, Scores
from .selection import Cut, Selection, select
from .sketch import Sketch
from .sources import is_source, source_name
from .spec import DEFAULT_CUT, DEFAULT_MERGE
from .store import DEFAULT_REDUCTIONS, WRITE_ERRORS, Store, warn_read_only


def load_data(
    spec: str,
    fmt: str | None = None,
    text_field: str | None = None,
    skip_invalid: bool = False,
    limit: int | None = None,
    seed: int = 0,
) -> Dataset:
    """A built-in set by name, a file, or a Hugging Face source (sources.py: hf:<hub id>, a save_to_disk
    folder, an .arrow file); `limit` keeps a seeded random sample of that many records (kept in input order)."""
    dataset = (
        load_builtin(spec)
        if is_builtin(spec) and not Path(spec).exists()
        else read_records(
            spec,
            fmt=fmt,
            text_field=text_field,
            skip_invalid=skip_invalid,
            source=source_name(spec) if is_source(spec) else None,
        )
    )
    if limit is not None and limit < len(dataset):
        dataset = dataset.subset(sample_rows(len(dataset), limit, seed), f"{dataset.name}-n{limit}-s{seed}")
    return dataset


def feature_path(store: Store) -> Path:
    """`<store>/feature.safetensors`: inside the store folder (a remote store's: its local mirror), as every
    derived cache is, so that its caches.json entry is a plain name that can never point elsewhere."""
    return store.path / STORE_FEATURE


def feature_for(store: Store, root: Path | str = DEFAULT_STORE_ROOT, name: str | None = None) -> Feature:
    """The capability feature of a target store: built once, then loaded from `<store>/feature.safetensors`.
    The file is a derived cache listed in the store's caches.json with its checksum: a changed or damaged
    file, or one made from other shards, is rebuilt, never used. On a store folder this process cannot
    write, it is built each time (with a warning). `root` is unused (kept for callers)."""
    path, inputs = feature_path(store), {"version": FEATURE_VERSION}
    if store.cached_file("feature", inputs) == path:
        try:
            return Feature.load(path)
        except FeatureError:  # an older feature format: ours to rebuild
            pass
    feature = build_feature(store, name or store.manifest["data"]["name"])
    try:
        feature.save(path)
    except OSError as error:
        if error.errno not in WRITE_ERRORS:
            raise
        warn_read_only(store.path, error)
        return feature
    store.record_cache("feature", path, inputs)
    return feature


def compact_options(
    options: CaptureOptions, sketch: int | None, seed: int = 0, exact_sample: int = 2000
) -> CaptureOptions:
    """`options` with a pool's compact setting: `--sketch K --sketch-seed S --exact-sample N` (no K or 0:
    exact, and no exact sample). The one rule the CLI and the app build a pool's capture options by, so
    both find the same store."""
    if exact_sample < 0:
        raise ValueError(f"--exact-sample must be 0 or more, not {exact_sample}")
    chosen = Sketch(sketch, seed) if sketch else None
    return replace(options, sketch=chosen, exact_sample=exact_sample if chosen else 0)


def target_capture_options(options: CaptureOptions) -> CaptureOptions:
    """Targets are small: captured exact, with the reductions every feature direction needs."""
    reductions = tuple(dict.fromkeys(DEFAULT_REDUCTIONS + tuple(r for r in options.reductions if r != "last-first")))
    return replace(options, sketch=None, exact_sample=0, reductions=reductions)


@dataclass
class SelectResult:
    candidates: Dataset
    pool: Store | None  # None for a method that reads no store (embed)
    features: list[Feature]
    scores: list[Scores]
    selection: Selection
    reports: list[CaptureReport] = field(default_factory=list)

    @property
    def per_target(self) -> dict[str, np.ndarray]:
        return {s.feature: s.score for s in self.scores}


def unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def run_select(
    model: LoadedModel,
    candidates: Dataset,
    targets: list[Dataset],
    options: ScoreOptions = ScoreOptions(),
    cut: Cut = DEFAULT_CUT,
    merge: str = DEFAULT_MERGE,
    root: Path | str = DEFAULT_STORE_ROOT,
    capture_options: CaptureOptions | None = None,
    progress: ProgressCallback | None = None,
) -> SelectResult:
    """Capture (or reuse) the pool and targets, build the features, score, and select."""
    method = methods.get(options.method)
    names = unique_names([t.name for t in targets])
    if method.reads == "text":  # no capture: the records' text (embeddings cached under `root`)
        scores = method.scorer()(candidates, targets, names, options, root)
        return SelectResult(candidates, None, [], scores, select({s.feature: s.score for s in scores}, cut, merge))
    reports = [capture(model, candidates, root, capture_options, progress)]
    features = []
    # Targets are small: always exact (a compact pool is scored with the exact feature, projected).
    target_options = capture_options and target_capture_options(capture_options)
    for target, name in zip(targets, names):
        report = capture(model, target, root, target_options, progress)
        reports.append(report)
        if method.reads == "neurons":
            feature = feature_for(report.store, root)
            feature.name = name
            features.append(feature)
    pool = reports[0].store
    if method.reads == "neurons":
        scores = method.scorer()(pool, features, options)
    else:  # "hidden", "neuron-records": the target stores themselves (their hidden states, their records' means)
        scores = method.scorer()(pool, [r.store for r in reports[1:]], names, options)
    selection = select({s.feature: s.score for s in scores}, cut, merge)
    return SelectResult(candidates, pool, features, scores, selection, reports)
