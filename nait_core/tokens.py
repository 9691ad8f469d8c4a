"""From records to model inputs: tokenizing with the chat template, and padded, length-sorted batches.

Every forward pass over records goes through here: capture (`capture.py`), log-probabilities for the
baselines and the metrics (`logprobs.py`), fine-tuning (`finetune.py`), the Ray shards (`distributed.py`)
and the live per-token views (`explain.py`). One tokenization, so the response span, the truncation
rule and the data hash are the same wherever records are read by a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import Dataset, content_hash, render


@dataclass
class Tokenized:
    """Model inputs for a data set: token ids and where each response starts (in tokens)."""

    input_ids: list[list[int]]
    response_start: list[int]  # index of the first response token
    truncated: list[bool]
    data_hash: str

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(ids) for ids in self.input_ids])

    def slice(self, start: int, end: int) -> Tokenized:
        """Samples start..end-1 (one shard's inputs); the hash stays the whole set's."""
        return Tokenized(
            self.input_ids[start:end], self.response_start[start:end], self.truncated[start:end], self.data_hash
        )


def tokenize(dataset: Dataset, tokenizer, max_length: int) -> Tokenized:
    """Render every record with the chat template and tokenize it; a record longer than `max_length`
    keeps the template's opening (the tokens before the first turn's text) and its last tokens, so
    the prompt loses its start first and the response keeps its end (docs/methods.md, Truncation)."""
    rendered = [render(record.conversation, tokenizer) for record in dataset.records]
    texts = [text for text, _ in rendered]
    has_template = bool(getattr(tokenizer, "chat_template", None))
    encoded = tokenizer(texts, add_special_tokens=not has_template, return_offsets_mapping=True)
    ids, starts, truncated = [], [], []
    for record, (text, char_start), token_ids, offsets in zip(
        dataset.records, rendered, encoded["input_ids"], encoded["offset_mapping"]
    ):
        # First token that ends after the prompt: the response span (a merged boundary token counts).
        start = next((i for i, (_, end) in enumerate(offsets) if end > char_start), len(token_ids))
        truncated.append(len(token_ids) > max_length)
        if len(token_ids) > max_length:
            # The template's opening: tokens wholly before the first turn's text (at most half the budget).
            first = text.find(record.conversation[0]["content"]) if len(record.conversation) > 1 else 0
            head = min(sum(1 for _, end in offsets if end <= max(first, 0)), max_length // 2)
            dropped = len(token_ids) - max_length  # taken right after the head
            token_ids = list(token_ids[:head]) + list(token_ids[head + dropped :])
            start = head + max(start - head - dropped, 0) if start >= head else start
        ids.append(list(token_ids))
        starts.append(start)
    # Truncated records changed how they are cut: their hash says so, so old stores are not reused.
    tag = ["truncation=head+end"] if any(truncated) else []
    return Tokenized(ids, starts, truncated, content_hash(texts + [f"max_length={max_length}"] + tag))


def make_batches(lengths: np.ndarray, batch_tokens: int, max_batch_size: int = 64) -> list[list[int]]:
    """Group sample positions by length so that each padded batch holds at most `batch_tokens`."""
    order = np.argsort(-lengths, kind="stable")  # longest first: the first batch shows the peak memory
    batches, current = [], []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]
        if current and ((len(current) + 1) * width > batch_tokens or len(current) >= max_batch_size):
            batches.append(current)
            current = []
        current.append(int(i))
    if current:
        batches.append(current)
    return batches


def pad_batch(input_ids: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad a list of token id lists into (input_ids, attention_mask) tensors."""
    width = max(len(ids) for ids in input_ids)
    ids = torch.full((len(input_ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(input_ids), width), dtype=torch.long)
    for row, seq in enumerate(input_ids):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return ids.to(device), mask.to(device)
