"""Progress of a pass over records (capture, log-probabilities, baselines): samples and tokens done,
rate and ETA. What the CLI's bar, the app's progress and the Ray board show."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Progress:
    samples_done: int
    samples_total: int
    tokens_done: int
    tokens_total: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float:
        rate = self.tokens_per_second
        return (self.tokens_total - self.tokens_done) / rate if rate > 0 else float("nan")

    def describe(self) -> str:
        eta = self.eta_seconds
        eta_text = "?" if math.isnan(eta) else f"{int(eta // 60)}:{int(eta % 60):02d}"
        return (
            f"{self.samples_done:,}/{self.samples_total:,} samples · {self.tokens_per_second:,.0f} tok/s "
            f"· ETA {eta_text}"
        )


ProgressCallback = Callable[[Progress], None]
