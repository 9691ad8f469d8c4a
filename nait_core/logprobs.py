"""Log-probabilities of reference responses under a causal LM, with its LM head.

Shared by selection (the `ifd` baseline, `baselines.py`) and evaluation (losses and MMLU option
likelihoods, `metrics.py`), so neither depends on the other. Batches are length-sorted and right-padded
by `tokens.make_batches` / `tokens.pad_batch`, as in capture.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .progress import Progress, ProgressCallback
from .tokens import make_batches, pad_batch


def response_logprobs(
    model,
    input_ids: list[list[int]],
    response_start: list[int],
    pad_id: int,
    batch_tokens: int = 2048,
    progress: ProgressCallback | None = None,
) -> list[np.ndarray]:
    """Log-probability of each response token given everything before it, one array per sample.

    Tokens at positions >= response_start are scored (position 0 never is: nothing precedes it)."""
    device = next(model.parameters()).device
    out: list[np.ndarray | None] = [None] * len(input_ids)
    lengths = np.array([len(ids) for ids in input_ids])
    started, samples_done, tokens_done, tokens_total = time.perf_counter(), 0, 0, int(lengths.sum())
    with torch.inference_mode():
        for batch in make_batches(lengths, batch_tokens, 16):
            ids, mask = pad_batch([input_ids[i] for i in batch], pad_id, device)
            # [batch, pos-1, vocab]: the logits that predict tokens 1..pos-1
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float()
            logp = logits.gather(-1, ids[:, 1:, None])[..., 0] - torch.logsumexp(logits, -1)  # [batch, pos-1]
            for row, i in enumerate(batch):
                start = max(1, response_start[i])
                out[i] = logp[row, start - 1 : lengths[i] - 1].cpu().numpy()
            if progress:
                samples_done, tokens_done = samples_done + len(batch), tokens_done + int(lengths[batch].sum())
                seconds = time.perf_counter() - started
                progress(Progress(samples_done, len(input_ids), tokens_done, tokens_total, seconds))
    return out
