"""One shard's forward pass: every layer's MLP neurons reduced on the device by forward pre-hooks.

A forward pre-hook on each down projection receives its input `[batch, pos, neurons]` and reduces it
at once to per-sample summaries (mean over tokens, mean over response tokens, last token, first
token) in float32, so no per-token tensor outlives its layer. Batches are formed from length-sorted
samples under a token budget, right-padded, so padding never reaches a real token (causal attention)
and is excluded from every reduction.

The same pass also keeps, per record, the position-weighted mean of the final hidden state (the decoder
stack's output, what Hugging Face returns as the last of `hidden_states`: after the final norm), weights
position + 1 over the record's real tokens, normalised (SGPT, as RDS+ pools): `rds` reads it (store.HIDDEN).
Used by the single-process capture (`capture.py`), `--worker` and the Ray actors (`distributed.py`).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .data import Dataset
from .models import LoadedModel
from .sketch import Sketch
from .store import DEFAULT_REDUCTIONS, HIDDEN
from .tokens import Tokenized, make_batches, pad_batch, tokenize


class Reducer:
    """Forward pre-hooks that reduce each layer's neuron inputs to per-sample float32 summaries."""

    def __init__(self, model: LoadedModel, reductions, sketch: Sketch | None = None):
        self.model, self.reductions = model, list(reductions)
        self.out: torch.Tensor | None = None  # [reductions, batch, layers, width]
        # A compact capture projects each layer's reduced rows on the device: the full vector never leaves it.
        self.sketch = sketch
        self.width = sketch.k if sketch else model.neurons_per_layer
        self.projections = (
            None
            if sketch is None
            else [
                torch.from_numpy(sketch.matrix(layer, model.neurons_per_layer).copy()).to(model.device)
                for layer in range(model.n_layers)
            ]
        )

    def set_batch(self, attention_mask: torch.Tensor, response_start: torch.Tensor) -> None:
        batch, pos = attention_mask.shape
        mask = attention_mask.float()
        lengths = mask.sum(1)
        positions = torch.arange(pos, device=mask.device)
        weights = []  # token-weighted reductions done by one batched matmul per layer
        for name in self.reductions:
            if name == "mean":
                weights.append(mask / lengths[:, None])
            elif name == "response_mean":
                response = mask * (positions[None, :] >= response_start[:, None])
                # No response token left (truncated away): NaN says "missing", never a made-up zero.
                weights.append(response / response.sum(1, keepdim=True))
        self.weights = torch.stack(weights, 1) if weights else None  # [batch, k, pos]
        # rds: position + 1 on real tokens, normalised per record (right padding: positions count from the start)
        ramp = mask * (positions[None, :] + 1)
        self.hidden_weights = (ramp / ramp.sum(1, keepdim=True))[:, None, :]  # [batch, 1, pos]
        self.last = (lengths - 1).long()
        self.out = torch.empty(
            len(self.reductions), batch, self.model.n_layers, self.width, dtype=torch.float32, device=mask.device
        )
        self.full = (
            self.out
            if self.sketch is None
            else torch.empty(
                len(self.reductions), batch, 1, self.model.neurons_per_layer, dtype=torch.float32, device=mask.device
            )
        )

    def hook(self, layer: int):
        def reduce(module, args):
            x = args[0]  # [batch, pos, neurons]; OPT flattens it to [batch * pos, neurons]
            if x.dim() == 2:
                x = x.view(self.out.shape[1], -1, x.shape[-1])
            x32 = x if x.dtype == torch.float32 else x.float()
            weighted = torch.bmm(self.weights, x32) if self.weights is not None else None
            k = 0
            full, at = (self.out, layer) if self.sketch is None else (self.full, 0)  # exact rows land here
            for r, name in enumerate(self.reductions):
                if name in ("mean", "response_mean"):
                    full[r, :, at] = weighted[:, k]
                    k += 1
                elif name == "last":
                    full[r, :, at] = x32[torch.arange(x.shape[0], device=x.device), self.last]
                elif name == "first":
                    full[r, :, at] = x32[:, 0]
                elif name == "last-first":  # ΔA (Eq. 2) in one array: what nait-pca reads, at half the bytes
                    full[r, :, at] = x32[torch.arange(x.shape[0], device=x.device), self.last] - x32[:, 0]
            if self.sketch is not None:  # [reductions, batch, neurons] @ P_l -> [reductions, batch, K]
                self.out[:, :, layer] = self.full[:, :, 0] @ self.projections[layer]

        return reduce

    def pooled_hidden(self, output) -> torch.Tensor:
        """[batch, hidden] float32: the final hidden state's position-weighted mean (the stack's own output)."""
        hidden = output.last_hidden_state
        return torch.bmm(self.hidden_weights, hidden.float())[:, 0]

    @contextmanager
    def hooks(self):
        """Hooks live only inside this block, even if the forward pass fails."""
        handles = [m.register_forward_pre_hook(self.hook(layer)) for layer, m in enumerate(self.model.neuron_modules)]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()


