"""Shared fixtures: the bundled model (loaded once per session) and tiny random models per family."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nait_core.store import Store

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


def synthetic_store(path, n=5, layers=2, neurons=3, reductions=("mean",), shard_size=3, seed=0, fingerprint="f",
                    shift=0.0):
    """A real store holding random float16 summaries (normal, mean `shift`); returns (store, {reduction: data})."""
    manifest = {"model": {"name": "m", "fingerprint": fingerprint, "dtype": "float32"},
                "data": {"name": path.name, "hash": f"h{seed}", "n_samples": n},
                "options": {"reductions": list(reductions), "max_length": 8},
                "shape": {"layers": layers, "neurons": neurons}, "shard_size": shard_size}
    store = Store.create(path, manifest)
    rng = np.random.default_rng(seed)
    data = {r: (rng.normal(size=(n, layers, neurons)) + shift).astype(np.float16) for r in reductions}
    for start, end in store.shard_ranges():
        store.write_shard(start, end, {**{r: d[start:end] for r, d in data.items()},
                                       "tokens": np.arange(start, end, dtype=np.int32),
                                       "response_tokens": np.ones(end - start, np.int32),
                                       "truncated": np.zeros(end - start, bool)})
    return Store.open(path), data
