"""`embed` against a by-hand reference: the bundled all-MiniLM-L6-v2, mean pooling, cosine to the target mean."""

import numpy as np
import pytest
import torch

from nait_core.data import Dataset
from nait_core.methods import embed
from nait_core.pipeline import run_select
from nait_core.scoring import ScoreOptions
from nait_core.selection import Cut
from nait_testing.models import tiny_records

pytestmark = pytest.mark.model


def by_hand(folder, texts) -> np.ndarray:
    """One text at a time (no padding): mean of the last hidden state over its tokens, unit length."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    out = []
    with torch.no_grad():
        for text in texts:
            batch = tokenizer(text, truncation=True, max_length=256, return_tensors="pt")
            pooled = model(**batch).last_hidden_state[0].double().mean(0).numpy()
            out.append(pooled / np.linalg.norm(pooled))
    return np.stack(out)


def test_embed_matches_a_by_hand_reference_and_caches_per_pool(tmp_path):
    records = tiny_records(12).records
    pool, target = Dataset("pool", records[:9]), Dataset("target", records[9:])
    folder = embed.encoder_folder()
    x = by_hand(folder, ["\n".join(t["content"] for t in r.conversation) for r in pool.records])
    q = by_hand(folder, ["\n".join(t["content"] for t in r.conversation) for r in target.records])
    centre = q.mean(0)
    want = x @ (centre / np.linalg.norm(centre))
    result = run_select(None, pool, [target], ScoreOptions("embed"), Cut(ratio=0.5), root=tmp_path)
    np.testing.assert_allclose(result.scores[0].score, want, atol=1e-3)
    assert result.pool is None  # nothing captured
    (cache,) = tmp_path.glob("embed--*.npy")
    cache.write_bytes(b"damaged")  # a damaged cache is recomputed, never used
    again = run_select(None, pool, [target], ScoreOptions("embed"), Cut(ratio=0.5), root=tmp_path)
    np.testing.assert_allclose(again.scores[0].score, want, atol=1e-3)
    assert np.load(cache).shape == (9, 384)


def test_embed_model_that_is_no_encoder_folder_is_refused_by_name(tmp_path):
    with pytest.raises(embed.EmbedError, match="not a sentence-transformers folder"):
        embed.encoder_folder(str(tmp_path))
