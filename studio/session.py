"""The session every page shares: the loaded model, records, stores and features (`Studio`), the cached
heavy objects behind it, and the scoring settings that Select & export sets and the other pages read.

`studio.sidebar` loads it once per rerun (from app.py); a page gets it with `studio()` or runs with `show`.
`Studio` never reads session state: a page reads the settings (`settings()`) and passes them to it and to the
views it draws (neuron card, shared neurons).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from nait_core import activation_map, explore, pipeline
from nait_core import methods as registry
from nait_core.baselines import cached_baseline_scores
from nait_core.capture import CaptureOptions, CaptureReport, capture, token_activations
from nait_core.data import DataError, Dataset
from nait_core.explain import live_summaries
from nait_core.features import Feature, FeatureError
from nait_core.models import BUNDLED_MODEL, LazyModel, LoadedModel, ModelError, load_model
from nait_core.scoring import ScoreOptions, Scores, fire_thresholds, score_store
from nait_core.selection import Cut, Selection, ranking, select
from nait_core.sketch import Sketch, exact_sample_store, store_sketch
from nait_core.spec import (
    DEFAULT_CUT,
    DEFAULT_MERGE,
    CaptureSpec,
    DataSpec,
    ExecutionSettings,
    ModelSpec,
    SelectionSpec,
    to_command,
)
from nait_core.store import DEFAULT_REDUCTIONS, Store, StoreError, list_stores
from nait_core.tokens import tokenize

from . import guard
from .first_start import FirstStart

USER_ERRORS = (DataError, ModelError, StoreError, FeatureError, ValueError, OSError)  # SketchError: a ValueError
# Session state that names rows of one pool (row numbers, map choices, table picks, score ranges, a top-k
# bounded by the pool's size): dropped when the pool changes, so a page never shows another pool's rows.
POOL_STATE = (
    "url_own",  # the page's own part of the URL last written, which urlstate.remember_choices would keep
    "map_filter",
    "map_box",
    "map_area",
    "map_lines",
    "map_sources",
    "map_status",
    "map_row",
    "samples_row",
    "samples_picked",
    "samples_score",
    "samples_sources",
    "samples_table",
    "samples_map_only",
    "select_top",
)
POOL_STATE_PREFIXES = ("map_chart",)
DEMO_TARGETS = ("gsm8k", "humaneval", "mmlu")
DEFAULT_EXACT_SAMPLE = 2000  # as `nait capture --sketch K` keeps


class NoExactSample(ValueError):
    """A neuron-level view of a compact pool that has no exact sample (captured with --exact-sample 0)."""


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None


def _env_reductions() -> tuple[str, ...]:
    value = os.environ.get("NAIT_REDUCTIONS", "")
    return tuple(r.strip() for r in value.split(",") if r.strip()) or DEFAULT_REDUCTIONS


@dataclass(frozen=True)
class Config:
    """What the sidebar loads. Defaults: the bundled demo, as `nait select --target-size 64` uses it;
    NAIT_MODEL, NAIT_TARGET_SIZE and NAIT_STORE_DIR change them (tests use a small demo in a temporary folder).
    A compact pool: `sketch` K (NAIT_SKETCH; 0 = exact), its exact sample's size (NAIT_EXACT_SAMPLE) and the
    pool's reductions (NAIT_REDUCTIONS, e.g. mean,last-first), as `nait capture --sketch K --exact-sample N
    --reductions R` takes them: the app finds the store that command writes."""

    model: str = field(default_factory=lambda: os.environ.get("NAIT_MODEL", BUNDLED_MODEL))
    pool: str = "demo"
    targets: tuple[str, ...] = DEMO_TARGETS
    target_size: int = field(default_factory=lambda: int(os.environ.get("NAIT_TARGET_SIZE", 64)))  # 0: all
    seed: int = 0
    fmt: str | None = None
    text_field: str | None = None
    skip_invalid: bool = False
    root: str = field(default_factory=lambda: os.environ.get("NAIT_STORE_DIR", "cached_features"))
    sketch: int = field(default_factory=lambda: _env_int("NAIT_SKETCH", 0))
    exact_sample: int = field(default_factory=lambda: _env_int("NAIT_EXACT_SAMPLE", DEFAULT_EXACT_SAMPLE))
    reductions: tuple[str, ...] = field(default_factory=_env_reductions)

    def pool_options(self) -> CaptureOptions:
        """The pool's capture options, built by the rule `nait capture` uses (`pipeline.compact_options`)."""
        return pipeline.compact_options(CaptureOptions(reductions=self.reductions), self.sketch, 0, self.exact_sample)


@dataclass(frozen=True)
class Settings:
    """Scoring and selection settings: set on Select & export, read by every page."""

    options: ScoreOptions = ScoreOptions()
    cut: Cut = DEFAULT_CUT
    merge: str = DEFAULT_MERGE


# ---------------------------------------------------------------- cached heavy objects


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def _model(name: str) -> LoadedModel:
    return load_model(name)


def _lazy_model(name: str) -> LazyModel:
    """The model as a name and fingerprint; its weights load (once, shared by sessions) only when a page
    needs them: a capture, a live per-token pass, or a baseline not yet cached. Reopening captured
    stores, scoring and the map never load them."""
    return LazyModel(name, loader=lambda name, **_: _model(name))


def _file_key(spec: str) -> str:
    path = Path(spec)
    return f"{path.stat().st_mtime_ns}-{path.stat().st_size}" if path.exists() else os.environ.get("NAIT_DEMO_SIZE", "")


# `version` (the file's mtime and size) is a plain argument: Streamlit leaves `_`-prefixed ones out of the key
@st.cache_resource(show_spinner="Reading records…", max_entries=32)
def _dataset(spec: str, fmt, text_field, skip_invalid: bool, limit, seed: int, version: str) -> Dataset:
    return pipeline.load_data(spec, fmt=fmt, text_field=text_field, skip_invalid=skip_invalid, limit=limit, seed=seed)


@st.cache_resource
def _reports() -> dict:
    """Capture reports by (model, data, root): filled by `_capture`, shared by every session."""
    return {}


def token_count(model, data: Dataset, max_length: int) -> Callable[[], int]:
    """Counts `data`'s tokens when called (small target sets: the first start's ETA is then exact for them);
    asking the tokenizer loads the model, so only a capture that has begun calls it (FirstStart.update)."""
    return lambda: int(tokenize(data, model.tokenizer, max_length).lengths.sum())


def _capture(
    model: LoadedModel, dataset: Dataset, key: tuple, root: str, options: CaptureOptions, start: FirstStart, slot
) -> CaptureReport:
    """Capture (or reuse) a store; while it works, the first start's one view (`start`, drawn in `slot`)
    shows it among every capture of this start."""
    reports = _reports()
    if key not in reports:
        step = next((s for s in start.steps if s.name == dataset.name and not s.done), None)
        step = step or start.add(dataset.name, len(dataset))

        def show(p):
            start.update(step, p)
            with slot.container():
                st.progress(start.fraction())
                st.markdown(start.text())

        reports[key] = capture(model, dataset, root, options, show)
        start.finish(step)
    return reports[key]


@st.cache_resource(max_entries=32)
def _feature(store_path: str, root: str, name: str, _store) -> Feature:
    feature = pipeline.feature_for(_store, root)
    feature.name = name
    return feature


@st.cache_resource(show_spinner="Scoring the pool…", max_entries=16)
def _scores(store_path: str, feature_keys: tuple, options_key: str, _pool, _features, _options) -> list[Scores]:
    return score_store(_pool, _features, _options)


@st.cache_resource(show_spinner="Scoring the pool against the target records…", max_entries=16)
def _record_scores(store_path: str, target_keys: tuple, options_key: str, _studio, _options) -> list[Scores]:
    """Scores of a method that reads the targets' records, not their features (rds, embed, overlap-max)."""
    method = registry.get(_options.method)
    if method.reads == "text":  # the records' text; the pool's embeddings cached beside the stores
        return method.scorer()(_studio.pool, _studio.targets, _studio.target_names, _options, _studio.config.root)
    return method.scorer()(_studio.pool_store, _studio.target_stores, _studio.target_names, _options)


def unavailable_methods(pool: Store, targets: list[Store]) -> dict[str, str]:
    """The registry's target-scoring methods these stores cannot serve, each with why (for the method list)."""
    sketch, out = store_sketch(pool), {}
    for method in registry.REGISTRY.values():
        if not method.target:
            continue
        if sketch and not method.compact:
            out[method.name] = f"a compact pool (K = {sketch.k}) does not keep every neuron's value"
        elif method.reads == "hidden" and not all(s.hidden_size for s in [pool, *targets]):
            old = [str(s.path) for s in [pool, *targets] if not s.hidden_size]
            out[method.name] = (
                f"it reads each record's final hidden state, which stores captured by an older nait lack "
                f"({', '.join(old)}): delete those folders and load again to recapture them"
            )
        elif method.reads == "text":
            from nait_core.methods.embed import EmbedError, encoder_folder

            try:
                encoder_folder(None)
            except EmbedError as error:
                out[method.name] = str(error).replace("--method embed needs", "it needs")
    return out


@st.cache_resource(
    show_spinner="Scoring the pool by a baseline (ifd: two forward passes, then cached on disk)…", max_entries=8
)
def _baseline(store_path: str, method: str, _model, _pool, _store=None) -> np.ndarray:
    return cached_baseline_scores(method, _model, _pool, _store if _store is not None else store_path)


@st.cache_resource(show_spinner="Explaining the top records…", max_entries=16)
def _reasons(store_path: str, rows: tuple, feature_key: str, options_key: str, _studio, _options) -> list[str]:
    exact = _studio.exact if _studio.compact else None
    return explore.reasons(_studio.pool_store, list(rows), _studio.features, _studio.scores(_options), _options, exact)


@st.cache_resource(show_spinner="One forward pass of this record…", max_entries=64)
def _token_activations(model_name: str, pool_path: str, row: int, layer: int, _model, _record):
    return token_activations(_model, _record, layer)


@st.cache_resource(show_spinner="One live forward pass of this record through every layer…", max_entries=64)
def _live_summaries(model_name: str, pool_path: str, row: int, reductions: tuple, _model, _record):
    return live_summaries(_model, _record, reductions)


@st.cache_resource(show_spinner="Computing firing thresholds…", max_entries=8)
def _thresholds(store_path: str, threshold: str, _pool) -> np.ndarray:
    return fire_thresholds(_pool, threshold)


@st.cache_resource(show_spinner="Computing the map (PCA, then UMAP; cached on disk)…", max_entries=4)
def _map(store_path: str, target_paths: tuple, _pool, _targets, _rows=None):
    """The map's coordinates; `_rows`: the pool rows of `_pool`'s rows (a compact pool's exact sample)."""
    coords = activation_map.map_coordinates(_pool, _targets)
    if _rows is not None:
        pool = coords["group"] < 0
        coords.loc[pool, "index"] = np.asarray(_rows)[coords.loc[pool, "index"].to_numpy()]
    return coords


@st.cache_resource(show_spinner="Reading neuron values…", max_entries=32)
def _neurons(store_path: str, neurons: tuple, _store) -> np.ndarray:
    return explore.gather_neurons(_store, [l for l, _ in neurons], [j for _, j in neurons])


def _stamp(folder: Path) -> int:
    """Changes when a shard, cache or manifest is added to or replaced in a store folder (its mtime)."""
    try:
        return folder.stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_resource(show_spinner=False, max_entries=256)
def _size(path: str, stamp: int, _store) -> int:
    return _store.size_bytes()


def store_bytes(store) -> int:
    """A store's size on disk, listed once per change of its folder (a 1M-sample store has ~12,000 files)."""
    return _size(str(store.path), _stamp(store.path), store)


@st.cache_resource(show_spinner=False, max_entries=16)
def _listing(root: str, stamps: tuple) -> list[dict]:
    return list_stores(Path(root))


def store_listing(root: str) -> list[dict]:
    """`store.list_stores(root)`, read again only when a store folder under `root` changed."""
    folder = Path(root)
    stores = [p for p in sorted(folder.iterdir()) if (p / "manifest.json").exists()] if folder.is_dir() else []
    stamps = tuple((p.name, _stamp(p)) for p in stores)
    return _listing(root, stamps)


# ---------------------------------------------------------------- the loaded session


@dataclass
class Studio:
    """Everything a page needs: model, records, stores, features, and cached scores and selections."""

    config: Config
    model: LoadedModel
    pool: Dataset
    pool_report: CaptureReport
    targets: list[Dataset]
    target_reports: list[CaptureReport]
    features: list[Feature] = field(default_factory=list)
    selections: dict = field(default_factory=dict, repr=False)  # Settings -> Selection, filled on demand
    downloads: dict = field(default_factory=dict, repr=False)  # (Settings, kind) -> bytes offered for download
    tables: dict = field(default_factory=dict, repr=False)  # (Settings, kind) -> a page's table, made once

    @property
    def pool_store(self):
        return self.pool_report.store

    @property
    def target_stores(self):
        return [r.store for r in self.target_reports]

    @property
    def target_names(self) -> list[str]:
        return [f.name for f in self.features]

    # ---- exact and compact pools. A compact pool (`nait capture --sketch K`) holds K projections per layer:
    # scores are estimated from them; every per-neuron value comes from its exact sample (or a live pass).

    @cached_property
    def sketch(self) -> Sketch | None:
        """The pool's sketch (a compact pool), or None (an exact pool)."""
        return store_sketch(self.pool_store)

    @property
    def compact(self) -> bool:
        return self.sketch is not None

    @cached_property
    def exact(self) -> tuple[Store, np.ndarray] | None:
        """(a store of exact values, the pool rows it holds in order): the pool itself when it is exact, a
        compact pool's exact sample, or None (a compact pool captured with --exact-sample 0)."""
        if not self.compact:
            return self.pool_store, np.arange(self.pool_store.n_samples)
        return exact_sample_store(self.pool_store)

    def _exact(self) -> tuple[Store, np.ndarray]:
        if self.exact is None:
            raise NoExactSample(
                f"this compact pool (K = {self.sketch.k}) has no exact sample (captured with --exact-sample 0), "
                f"and per-neuron views need exact values: set an exact sample size in the sidebar (Model and "
                f"data; the pool is captured again) or recapture with `nait capture --sketch {self.sketch.k} "
                f"--exact-sample 2000`"
            )
        return self.exact

    @property
    def neuron_store(self) -> Store:
        """Where the per-neuron views read: the pool when exact, else its exact sample (NoExactSample if none)."""
        return self._exact()[0]

    @property
    def neuron_rows(self) -> np.ndarray:
        """The pool rows of `neuron_store`'s rows (every row of an exact pool)."""
        return self._exact()[1]

    @cached_property
    def neuron_records(self) -> list:
        """The records of `neuron_store`'s rows."""
        return self.pool.records if not self.compact else [self.pool.records[int(r)] for r in self.neuron_rows]

    def exact_position(self, row: int) -> int | None:
        """Where pool record `row` is in `neuron_store`, or None (outside a compact pool's exact sample)."""
        if not self.compact:
            return int(row)
        at = int(explore.positions(self.neuron_rows, [row])[0])
        return None if at < 0 else at

    def exact_positions(self, rows) -> np.ndarray:
        """The `neuron_store` rows of those pool rows that it holds."""
        at = explore.positions(self.neuron_rows, rows)
        return at[at >= 0]

    @cached_property
    def unavailable_methods(self) -> dict[str, str]:
        """Target-scoring methods this pool cannot serve, with why (`unavailable_methods`)."""
        return unavailable_methods(self.pool_store, self.target_stores)

    @property
    def methods(self) -> tuple[str, ...]:
        """The target-scoring methods this pool offers, in the registry's order (`nait_core.methods`): not those
        it cannot serve (a compact pool: jaccard and the exact-only variants; old stores: rds; no encoder: embed)."""
        return tuple(m for m in registry.names() if registry.get(m).target and m not in self.unavailable_methods)

    @cached_property
    def pool_mean(self) -> np.ndarray:
        """The pool's mean of every neuron [layers, neurons] (over the exact sample of a compact pool)."""
        return self.neuron_store.mean("mean")

    @cached_property
    def sources(self) -> list[str]:
        return [r.source for r in self.pool.records]

    @cached_property
    def records_table(self) -> pd.DataFrame:
        """One row per pool record: source, a preview, and the full text lower-cased for search."""
        return pd.DataFrame(
            {
                "source": self.sources,
                "preview": [explore.preview(r, 160) for r in self.pool.records],
                "text": [" ".join(t["content"] for t in r.conversation).lower() for r in self.pool.records],
            }
        )

    def scores(self, options: ScoreOptions) -> list[Scores]:
        """Each target's scores of the pool under `options` (cached)."""
        if registry.get(options.method).reads != "neurons":
            keys = tuple(f.meta["target_hash"] + f.name for f in self.features)
            return _record_scores(str(self.pool_store.path), keys, repr(options), self, options)
        return _scores(
            str(self.pool_store.path),
            tuple(f.meta["target_hash"] + f.name for f in self.features),
            repr(options),
            self.pool_store,
            self.features,
            options,
        )

    def score_vectors(self, options: ScoreOptions) -> dict[str, np.ndarray]:
        """Each target's score of every pool record under `options` (summed once per options: at a million
        records each `Scores.score` sums a [n, layers] array)."""
        return self.kept((options, "scores"), lambda: {s.feature: s.score for s in self.scores(options)})

    def orders(self, options: ScoreOptions) -> dict[str, np.ndarray]:
        """Each target's records best first under `options` (`selection.ranking`; sorted once per options, so
        a new cut or merge does not sort a million scores again)."""
        return self.kept((options, "orders"), lambda: {n: ranking(v) for n, v in self.score_vectors(options).items()})

    def target_masks(self, current: Settings) -> dict[str, np.ndarray]:
        """Which records each target keeps on its own under `current`'s scores and cut (made once per both)."""
        orders = self.orders(current.options)
        return self.kept(
            (current.options, current.cut, "masks"),
            lambda: {n: current.cut.mask(v, orders[n]) for n, v in self.score_vectors(current.options).items()},
        )

    def kept(self, key, make):
        """`make()`, made once per key and kept with the session (the last 16 kept): a page's derived table."""
        if key not in self.tables:
            if len(self.tables) >= 16:
                self.tables.clear()
            self.tables[key] = make()
        return self.tables[key]

    def layer_contributions(self, row: int, options: ScoreOptions) -> dict[str, np.ndarray]:
        """Each target's per-layer contributions [layers] to pool record `row`'s score (one row, not the pool's)."""
        return {s.feature: explore.row_layers(s, row) for s in self.scores(options)}

    def baseline_scores(self, method: str) -> np.ndarray:
        """One score per pool record by a baseline that needs no target (ifd, length, random; cached)."""
        return _baseline(str(self.pool_store.path), method, self.model, self.pool, self.pool_store)

    def selection(self, current: Settings) -> Selection:
        """The selection under `current` settings; kept per settings."""
        if current not in self.selections:
            if len(self.selections) >= 32:
                self.selections.clear()
            self.selections[current] = select(
                self.score_vectors(current.options), current.cut, current.merge, self.orders(current.options)
            )
        return self.selections[current]

    def spec(self, current: Settings) -> SelectionSpec:
        """The selection `selection(current)` makes from this session's data, as `nait select` reads it."""
        c = self.config
        return SelectionSpec(
            data=DataSpec(c.pool, tuple(c.targets), c.target_size or None, c.seed, c.fmt, c.text_field, c.skip_invalid),
            model=ModelSpec(c.model),
            capture=CaptureSpec(
                reductions=c.reductions if tuple(c.reductions) != DEFAULT_REDUCTIONS else (),
                sketch=c.sketch,
                exact_sample=c.exact_sample,
            ),
            scoring=current.options,
            cut=current.cut,
            merge=current.merge,
        )

    def command(self, current: Settings) -> str:
        """The `nait select` line that writes the file Select & export offers under `current`."""
        return to_command(self.spec(current), ExecutionSettings(store_dir=str(self.config.root)))

    def live_summaries(self, row: int, reductions=("mean",)) -> dict[str, np.ndarray]:
        """Exact summaries {reduction: [layers, neurons]} of pool record `row` from one live forward pass
        through every layer (cached): a compact pool's neuron views of a record outside its exact sample."""
        return _live_summaries(
            self.model.name,
            str(self.pool_store.path),
            int(row),
            tuple(dict.fromkeys(reductions)),
            self.model,
            self.pool.records[int(row)],
        )

    def reasons(self, rows: list[int], options: ScoreOptions) -> list[str]:
        """Why each of `rows` scores as it does (top layers and neurons), under `options` (cached)."""
        return _reasons(
            str(self.pool_store.path),
            tuple(int(r) for r in rows),
            "|".join(f.meta["target_hash"] + f.name for f in self.features),
            repr(options),
            self,
            options,
        )

    def token_activations(self, row: int, layer: int):
        """(tokens, activations [pos, neurons] of `layer`, response start) of pool record `row` (cached)."""
        return _token_activations(
            self.model.name, str(self.pool_store.path), row, layer, self.model, self.pool.records[row]
        )

    def thresholds(self, threshold: str) -> np.ndarray:
        """Each neuron's firing threshold (quantiles over the exact sample of a compact pool)."""
        return _thresholds(str(self.neuron_store.path), threshold, self.neuron_store)

    def map(self):
        """The map: (a sample of) the pool, or a compact pool's exact sample, and every target sample;
        `index` of a pool point is its pool row."""
        return _map(
            str(self.neuron_store.path),
            tuple(str(s.path) for s in self.target_stores),
            self.neuron_store,
            self.target_stores,
            self.neuron_rows if self.compact else None,
        )

    def neuron_values(self, store, neurons: list[tuple[int, int]]) -> np.ndarray:
        """Values [n_samples, k] of the given (layer, index) neurons in `store` (cached)."""
        return _neurons(str(store.path), tuple((int(l), int(j)) for l, j in neurons), store)

    def pool_neuron_values(self, neurons: list[tuple[int, int]]) -> np.ndarray:
        """Values [len(neuron_rows), k] of these neurons over the pool (a compact pool's exact sample)."""
        return self.neuron_values(self.neuron_store, neurons)


