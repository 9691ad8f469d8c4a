"""`overlap-max` (RDS+'s max over target records, on neuron profiles) against a plain NumPy reference."""

import numpy as np
import pytest

from nait_core import methods
from nait_core.scoring import ScoreOptions
from nait_testing.stores import synthetic_store

pytestmark = pytest.mark.unit


def reference(x: np.ndarray, t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """max_j of the centred cosine of each candidate to target record j, every layer and neuron at once."""
    a = (x - c).reshape(len(x), -1)
    b = (t - c).reshape(len(t), -1)
    cos = (a @ b.T) / (np.linalg.norm(a, axis=1)[:, None] * np.linalg.norm(b, axis=1)[None, :])
    return cos.max(axis=1)


@pytest.mark.parametrize("centre", [True, False])
def test_overlap_max_is_the_max_over_target_records_of_the_centred_cosine(tmp_path, centre):
    pool, data = synthetic_store(tmp_path / "p", n=40, layers=3, neurons=5, shard_size=7)
    target, tdata = synthetic_store(tmp_path / "t", n=6, layers=3, neurons=5, seed=1, shift=0.4)
    x, t = data["mean"].astype(np.float64), tdata["mean"].astype(np.float64)
    c = x.mean(axis=0) if centre else np.zeros_like(x[0])
    scorer = methods.get("overlap-max").scorer()
    (scores,) = scorer(pool, [target], ["t"], ScoreOptions("overlap-max", centre=centre))
    np.testing.assert_allclose(scores.score, reference(x, t, c), atol=1e-4)
    assert scores.per_layer.shape == (40, 3)  # the winning target record's part per layer, summing to the score
    # not overlap's cosine to the target's mean profile: a different score (and ranking)
    mean_cos = reference(x, t.mean(axis=0, keepdims=True), c)
    assert not np.allclose(scores.score, mean_cos, atol=1e-2)


def test_overlap_max_refuses_a_target_of_another_model(tmp_path):
    pool, _ = synthetic_store(tmp_path / "p", n=10, layers=2, neurons=3)
    other, _ = synthetic_store(tmp_path / "t", n=4, layers=2, neurons=3, fingerprint="other")
    with pytest.raises(ValueError, match="another model"):
        methods.get("overlap-max").scorer()(pool, [other], ["t"], ScoreOptions("overlap-max"))
    assert "overlap-max" in methods.names() and methods.get("overlap-max").target


@pytest.mark.model
def test_overlap_max_through_select_and_eval_on_a_tiny_model(tokenizer, tmp_path):
    from nait_core.data import Dataset
    from nait_core.eval import ARM_METHODS
    from nait_core.pipeline import run_select
    from nait_core.selection import Cut
    from nait_testing.models import tiny_model, tiny_records

    records = tiny_records(17).records
    pool, target = Dataset("pool", records[:13]), Dataset("target", records[13:])
    result = run_select(
        tiny_model("llama", tokenizer), pool, [target], ScoreOptions("overlap-max"), Cut(top=3), root=tmp_path
    )
    x = result.pool.rows("mean", np.arange(13)).astype(np.float64)
    t = result.reports[1].store.rows("mean", np.arange(4)).astype(np.float64)
    np.testing.assert_allclose(result.scores[0].score, reference(x, t, x.mean(axis=0)), atol=1e-4)
    assert len(result.selection.indices) == 3 and "overlap-max" in ARM_METHODS
