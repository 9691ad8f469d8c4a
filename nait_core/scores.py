"""A method's scores of a pool against one feature, kept per layer: what every scoring method returns
(`scoring`, `methods/`), in a module of its own so that methods import it without importing `scoring`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Scores:
    feature: str
    per_layer: np.ndarray  # [n, layers]; sums to score
    layer_offset: np.ndarray  # [layers]; subtracted per layer (z layer-norm), else zeros
    layer_scale: np.ndarray  # [layers]; divides per layer (z layer-norm), else ones

    @property
    def layer_contributions(self) -> np.ndarray:
        return (self.per_layer - self.layer_offset) / self.layer_scale

    @property
    def score(self) -> np.ndarray:
        return self.layer_contributions.sum(axis=1)