def load(config: Config) -> Studio:
    """Load the model and data, capture or reuse their stores, and build the target features. A path outside
    the data root (studio.guard) is refused before anything is read."""
    guard.check_config(config)
    model = _lazy_model(config.model)

    def dataset(spec, limit):
        return _dataset(spec, config.fmt, config.text_field, config.skip_invalid, limit, config.seed, _file_key(spec))

    pool_options = config.pool_options()
    target_options = pipeline.target_capture_options(pool_options)

    def key(spec, limit, options):
        return (config.model, spec, _file_key(spec), limit, config.seed, config.root, repr(options))

    def report(spec, data, limit, options):
        return _capture(model, data, key(spec, limit, options), config.root, options, start, slot)

    if not config.targets:
        raise ValueError("add at least one target set (a built-in name such as gsm8k, or a file)")
    pool = dataset(config.pool, None)
    limit = config.target_size or None
    targets = [dataset(t, limit) for t in config.targets]
    # Every capture this start may make, known before the first: one view, one ETA (studio/first_start.py).
    start, slot = FirstStart(), st.empty()
    for spec, data, lim, options in [(config.pool, pool, None, pool_options)] + [
        (t, d, limit, target_options) for t, d in zip(config.targets, targets)
    ]:
        if key(spec, lim, options) not in _reports():  # a target's tokens are counted once a capture has begun
            start.add(data.name, len(data), None if data is pool else token_count(model, data, options.max_length))
    pool_report = report(config.pool, pool, None, pool_options)
    if pool_report.store.manifest.get("shape"):  # the sidebar and pages show the shape without loading weights
        model.shape_hint = (pool_report.store.n_layers, pool_report.store.n_neurons)
    target_reports = [report(t, d, limit, target_options) for t, d in zip(config.targets, targets)]
    slot.empty()
    names = pipeline.unique_names([t.name for t in targets])
    features = [_feature(str(r.store.path), config.root, n, r.store) for r, n in zip(target_reports, names)]
    return Studio(config, model, pool, pool_report, targets, target_reports, features)


