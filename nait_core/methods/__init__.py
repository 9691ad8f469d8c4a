"""The selection methods, one entry each: the one table the CLI's choices, `nait eval --methods`, the app's
method lists and its agreement table read.

A method says what it reads (`reads`), which decides how it is scored:
- "neurons": the pool store's summaries against each target's capability feature (`scoring.score_store`);
- "hidden": the pool store's final hidden states against each target store's (`methods.rds.score`);
- "neuron-records": the pool store's token means against each target store's, record by record (no capability
  feature: `methods.overlap_max.score`);
- "text": the records' text against the targets' text, no capture (`methods.embed.score`);
- "records": target-free, from the records alone (`baselines`).
Adding a method is one module with its score function plus one line in `REGISTRY`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

READS = ("neurons", "hidden", "neuron-records", "text", "records")


@dataclass(frozen=True)
class Method:
    name: str
    reads: str  # READS: what the capture must hold for it (the store's reductions, its hidden states, nothing)
    compact: bool  # a compact (--sketch) store serves it
    score: str  # "module:function" (imported when first used): its signature is fixed by `reads`
    help: str
    explains: bool = False  # splits a score into per-neuron contributions (`scoring.explain`, the app's views)

    @property
    def target(self) -> bool:
        """Scores against target records (else each record alone)."""
        return self.reads != "records"

    def scorer(self):
        module, function = self.score.split(":")
        return getattr(importlib.import_module(module), function)


NEURON_SCORE = "nait_core.scoring:score_store"  # every neuron method: (pool store, features, options)

REGISTRY = {
    m.name: m
    for m in (
        Method("overlap", "neurons", True, NEURON_SCORE, "centred cosine of token-mean profiles", explains=True),
        Method("overlap-balanced", "neurons", False, NEURON_SCORE, "each layer's overlap, averaged over layers"),
        Method("overlap-z", "neurons", False, NEURON_SCORE, "overlap of neurons standardised by the pool"),
        Method("jaccard", "neurons", False, NEURON_SCORE, "firing sets (needs every neuron)", explains=True),
        Method("nait-pca", "neurons", True, NEURON_SCORE, "Eq. 5 as published", explains=True),
        Method(
            "overlap-max",
            "neuron-records",
            False,
            "nait_core.methods.overlap_max:score",
            "overlap to each target record, the max: RDS+'s max over targets, on neurons",
        ),
        Method("rds", "hidden", True, "nait_core.methods.rds:score", "RDS+: final hidden state, cosine, max"),
        Method("embed", "text", True, "nait_core.methods.embed:score", "sentence encoder, cosine to target mean"),
        Method("ifd", "records", True, "nait_core.baselines:ifd_method", "instruction-following difficulty"),
        Method("length", "records", True, "nait_core.baselines:length_method", "response tokens"),
        Method("random", "records", True, "nait_core.baselines:random_method", "uniform random, seeded"),
    )
}


def names(reads: str | None = None, explains: bool | None = None) -> tuple[str, ...]:
    """Method names in table order: all of them, or those that read `reads` (and explain per neuron or not)."""
    return tuple(
        m.name
        for m in REGISTRY.values()
        if (reads is None or m.reads == reads) and (explains is None or m.explains == explains)
    )


def get(name: str) -> Method:
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]
