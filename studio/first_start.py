"""One progress view for the whole first start: every capture the app must make before a page is usable
(the pool, then each target), with records and tokens of all of them together, one rate, one ETA and what
happens next; instead of a bar per capture that restarts at "0 tok/s · ETA ?"."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from nait_core.progress import Progress


@dataclass
class Step:
    name: str
    records: int
    count: Callable[[], int] | None = None  # counts its tokens (it needs the tokenizer: called once one is loaded)
    tokens: int | None = None  # counted before it starts, else estimated from the others
    progress: Progress | None = None  # None: not started
    done: bool = False


@dataclass
class FirstStart:
    steps: list[Step] = field(default_factory=list)

    def add(self, name: str, records: int, count: Callable[[], int] | None = None) -> Step:
        self.steps.append(Step(name, records, count))
        return self.steps[-1]

    def update(self, step: Step, p: Progress) -> None:
        """A capture's progress; the first one (the model is loaded by then) counts the waiting steps' tokens."""
        for waiting in self.steps:
            if waiting.progress is None and waiting.count is not None and waiting.tokens is None:
                try:
                    waiting.tokens = waiting.count()
                except Exception:  # only the ETA needs it: its own capture reports the error
                    waiting.count = None  # estimated from the others, as before
        step.progress = p
        step.done = p.samples_total > 0 and p.samples_done >= p.samples_total

    def finish(self, step: Step) -> None:
        step.done = True

    def totals(self) -> tuple[int, int, int, float, float]:
        """(records done, records in all, tokens done, tokens in all (an unstarted step's counted tokens, else
        estimated from the tokens per record seen so far), seconds spent capturing)."""
        started = [s.progress for s in self.steps if s.progress is not None]
        records_done = sum(p.samples_done for p in started) + sum(
            s.records for s in self.steps if s.done and s.progress is None
        )
        records = sum(s.records for s in self.steps)
        tokens_done = sum(p.tokens_done for p in started)
        known = sum(p.tokens_total for p in started)
        known_records = sum(p.samples_total for p in started)
        per_record = known / known_records if known_records else float("nan")
        waiting = [s for s in self.steps if s.progress is None and not s.done]
        counted = sum(s.tokens for s in waiting if s.tokens is not None)
        unstarted = sum(s.records for s in waiting if s.tokens is None)
        tokens = known + counted + (per_record * unstarted if unstarted else 0.0)
        return records_done, records, tokens_done, tokens, sum(p.seconds for p in started)

    def eta_seconds(self) -> float:
        _, _, tokens_done, tokens, seconds = self.totals()
        rate = tokens_done / seconds if seconds > 0 else 0.0
        return (tokens - tokens_done) / rate if rate > 0 and not math.isnan(tokens) else float("nan")

    def fraction(self) -> float:
        records_done, records, tokens_done, tokens, _ = self.totals()
        if tokens and not math.isnan(tokens):
            return min(tokens_done / tokens, 1.0)
        return records_done / records if records else 0.0

    def text(self) -> str:
        """The view in Markdown: the totals with one ETA, then each capture's state, then what comes next."""
        records_done, records, tokens_done, tokens, seconds = self.totals()
        eta = self.eta_seconds()
        rate = tokens_done / seconds if seconds > 0 else 0.0
        tokens_text = "?" if math.isnan(tokens) else f"{tokens:,.0f}"
        lines = [
            f"**First start: capturing the model's activations** — {records_done:,}/{records:,} records, "
            f"{tokens_done:,}/{tokens_text} tokens · {rate:,.0f} tok/s · ETA "
            + ("?" if math.isnan(eta) else f"{int(eta // 60)}:{int(eta % 60):02d}")
            + " for the whole start. Done once: later starts reuse the stores, and finished shards are kept "
            "if you leave.",
            "",
        ]
        running = next((s for s in self.steps if not s.done), None)
        for s in self.steps:
            state = "done" if s.done else "capturing" if s is running else "waiting"
            p = s.progress
            counts = f"{p.samples_done:,}/{s.records:,} records" if p else f"{s.records:,} records"
            tokens = p.tokens_total if p else s.tokens
            lines.append(f"- {s.name}: {state}, {counts}" + ("" if tokens is None else f", {tokens:,} tokens"))
        later = [s.name for s in self.steps if not s.done and s is not running]
        lines += [
            "",
            "Next: "
            + (f"{', '.join(later)}, then " if later else "")
            + "the target features and the scores; then the page opens.",
        ]
        return "\n".join(lines)
