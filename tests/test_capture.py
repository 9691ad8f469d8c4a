"""Capture on the bundled model: padding-invariant, logits untouched, resumable, reused."""

import numpy as np
import pytest
import torch

from nait_core.capture import CaptureOptions, Reducer, capture, forward, token_activations
from nait_core.data import Dataset
from nait_core.datasets import load_builtin
from nait_core.store import Store
from nait_core.tokens import make_batches, pad_batch, tokenize

pytestmark = pytest.mark.model
REDUCTIONS = ["mean", "last", "first", "response_mean"]


@pytest.fixture(scope="module")
def small():
    demo = load_builtin("demo")
    return Dataset("small", [demo.records[i] for i in (0, 260, 320, 900, 5)])


def _reduce(model, tokens, rows, reducer):
    ids, mask = pad_batch([tokens.input_ids[r] for r in rows], model.tokenizer.pad_token_id, "cpu")
    reducer.set_batch(mask, torch.tensor([tokens.response_start[r] for r in rows]))
    with torch.inference_mode():
        forward(model, ids, mask)
    return reducer.out.clone()


def test_padding_never_changes_a_sample(bundled, small):
    tokens = tokenize(small, bundled.tokenizer, 1024)
    reducer = Reducer(bundled, REDUCTIONS)
    shortest = int(np.argmin(tokens.lengths))
    with reducer.hooks():
        alone = _reduce(bundled, tokens, [shortest], reducer)[:, 0]
        rows = list(range(len(small)))
        batched = _reduce(bundled, tokens, rows, reducer)[:, rows.index(shortest)]
    assert tokens.lengths.max() > tokens.lengths[shortest] + 50  # the batch really pads this sample
    torch.testing.assert_close(batched, alone, atol=2e-4, rtol=1e-4)


def test_reductions_match_per_token_activations(bundled, small):
    tokens = tokenize(small, bundled.tokenizer, 1024)
    layer, row = 7, 1
    per_token = {}
    handle = bundled.neuron_modules[layer].register_forward_pre_hook(lambda m, a: per_token.__setitem__("x", a[0][0]))
    with torch.inference_mode():
        forward(bundled, torch.tensor([tokens.input_ids[row]]), torch.ones(1, tokens.lengths[row], dtype=torch.long))
    handle.remove()
    x = per_token["x"]
    reducer = Reducer(bundled, REDUCTIONS)
    with reducer.hooks():
        out = _reduce(bundled, tokens, [row], reducer)[:, 0, layer]
    start = tokens.response_start[row]
    torch.testing.assert_close(out[0], x.mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1], x[-1])
    torch.testing.assert_close(out[2], x[0])
    torch.testing.assert_close(out[3], x[start:].mean(0), atol=1e-5, rtol=1e-5)
    pieces, live, live_start = token_activations(bundled, small.records[row], layer)  # stops after `layer`
    np.testing.assert_allclose(live, x.numpy(), atol=1e-5)
    assert live_start == start and len(pieces) == len(x)
    assert all(not m._forward_pre_hooks for m in bundled.neuron_modules)


def test_hooks_do_not_change_logits_and_are_removed(bundled, small):
    tokens = tokenize(small, bundled.tokenizer, 1024)
    ids, mask = pad_batch(tokens.input_ids[:3], bundled.tokenizer.pad_token_id, "cpu")
    with torch.inference_mode():
        plain = bundled.model(input_ids=ids, attention_mask=mask).logits
        reducer = Reducer(bundled, REDUCTIONS)
        reducer.set_batch(mask, torch.tensor(tokens.response_start[:3]))
        with reducer.hooks():
            hooked = bundled.model(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(plain, hooked)
    assert all(not m._forward_pre_hooks for m in bundled.neuron_modules)


@pytest.mark.unit
def test_batches_respect_budget_and_cover_everything():
    lengths = np.array([5, 300, 40, 41, 39, 120, 7, 300])
    batches = make_batches(lengths, batch_tokens=400, max_batch_size=3)
    assert sorted(i for b in batches for i in b) == list(range(8))
    for batch in batches:
        assert len(batch) <= 3 and len(batch) * lengths[batch].max() <= 400 or len(batch) == 1


def test_interrupted_capture_resumes_and_matches(bundled, small, tmp_path):
    calls = []

    def stop_after_first_shard(progress):
        calls.append(progress.samples_done)
        if progress.samples_done >= 3:
            raise KeyboardInterrupt

    options = CaptureOptions(shard_size=2, max_length=96)  # short samples: this test is about resuming
    with pytest.raises(KeyboardInterrupt):
        capture(bundled, small, tmp_path / "a", options, stop_after_first_shard)
    [folder] = (tmp_path / "a").iterdir()
    partial = Store(folder, __import__("json").loads((folder / "manifest.json").read_text()))
    assert partial.missing_ranges() == [(2, 4), (4, 5)]  # shard 0-2 kept, nothing half-written

    done = []
    resumed = capture(bundled, small, tmp_path / "a", options, lambda p: done.append(p))
    assert resumed.store.complete and done[-1].samples_total == 3  # only the missing 3 samples ran
    fresh = capture(bundled, small, tmp_path / "b", options).store
    np.testing.assert_array_equal(resumed.store.rows("mean", range(5)), fresh.rows("mean", range(5)))

    again = capture(bundled, small, tmp_path / "a", options)
    assert again.reused


def test_workers_split_shards_and_complete_the_store(bundled, small, tmp_path):
    options = dict(shard_size=2, max_length=96)
    first = capture(bundled, small, tmp_path, CaptureOptions(**options, worker=(0, 2)))
    assert first.store.missing_ranges() == [(2, 4)]  # worker 0 wrote shards 0 and 2 of 0, 1, 2
    second = capture(bundled, small, tmp_path, CaptureOptions(**options, worker=(1, 2)))
    assert second.store.complete
    whole = capture(bundled, small, tmp_path / "one", CaptureOptions(**options)).store
    np.testing.assert_array_equal(second.store.rows("last", range(5)), whole.rows("last", range(5)))