def forward(model: LoadedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """The decoder stack without the LM head: the neurons are all we need."""
    return model.model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)


@dataclass
class CaptureOptions:
    reductions: tuple[str, ...] = DEFAULT_REDUCTIONS
    max_length: int = 1024
    batch_tokens: int | None = None  # padded tokens per batch; None: chosen for the device (`batch_budget`)
    max_batch_size: int | None = None  # rows per batch; None: chosen for the device
    shard_size: int | None = None  # None: store.default_shard_size(n), at most 512, ≥16 shards when n allows
    worker: tuple[int, int] = (0, 1)  # (i, n): capture only every n-th shard from the i-th (see `shard_plan`)
    verify: bool = False  # check every shard's sha256 before reusing a store (else headers and sizes)
    sketch: Sketch | None = None  # compact summaries: K random projections per layer (sketch.py); None = exact
    exact_sample: int = 0  # compact pools: also capture this many seeded records exactly (app's neuron views)
    sample_of: str = ""  # set on the exact sample's own capture: the compact store it belongs to
    ray: object | None = None  # a `distributed.RayOptions`: run the shards on a Ray cluster instead of here


# Batch budgets. CPU: the best of a sweep on the bundled model (docs/benchmarks.md): past ~2k padded
# tokens a batch's activations stop fitting in cache and tok/s drops (8,192 ran 1.5x slower than 2,048).
CPU_BATCH_TOKENS, CPU_MAX_BATCH_SIZE = 2048, 64
# CUDA: the largest power of two whose activations fit in this share of the free memory, within these bounds.
CUDA_MEMORY_SHARE, CUDA_MIN_TOKENS, CUDA_MAX_TOKENS, CUDA_MAX_BATCH_SIZE = 0.6, 2048, 65536, 64


def activation_bytes_per_token(model: LoadedModel, max_length: int) -> int:
    """Peak bytes one padded token costs inside one decoder layer (layers run one after another and
    inference mode frees each layer's tensors, so the peak is one layer's, not the sum over layers):
    the residual stream, norm output, q/k/v/attention output (~6 x hidden), the MLP's gate, up,
    activation and product (4 x intermediate) in the weights' dtype, the hook's float32 copy of the
    neurons (4 bytes x intermediate), and a worst case for attention: one score row per head plus the
    padding mask over `max_length` keys (SDPA kernels need less). The LM head never runs."""
    config = getattr(model.model, "config", None)
    size = next(model.model.parameters()).element_size()
    intermediate = model.neurons_per_layer
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None) or intermediate // 4
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", None) or 32
    return size * (6 * hidden + 4 * intermediate + (heads + 1) * max_length) + 4 * intermediate


