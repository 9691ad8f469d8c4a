"""The `nait eval` run: each arm's selection, fine-tuning and measurement, and its results on disk.

Two phases. Phase 1 computes every arm's selection with one loaded model and saves the indices;
phase 2 trains and measures one arm at a time on a freshly loaded model. `results.json` (every number
and the exact settings) and `results.md` (the table) are rewritten atomically after each step, so an
interrupted run resumes at the next unfinished arm and finished arms are never lost; an arm's training
saves its state under `<out>/checkpoints/` every few minutes, so a long arm resumes mid-way too.

A run may resume on another device (a GPU run finished on a CPU, say): the device is not part of the
recipe, so each arm records where it trained and in what precision, and the table says so when they differ.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from .. import atomic
from ..baselines import BASELINES, baseline_scores
from ..data import Dataset
from ..finetune import FinetuneSettings, TrainProgress, finetune, planned_steps
from ..metrics import measure_per_problem
from ..models import LazyModel, LoadedModel, slugify
from ..pipeline import run_select
from ..progress import ProgressCallback
from ..scoring import ScoreOptions
from ..selection import Cut, ranking, ratio_count
from .report import results_markdown
from .settings import Arm, EvalData, EvalSettings, arms_of, data_fingerprint, load_eval_data, settings_from_json

# ---------------------------------------------------------------- selections


def bin_indices(score: np.ndarray, count: int, which: str) -> np.ndarray:
    """Pool indices (in pool order) of `count` records from the top, the middle (centred on the median rank)
    or the bottom of `score`'s ranking (`selection.ranking`: ties by input order); records without a
    score (NaN) are in no bin. The bins are disjoint when the pool holds 3 × count scored records."""
    order = ranking(score)
    order = order[~np.isnan(np.asarray(score, dtype=np.float64)[order])]
    count = min(count, len(order))
    start = {"top": 0, "middle": (len(order) - count) // 2, "bottom": len(order) - count}[which]
    return np.sort(order[start : start + count])


def selection_indices(
    arm: Arm,
    data: EvalData,
    settings: EvalSettings,
    model: LoadedModel | None,
    progress: ProgressCallback | None = None,
    scored: dict | None = None,
) -> list[int] | None:
    """Indices into the pool that `arm` trains on (None for base and subset arms). Only the feature
    parts of the targets are ever given to selection. `scored`: a dict the caller keeps across arms, so
    a method's score bins reuse its one scoring."""
    cut = Cut(ratio=settings.ratio)
    if arm.kind in ("full", "full-matched"):
        return list(range(len(data.pool)))
    if arm.kind == "random":
        return np.nonzero(cut.mask(baseline_scores("random", None, data.pool, seed=arm.seed)))[0].tolist()
    if arm.kind != "method":
        return None
    if arm.method in BASELINES:
        scores = baseline_scores(
            arm.method, model, data.pool, max_length=settings.finetune.max_length, progress=progress
        )
        return np.nonzero(cut.mask(scores))[0].tolist()
    scored = {} if scored is None else scored
    if arm.method not in scored:
        scored[arm.method] = run_select(
            model,
            data.pool,
            data.features,
            ScoreOptions(method=arm.method),
            cut,
            settings.merge,
            settings.store_dir,
            progress=progress,
        ).selection
    selection = scored[arm.method]
    if arm.bin in (None, "top"):  # the method's own selection (several targets: merged, so maybe more records)
        return selection.indices.tolist()
    # Other bins rank by the merged score (one target: its own score), each the ratio's count
    return bin_indices(selection.score, ratio_count(settings.ratio, len(data.pool)), arm.bin).tolist()


def matched_steps(settings: EvalSettings, pool_size: int) -> int:
    """Optimiser steps of a selection arm at the ratio (single target, no record dropped by truncation):
    the length of the step-matched full arm."""
    return planned_steps(ratio_count(settings.ratio, pool_size), settings.finetune)  # the cut's own count


def arm_finetune_settings(arm: Arm, settings: EvalSettings, pool_size: int) -> FinetuneSettings:
    if arm.kind == "full-matched":
        return dataclasses.replace(settings.finetune, max_steps=matched_steps(settings, pool_size))
    return settings.finetune


def training_set(arm: Arm, data: EvalData, indices: list[int] | None) -> Dataset | None:
    if arm.kind == "subset":
        return data.subsets[arm.name]
    return None if indices is None else data.pool.subset(indices, f"{data.pool.name}-{arm.name}")


