"""Methods whose score does not split into neurons (rds, embed, overlap-max) on the explanation pages, driven
by AppTest on the small demo: each page says so plainly, shows the scores and ranks, and raises nothing."""

from __future__ import annotations

import pytest

from nait_testing.app import check
from tests.test_app_explain import markdown, open_at

pytestmark = pytest.mark.slow
UNSPLIT = ["rds", "embed", "overlap-max"]


def text(at) -> str:
    """Everything the page wrote: markdown, captions, notes and warnings."""
    return "\n".join(e.value for kind in ("markdown", "caption", "info", "warning") for e in getattr(at, kind))


@pytest.mark.parametrize("method", UNSPLIT)
def test_the_sample_explorer_says_the_score_does_not_split_into_neurons(demo, method):
    at = open_at("samples", method=method, row=3)
    check(at)
    assert not at.error, [e.value for e in at.error]
    assert at.query_params["method"] == method  # served, not replaced by overlap
    shown = text(at)
    assert f"`{method}`" in shown and "does not split into neurons" in shown
    assert "What makes its score" not in shown and "share of score" not in shown
    assert any("rank" in d.value.columns for d in at.dataframe)  # the scores and ranks are still shown


@pytest.mark.parametrize("method", UNSPLIT)
def test_transfer_says_the_score_does_not_split_into_neurons(demo, method):
    at = open_at("transfer", method=method, ratio=0.5)
    check(at)
    assert not at.error, [e.value for e in at.error]
    assert at.query_params["method"] == method
    shown = text(at)
    assert f"`{method}`" in shown and "does not split into neurons" in shown
    assert "Core subset" in markdown(at) or any("Core subset" in s.value for s in at.subheader)