def batch_budget(
    model: LoadedModel, options: CaptureOptions, device: torch.device | None = None, free_bytes: int | None = None
) -> tuple[int, int]:
    """(padded tokens per batch, rows per batch) for the model's device, unless the options fix them."""
    device = device or model.device
    if device.type == "cuda":
        if free_bytes is None:
            free_bytes = torch.cuda.mem_get_info(device)[0]
        fit = int(CUDA_MEMORY_SHARE * free_bytes // activation_bytes_per_token(model, options.max_length))
        tokens = CUDA_MIN_TOKENS
        while tokens * 2 <= min(fit, CUDA_MAX_TOKENS):
            tokens *= 2
        auto = (tokens, CUDA_MAX_BATCH_SIZE)
    else:
        auto = (CPU_BATCH_TOKENS, CPU_MAX_BATCH_SIZE)
    return options.batch_tokens or auto[0], options.max_batch_size or auto[1]


def capture_shard(
    model: LoadedModel,
    tokens: Tokenized,
    start: int,
    options: CaptureOptions,
    reducer: Reducer | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Capture one shard: `tokens` holds exactly its samples (`Tokenized.slice`), `start` is the id of the
    first. Returns the arrays `Store.write_shard(start, start + len, arrays)` takes. `on_batch(samples,
    tokens)` is called after each batch. Used by the single-process loop, `--worker` and the Ray actors."""
    reducer = reducer or Reducer(model, options.reductions, options.sketch)
    batch_tokens, max_batch_size = batch_budget(model, options)
    lengths = tokens.lengths
    pad_id = model.tokenizer.pad_token_id
    device = model.device
    shard = np.empty((len(options.reductions), len(lengths), model.n_layers, reducer.width), np.float16)
    hidden = np.empty((len(lengths), hidden_size(model)), np.float32)
    with torch.inference_mode(), reducer.hooks():
        for batch in make_batches(lengths, batch_tokens, max_batch_size):
            ids, mask = pad_batch([tokens.input_ids[i] for i in batch], pad_id, device)
            response_start = torch.tensor([tokens.response_start[i] for i in batch], device=device)
            reducer.set_batch(mask, response_start)
            pooled = reducer.pooled_hidden(forward(model, ids, mask)).cpu().numpy()
            values = reducer.out.cpu().numpy()
            finite = np.isfinite(values[[i for i, r in enumerate(options.reductions) if r != "response_mean"]]).all()
            if not (finite and np.isfinite(pooled).all()):
                rows = [start + i for i in batch]
                raise FloatingPointError(f"non-finite activations in samples {rows[:5]}…; try --dtype float32")
            shard[:, batch] = values.astype(np.float16)
            hidden[batch] = pooled
            if on_batch:
                on_batch(len(batch), int(mask.sum()))
    arrays = {name: shard[r] for r, name in enumerate(options.reductions)}
    arrays["tokens"] = lengths.astype(np.int32)
    arrays["response_tokens"] = np.array(
        [max(0, len(ids) - s) for ids, s in zip(tokens.input_ids, tokens.response_start)], np.int32
    )
    arrays["truncated"] = np.array(tokens.truncated, dtype=bool)
    arrays[HIDDEN] = hidden  # left out by `Store.write_shard` on a store from before nait kept it
    return arrays


def hidden_size(model: LoadedModel) -> int:
    """Width of the decoder stack's output (OPT projects it down to word_embed_proj_dim)."""
    config = model.model.config
    return getattr(config, "word_embed_proj_dim", None) or getattr(config, "hidden_size", None) or config.n_embd


class _StopForward(Exception):
    """Raised by a hook once it has what it needs: the layers above it need not run."""


def token_activations(
    model: LoadedModel, record, layer: int, max_length: int = 1024
) -> tuple[list[str], np.ndarray, int]:
    """One live forward pass of one record: (tokens, activations [pos, neurons] of `layer`, response start)."""
    tokens = tokenize(Dataset("one", [record]), model.tokenizer, max_length)
    captured = {}

    def keep(module, args):
        x = args[0]
        captured["x"] = (x if x.dim() == 2 else x[0]).float().cpu().numpy()  # [pos, neurons]
        raise _StopForward

    handle = model.neuron_modules[layer].register_forward_pre_hook(keep)
    try:
        with torch.inference_mode():
            ids, mask = pad_batch(tokens.input_ids, model.tokenizer.pad_token_id, model.device)
            forward(model, ids, mask)
    except _StopForward:
        pass
    finally:
        handle.remove()
    pieces = [model.tokenizer.decode([t]) for t in tokens.input_ids[0]]
    return pieces, captured["x"], tokens.response_start[0]
