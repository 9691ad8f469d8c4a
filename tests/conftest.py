"""Shared fixtures: the bundled model (loaded once per session) and tiny random models per family."""
from __future__ import annotations

import pytest
import torch

from nait_core.models import load_model, wrap_model


@pytest.fixture(scope="session")
def bundled():
    """The real bundled SmolLM2-135M-Instruct on CPU, fp32."""
    return load_model("smollm2-135m", device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def store_root(tmp_path_factory):
    """One store folder per test session, so captures made by one test are reused by the next."""
    return tmp_path_factory.mktemp("cached_features")


TINY = dict(vocab_size=49152, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4)


def tiny_config(family: str):
    """A randomly initialised config of each supported architecture (no download)."""
    import transformers as t

    h, i, n, heads, v = (TINY[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"))
    return {
        "llama": lambda: t.LlamaConfig(**TINY, num_key_value_heads=2),
        "mistral": lambda: t.MistralConfig(**TINY, num_key_value_heads=2),
        "qwen2": lambda: t.Qwen2Config(**TINY, num_key_value_heads=2),
        "qwen3": lambda: t.Qwen3Config(**TINY, num_key_value_heads=2, head_dim=8),
        "gemma": lambda: t.GemmaConfig(**TINY, num_key_value_heads=2, head_dim=8),
        "gemma2": lambda: t.Gemma2Config(**TINY, num_key_value_heads=2, head_dim=8),
        "gpt2": lambda: t.GPT2Config(vocab_size=v, n_embd=h, n_inner=i, n_layer=n, n_head=heads, bos_token_id=0, eos_token_id=0),
        "gpt_neox": lambda: t.GPTNeoXConfig(**TINY),
        "opt": lambda: t.OPTConfig(vocab_size=v, hidden_size=h, ffn_dim=i, num_hidden_layers=n,
                                   num_attention_heads=heads, word_embed_proj_dim=h),
        "phi": lambda: t.PhiConfig(**TINY),
    }[family]()


FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gpt2", "gpt_neox", "opt", "phi"]


def tiny_model(family: str, tokenizer):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(family), dtype=torch.float32).eval()
    return wrap_model(f"tiny-{family}", model, tokenizer, fingerprint=f"tiny-{family}")