# ---------------------------------------------------------------- what each arm selected


def record_kind(record) -> str:
    """A record's kind for composition counts: its `origin` field if it has one, else its source."""
    origin = record.raw.get("origin")
    return origin if isinstance(origin, str) and origin else record.source


def composition(dataset: Dataset, general_except: tuple[str, ...] = (), examples: int = 5) -> dict:
    """What a training set holds: its size, how many records are planted (`"planted": true`), the count
    of each kind (most common first), and the first `examples` general records: neither planted nor of
    a kind in `general_except` (the targets' names)."""
    kinds: dict[str, int] = {}
    for record in dataset.records:
        kinds[record_kind(record)] = kinds.get(record_kind(record), 0) + 1
    general = [r for r in dataset.records if r.raw.get("planted") is not True and record_kind(r) not in general_except]
    return {
        "n": len(dataset),
        "planted": sum(r.raw.get("planted") is True for r in dataset.records),
        "kinds": dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
        "general_examples": [
            {"where": r.where, "kind": record_kind(r), "preview": r.preview(160)} for r in general[:examples]
        ],
    }


def compositions(results: dict, data: EvalData, settings: EvalSettings) -> dict:
    """`composition` of every arm's training set (selected records; a subset's own records). For
    `full-matched` it is the whole pool, of which the arm's steps see a seeded sample."""
    out = {}
    for arm in arms_of(settings):
        train = training_set(arm, data, results["selections"].get(arm.name))
        if train is not None:
            out[arm.name] = composition(train, tuple(settings.targets))
    return out


# ---------------------------------------------------------------- results


def _recipe(settings: dict) -> dict:
    """The settings that decide what an arm measures: all but the device it runs on."""
    return {k: v for k, v in settings.items() if k != "device"}


def load_results(out: Path, settings: EvalSettings, fingerprint: dict) -> dict:
    """The results so far in `out`, or a fresh record. Refuses results made with other settings or data;
    another device is accepted (arms finished before keep the device they ran on)."""
    path = out / "results.json"
    if path.exists():
        results = json.loads(path.read_text(encoding="utf-8"))
        saved_settings = settings_from_json(results.get("settings") or {}).to_json()
        saved = {"settings": _recipe(saved_settings), "data": results.get("data")}
        for name, now in (("settings", _recipe(settings.to_json())), ("data", fingerprint)):
            if saved[name] != now:
                raise ValueError(
                    f"{path} was made with other {name}; give another output folder to start afresh "
                    f"(or the same {name} to resume)"
                )
        for arm in results["arms"].values():  # arms from before arms recorded their device
            arm.setdefault("device", saved_settings["device"] or "default")
        results["settings"] = settings.to_json()
        return results
    return {"settings": settings.to_json(), "data": fingerprint, "selections": {}, "arms": {}}


def checkpoint_folder(out: Path, arm: Arm) -> Path:
    """Where `arm`'s training saves its state while it runs (removed once the arm is measured)."""
    return out / "checkpoints" / slugify(arm.name)


def save_results(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / "results.json", json.dumps(results, indent=1))
    atomic.write_text(out / "results.md", results_markdown(results) + "\n")


def read_results(out: Path | str) -> dict:
    """`out/results.json` as written by `run_eval` (finished or still running). Raises FileNotFoundError
    or ValueError (not JSON, or not a results record) with a message for the user."""
    path = Path(out) / "results.json"
    if not Path(out).is_dir():
        raise FileNotFoundError(f"no folder {out}")
    if not path.is_file():
        raise FileNotFoundError(f"no results.json in {out}")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from None
    if (
        not isinstance(results, dict)
        or not isinstance(results.get("settings"), dict)
        or not isinstance(results.get("arms"), dict)
    ):
        raise ValueError(f"{path} is not a `nait eval` results file (it needs 'settings' and 'arms')")
    return results


# ---------------------------------------------------------------- the run


@dataclass
class ArmProgress:
    arm: str
    index: int  # 1-based position among all arms
    total: int
    stage: str  # "select", "train", "measure", "done", "skip"
    train: TrainProgress | None = None
    detail: str = ""  # e.g. the capture's progress while selecting

    def describe(self) -> str:
        text = f"[{self.index}/{self.total}] {self.arm}: {self.stage}"
        return (
            text + (f" · {self.train.describe()}" if self.train else "") + (f" · {self.detail}" if self.detail else "")
        )


