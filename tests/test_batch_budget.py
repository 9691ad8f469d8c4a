"""`--batch-tokens auto`: the budget chosen for the device."""

import pytest
import torch

from nait_core.capture import (
    CPU_BATCH_TOKENS,
    CUDA_MAX_TOKENS,
    CUDA_MEMORY_SHARE,
    CUDA_MIN_TOKENS,
    CaptureOptions,
    activation_bytes_per_token,
    batch_budget,
)
from nait_testing.models import tiny_model

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_model("llama", tokenizer)


def test_cpu_takes_the_swept_budget_and_explicit_values_win(model):
    assert batch_budget(model, CaptureOptions()) == (CPU_BATCH_TOKENS, 64)
    assert batch_budget(model, CaptureOptions(batch_tokens=512, max_batch_size=4)) == (512, 4)


def test_cuda_takes_the_largest_power_of_two_that_fits(model):
    cuda = torch.device("cuda")
    per_token = activation_bytes_per_token(model, 1024)
    # hidden 32, intermediate 48, 4 heads, fp32: 4 * (6*32 + 4*48 + 5*1024) + 4*48
    assert per_token == 4 * (6 * 32 + 4 * 48 + 5 * 1024) + 4 * 48
    for free in (10**6, 50 * 10**6, 400 * 10**6, 10**12):
        tokens, rows = batch_budget(model, CaptureOptions(), cuda, free_bytes=free)
        assert CUDA_MIN_TOKENS <= tokens <= CUDA_MAX_TOKENS and tokens & (tokens - 1) == 0 and rows == 64
        if CUDA_MIN_TOKENS < tokens < CUDA_MAX_TOKENS:  # neither bound: it fits, and twice as much would not
            assert tokens * per_token <= CUDA_MEMORY_SHARE * free < 2 * tokens * per_token
    assert batch_budget(model, CaptureOptions(), cuda, free_bytes=10**6)[0] == CUDA_MIN_TOKENS
    assert batch_budget(model, CaptureOptions(), cuda, free_bytes=10**12)[0] == CUDA_MAX_TOKENS
    # a longer --max-length costs more per token (attention rows): never a larger budget
    short = batch_budget(model, CaptureOptions(max_length=256), cuda, free_bytes=50 * 10**6)[0]
    long = batch_budget(model, CaptureOptions(max_length=4096), cuda, free_bytes=50 * 10**6)[0]
    assert long < short