def forget_other_pool(studio: Studio) -> None:
    """Drop the row-level choices made on another pool (its store path names model and data)."""
    identity = str(studio.pool_store.path)
    if st.session_state.get("studio_pool") != identity:
        for key in list(st.session_state):
            if key in POOL_STATE or str(key).startswith(POOL_STATE_PREFIXES):
                del st.session_state[key]
        st.session_state["studio_pool"] = identity


def settings() -> Settings:
    return st.session_state.get("studio_settings", Settings())


def summary(current: Settings) -> str:
    """The sidebar's line on the scoring settings."""
    return f"**Scoring** {current.options.describe()}; merge {current.merge}"


COMBINED = {
    "union": "best percentile over targets",
    "intersection": "worst percentile over targets",
    "mean-z": "mean z-score over targets",
}


def combined_name(current: Settings, targets: int) -> str:
    """What a selection's combined score is (selection.select), for every column, axis and colour bar that
    shows it: a percentile under union and intersection, not a raw score."""
    return COMBINED[current.merge] if targets > 1 else f"{current.options.method} score"


def set_settings(new: Settings) -> None:
    st.session_state["studio_settings"] = new
    slot = st.session_state.get("studio_summary_slot")
    if slot is not None:  # the sidebar drew its summary before the page changed the settings: redraw it
        slot.caption(summary(new))


def studio() -> Studio:
    """The session loaded by this rerun's sidebar."""
    return st.session_state["studio"]


def fallback_note(method: str, unavailable: dict[str, str]) -> str:
    """What the app says when the settings name a method this pool cannot serve (`unavailable_methods`)."""
    why = unavailable.get(method, "it does not score against the targets")
    return f"{method} cannot score this pool: {why}. Using overlap."


def show(render) -> None:
    """Run a page's render function on the session; an error the user caused becomes a message. The
    scoring settings and the page's choices are read from the URL before and written to it after."""
    from . import urlstate

    urlstate.restore_settings()
    loaded, current = studio(), settings()
    method = current.options.method
    if method not in loaded.methods:  # from a link or another pool: jaccard on a compact pool, rds on old stores…
        set_settings(replace(current, options=replace(current.options, method="overlap")))
        st.info(fallback_note(method, loaded.unavailable_methods))
    try:
        render(loaded)
    except USER_ERRORS as error:
        st.error(f"{type(error).__name__}: {error}")
    urlstate.publish()