def run_eval(
    settings: EvalSettings,
    out: Path | str,
    load: Callable[[], LoadedModel] | None = None,
    progress: Callable[[ArmProgress], None] | None = None,
    checkpoint_minutes: float = 10.0,
) -> dict:
    """Run (or resume) every arm; returns the results record also written to `out/results.json`.

    `load` returns a fresh base model each call (default: the model the settings name, as the CLI's
    model options do). Training saves its state every `checkpoint_minutes` (0: never) so an interrupted
    arm resumes at its last checkpoint."""
    out = Path(out)
    load = load or (
        lambda: LazyModel(
            settings.model,
            device=settings.device,
            dtype=settings.dtype,
            neuron_module=settings.neuron_module,
            trust_remote_code=settings.trust_remote_code,
        )
    )
    report = progress or (lambda p: None)
    data = load_eval_data(settings)
    arms = arms_of(settings)
    results = load_results(out, settings, data_fingerprint(data))
    results["targets"] = {
        spec: {
            "feature": [r.where for r in f.records],
            "heldout": [r.where for r in h.records],
            "heldout_excluded_seen_in_training_data": n,
        }
        for spec, f, h, n in zip(settings.targets, data.features, data.heldout, data.excluded)
    }
    pending = [a for a in arms if a.name not in results["arms"]]
    needs_selection = [
        a
        for a in pending
        if a.kind in ("method", "random", "full", "full-matched") and a.name not in results["selections"]
    ]
    if needs_selection:  # phase 1: one model for every selection
        model = load() if any(a.kind == "method" for a in needs_selection) else None
        scored: dict = {}  # method -> its selection, shared by its score bins
        for arm in needs_selection:
            position = arms.index(arm) + 1
            report(ArmProgress(arm.name, position, len(arms), "select"))
            results["selections"][arm.name] = selection_indices(
                arm,
                data,
                settings,
                model,
                lambda p, a=arm.name, i=position: report(ArmProgress(a, i, len(arms), "select", detail=p.describe())),
                scored,
            )
            save_results(out, results)
        del model, scored
    results["composition"] = compositions(results, data, settings)
    save_results(out, results)
    for i, arm in enumerate(arms, start=1):  # phase 2: train and measure, one arm at a time
        if arm.name in results["arms"]:
            report(ArmProgress(arm.name, i, len(arms), "skip"))
            continue
        train_data = training_set(arm, data, results["selections"].get(arm.name))
        model = load()
        started = time.perf_counter()
        network, trained_info = model.model, {}
        checkpoints = checkpoint_folder(out, arm)
        if train_data is not None:
            report(ArmProgress(arm.name, i, len(arms), "train"))
            run = finetune(
                model,
                train_data,
                arm_finetune_settings(arm, settings, len(data.pool)),
                lambda p, a=arm.name, i=i: report(ArmProgress(a, i, len(arms), "train", p)),
                checkpoints if checkpoint_minutes > 0 else None,
                checkpoint_minutes * 60,
            )
            network = run.network
            trained_info = {
                "train_examples": run.examples,
                "train_dropped_truncated": run.dropped,
                "final_train_loss": run.final_loss,
                "train_steps": run.steps,
                "train_precision": run.precision,
                # train_seconds then counts this process only; the segments say where (and how long)
                # each earlier stretch of steps ran
                **({"train_resumed_at_step": run.resumed_at, "train_segments": run.segments} if run.resumed_at else {}),
            }
        trained = time.perf_counter()
        report(ArmProgress(arm.name, i, len(arms), "measure"))
        measured = {
            spec: measure_per_problem(network, model.tokenizer, held, settings.measure)
            for spec, held in zip(settings.targets, data.heldout)
        }
        metrics = {spec: m for spec, (m, _) in measured.items()}
        results["arms"][arm.name] = {
            "group": arm.group,
            "kind": arm.kind,
            "method": arm.method,
            "bin": arm.bin,
            "seed": arm.seed,
            "path": arm.path,
            "n_train": None if train_data is None else len(train_data),
            "device": str(model.device),
            **trained_info,
            "train_seconds": trained - started,
            "measure_seconds": time.perf_counter() - trained,
            "metrics": metrics,
            "per_problem": {spec: detail for spec, (_, detail) in measured.items()},
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        save_results(out, results)
        shutil.rmtree(checkpoints, ignore_errors=True)  # the arm's result is safe on disk
        report(ArmProgress(arm.name, i, len(arms), "done"))
        del model, network
    return results
