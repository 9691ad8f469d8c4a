"""The first start's one progress view (studio/first_start.py): every capture of the start together."""

from __future__ import annotations

import math

import pytest

from nait_core.progress import Progress
from studio.first_start import FirstStart

pytestmark = pytest.mark.unit


def test_one_view_for_the_pool_and_every_target_with_one_eta():
    """Issue 25: each of the three target captures restarted a bare bar at "0 tok/s · ETA ?", with no ETA
    for the whole start. Now: records and tokens of all captures, one rate and ETA, and what comes next."""
    start = FirstStart()
    pool, gsm, mmlu = start.add("demo", 100), start.add("gsm8k", 10), start.add("mmlu", 10)
    start.update(pool, Progress(50, 100, 5_000, 10_000, 50.0))  # 100 tok/s, 100 tokens a record
    records_done, records, tokens_done, tokens, _ = start.totals()
    assert (records_done, records, tokens_done, tokens) == (50, 120, 5_000, 12_000)  # targets estimated
    assert start.eta_seconds() == pytest.approx(70.0)  # 7,000 tokens left at 100 tok/s: the whole start
    text = start.text()
    assert "50/120 records" in text and "5,000/12,000 tokens" in text and "ETA 1:10 for the whole start" in text
    assert "- demo: capturing, 50/100 records" in text and "- gsm8k: waiting, 10 records" in text
    assert "Next: gsm8k, mmlu, then the target features and the scores" in text
    start.update(pool, Progress(100, 100, 10_000, 10_000, 100.0))
    start.update(gsm, Progress(0, 10, 0, 500, 0.0))  # a new capture: the start's rate and ETA carry on
    assert pool.done and start.eta_seconds() == pytest.approx((500 + 10 * 10_500 / 110) / 100)  # at 100 tok/s
    assert "- demo: done" in start.text() and "- gsm8k: capturing" in start.text()
    assert 0.8 < start.fraction() < 0.9
    start.finish(gsm), start.finish(mmlu)
    assert start.fraction() == pytest.approx(10_000 / 10_500)  # mmlu was reused: no tokens of its own


def test_before_any_progress_the_eta_is_unknown_not_zero():
    start = FirstStart()
    start.add("demo", 5)
    assert math.isnan(start.eta_seconds()) and "ETA ?" in start.text() and start.fraction() == 0.0


def test_a_targets_counted_tokens_replace_the_estimate_once_a_capture_begins():
    """The 2026-12-04 first start's ETA said 1:50 with 151 s to go: the targets' tokens were estimated from the
    pool's tokens per record (85,667 in all at first, 93,673 in the end). A target's own count is asked for at
    the first progress report (its tokenizer is loaded by then), never before: that would load the model."""
    asked = []

    def count():
        asked.append(1)
        return 3_000

    start = FirstStart()
    pool = start.add("demo", 100)
    start.add("gsm8k", 10, count)
    assert not asked and math.isnan(start.totals()[3])  # nothing counted before a capture began
    start.update(pool, Progress(50, 100, 5_000, 10_000, 50.0))
    assert asked == [1] and start.totals()[3] == 13_000  # not 11,000 from 100 tokens a record
    assert "- gsm8k: waiting, 10 records, 3,000 tokens" in start.text()
    start.update(pool, Progress(60, 100, 6_000, 10_000, 60.0))
    assert asked == [1]  # counted once
