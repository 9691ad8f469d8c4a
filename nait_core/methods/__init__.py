"""The selection methods, one entry each: the one table the CLI's choices, `nait eval --methods`, the app's
method lists and its agreement table read.

A method says what it reads (`reads`), which decides how it is scored:
- "neurons": the pool store's summaries against each target's capability feature (`scoring.score_store`);
- "hidden": the pool store's final hidden states against each target store's (`methods.rds.score`);
- "text": the records' text against the targets' text, no capture (`methods.embed.score`);
- "records": target-free, from the records alone (`baselines`).
Adding a method is one module with its score function plus one line in `REGISTRY`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

READS = ("neurons", "hidden", "text", "records")


@dataclass(frozen=True)
class Method:
    name: str
    reads: str  # READS: what the capture must hold for it (the store's reductions, its hidden states, nothing)
    compact: bool  # a compact (--sketch) store serves it
    score: str  # "module:function" (imported when first used): its signature is fixed by `reads`
    help: str

    @property
    def target(self) -> bool:
        """Scores against target records (else each record alone)."""
        return self.reads != "records"

    def scorer(self):
        module, function = self.score.split(":")
        return getattr(importlib.import_module(module), function)


REGISTRY = {
    m.name: m
    for m in (
        Method("overlap", "neurons", True, "nait_core.scoring:score_store", "centred cosine of token-mean profiles"),
        Method("overlap-balanced", "neurons", False, "nait_core.scoring:score_store", "each layer's overlap, averaged"),
        Method(
            "overlap-z",
            "neurons",
            False,
            "nait_core.scoring:score_store",
            "overlap of neurons standardised by the pool",
        ),
        Method("jaccard", "neurons", False, "nait_core.scoring:score_store", "firing sets (needs every neuron)"),
        Method("nait-pca", "neurons", True, "nait_core.scoring:score_store", "Eq. 5 as published"),
        Method("rds", "hidden", True, "nait_core.methods.rds:score", "RDS+: final hidden state, cosine, max"),
        Method("embed", "text", True, "nait_core.methods.embed:score", "sentence encoder's cosine to the target mean"),
        Method("ifd", "records", True, "nait_core.baselines:ifd_method", "instruction-following difficulty"),
        Method("length", "records", True, "nait_core.baselines:length_method", "response tokens"),
        Method("random", "records", True, "nait_core.baselines:random_method", "uniform random, seeded"),
    )
}


def names(reads: str | None = None) -> tuple[str, ...]:
    """Method names in table order, all of them or those that read `reads`."""
    return tuple(m.name for m in REGISTRY.values() if reads is None or m.reads == reads)


def get(name: str) -> Method:
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]
