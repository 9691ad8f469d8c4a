"""Selection scores that need no capability feature: the peers NAIT is compared with.

- `ifd` (Instruction-Following Difficulty, Cherry LLM / Superfiltering): loss(response | instruction)
  / loss(response alone), each a mean per-token loss; high = the instruction helps little, which
  Cherry LLM ranks first. Two forward passes with the LM head: the capture pass stops before it.
- `length`: number of response tokens (long answers first).
- `random`: uniform random scores from a seed, the honest baseline.

Each returns one score per record of a Dataset, higher = selected first, like every NAIT method.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import atomic, methods
from .data import Dataset, Record
from .logprobs import response_logprobs
from .models import LoadedModel
from .progress import ProgressCallback
from .store import Store
from .tokens import tokenize

BASELINES = methods.names("records")


def ifd_scores(
    model: LoadedModel, dataset: Dataset, max_length: int = 1024, progress: ProgressCallback | None = None
) -> np.ndarray:
    alone = Dataset(dataset.name, [Record(r.raw, r.where, r.source, r.conversation[-1:]) for r in dataset.records])
    conditioned, unconditioned = (
        tokenize(dataset, model.tokenizer, max_length),
        tokenize(alone, model.tokenizer, max_length),
    )
    # Both passes in one call: one progress count, and batches drawn from all lengths.
    logps = response_logprobs(
        model.model,
        conditioned.input_ids + unconditioned.input_ids,
        conditioned.response_start + unconditioned.response_start,
        model.tokenizer.pad_token_id,
        progress=progress,
    )
    losses = np.array([-lp.mean() if len(lp) else np.nan for lp in logps])
    with np.errstate(divide="ignore", invalid="ignore"):
        return losses[: len(dataset)] / losses[len(dataset) :]


def length_scores(model: LoadedModel, dataset: Dataset, max_length: int = 1024) -> np.ndarray:
    tokens = tokenize(dataset, model.tokenizer, max_length)
    return np.array([len(ids) - start for ids, start in zip(tokens.input_ids, tokens.response_start)], dtype=np.float64)


def random_scores(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(n)


# The registry's score functions (methods.REGISTRY): one signature, (model, dataset, seed, max_length, progress).
def ifd_method(model, dataset, seed, max_length, progress):
    return ifd_scores(model, dataset, max_length, progress)


def length_method(model, dataset, seed, max_length, progress):
    return length_scores(model, dataset, max_length)


def random_method(model, dataset, seed, max_length, progress):
    return random_scores(len(dataset), seed)


def baseline_scores(
    method: str,
    model: LoadedModel | None,
    dataset: Dataset,
    seed: int = 0,
    max_length: int = 1024,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Scores of `dataset` by a baseline method (`model` may be None for `random`)."""
    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; choose from {', '.join(BASELINES)}")
    return methods.get(method).scorer()(model, dataset, seed, max_length, progress)


def cached_baseline_scores(
    method: str,
    model: LoadedModel | None,
    dataset: Dataset,
    folder: Path | str | Store,
    seed: int = 0,
    max_length: int = 1024,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """`baseline_scores`, with `ifd` (two forward passes over the pool) kept as `ifd-L<max_length>.npy` in
    `folder`: pass the pool's store (a checksummed cache listed in its caches.json, so a damaged file is
    recomputed, and `model` is loaded only then), or a plain folder."""
    if method != "ifd":
        return baseline_scores(method, model, dataset, seed, max_length, progress)
    if isinstance(folder, Store):
        name, inputs = f"ifd-L{max_length}", {"max_length": max_length, "n": len(dataset)}
        cached = folder.load_cached_array(name, inputs)
        if cached is not None and len(cached) == len(dataset):
            return cached
        scores = ifd_scores(model, dataset, max_length, progress)
        folder.save_cached_array(name, scores, inputs)
        return scores
    path = Path(folder) / f"ifd-L{max_length}.npy"
    if path.exists():
        cached = np.load(path, allow_pickle=False)
        if len(cached) == len(dataset):
            return cached
    scores = ifd_scores(model, dataset, max_length, progress)
    atomic.save_npy(path, scores)
    return scores
