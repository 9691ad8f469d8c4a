"""Selection scores that need no capability feature: the peers NAIT is compared with.

- `ifd` (Instruction-Following Difficulty, Cherry LLM / Superfiltering): loss(response | instruction)
  / loss(response alone), each a mean per-token loss; high = the instruction helps little, which
  Cherry LLM ranks first. Two forward passes with the LM head: the capture pass stops before it.
- `length`: number of response tokens (long answers first).
- `random`: uniform random scores from a seed, the honest baseline.

Each returns one score per record of a Dataset, higher = selected first, like every NAIT method.
"""
from __future__ import annotations

import numpy as np

from .capture import tokenize
from .data import Dataset, Record
from .metrics import response_logprobs
from .models import LoadedModel

BASELINES = ("ifd", "length", "random")


def _mean_losses(model: LoadedModel, dataset: Dataset, max_length: int) -> np.ndarray:
    tokens = tokenize(dataset, model.tokenizer, max_length)
    logps = response_logprobs(model.model, tokens.input_ids, tokens.response_start, model.tokenizer.pad_token_id)
    return np.array([-lp.mean() if len(lp) else np.nan for lp in logps])


def ifd_scores(model: LoadedModel, dataset: Dataset, max_length: int = 1024) -> np.ndarray:
    conditioned = _mean_losses(model, dataset, max_length)
    alone = Dataset(dataset.name, [Record(r.raw, r.where, r.source, r.conversation[-1:]) for r in dataset.records])
    unconditioned = _mean_losses(model, alone, max_length)
    with np.errstate(divide="ignore", invalid="ignore"):
        return conditioned / unconditioned


def length_scores(model: LoadedModel, dataset: Dataset, max_length: int = 1024) -> np.ndarray:
    tokens = tokenize(dataset, model.tokenizer, max_length)
    return np.array([len(ids) - start for ids, start in zip(tokens.input_ids, tokens.response_start)], dtype=np.float64)


def random_scores(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(n)


def baseline_scores(method: str, model: LoadedModel | None, dataset: Dataset, seed: int = 0,
                    max_length: int = 1024) -> np.ndarray:
    """Scores of `dataset` by a baseline method (`model` may be None for `random`)."""
    if method == "random":
        return random_scores(len(dataset), seed)
    if method == "ifd":
        return ifd_scores(model, dataset, max_length)
    if method == "length":
        return length_scores(model, dataset, max_length)
    raise ValueError(f"unknown baseline {method!r}; choose from {', '.join(BASELINES)}")
