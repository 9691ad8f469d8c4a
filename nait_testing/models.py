"""Tiny randomly initialised models of each supported architecture, with the bundled model's tokenizer."""

from __future__ import annotations

from pathlib import Path

import torch

from nait_core.data import Dataset, Record
from nait_core.models import resolve_model_source, wrap_model

TINY = {
    "vocab_size": 49152,
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
}
FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gpt2", "gpt_neox", "opt", "phi"]


def tiny_config(family: str):
    """A randomly initialised config of each supported architecture (no download)."""
    import transformers as t

    h, i, n, heads, v = (
        TINY[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
    )
    return {
        "llama": lambda: t.LlamaConfig(**TINY, num_key_value_heads=2),
        "mistral": lambda: t.MistralConfig(**TINY, num_key_value_heads=2),
        "qwen2": lambda: t.Qwen2Config(**TINY, num_key_value_heads=2),
        "qwen3": lambda: t.Qwen3Config(**TINY, num_key_value_heads=2, head_dim=8),
        "gemma": lambda: t.GemmaConfig(**TINY, num_key_value_heads=2, head_dim=8),
        "gemma2": lambda: t.Gemma2Config(**TINY, num_key_value_heads=2, head_dim=8),
        "gpt2": lambda: t.GPT2Config(
            vocab_size=v, n_embd=h, n_inner=i, n_layer=n, n_head=heads, bos_token_id=0, eos_token_id=0
        ),
        "gpt_neox": lambda: t.GPTNeoXConfig(**TINY),
        "opt": lambda: t.OPTConfig(
            vocab_size=v,
            hidden_size=h,
            ffn_dim=i,
            num_hidden_layers=n,
            num_attention_heads=heads,
            word_embed_proj_dim=h,
        ),
        "phi": lambda: t.PhiConfig(**TINY),
    }[family]()


def bundled_tokenizer():
    """The bundled SmolLM2 model's tokenizer (its files only: no weights are loaded), with a pad token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_source("smollm2-135m")[0])
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    return tokenizer


def tiny_model(family: str, tokenizer):
    """A seeded random model of `family`, wrapped for capture, fp32 on the CPU."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(family), dtype=torch.float32).eval()
    return wrap_model(f"tiny-{family}", model, tokenizer, fingerprint=f"tiny-{family}")


def save_tiny_model(folder: Path, tokenizer, family: str = "llama") -> Path:
    """`tiny_model(family)` saved as a model folder with `tokenizer`, as a user's local model would be."""
    tiny_model(family, tokenizer).model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


TINY_TEXTS = (
    "What is 2 + 2?",
    "Write a haiku about rain, please, in five words or so.",
    "Name a prime.",
    "Sum 3 and 9, then double it.",
    "Translate 'cat' to French.",
    "Why is the sky blue?",
)


def tiny_records(n: int) -> Dataset:
    """n short chat records (six prompts in turn, answers of growing length): what tiny-model tests capture."""
    return Dataset(
        "tiny",
        [
            Record(
                {"i": i},
                f"mem:{i}",
                "tiny",
                [
                    {"role": "user", "content": TINY_TEXTS[i % len(TINY_TEXTS)]},
                    {"role": "assistant", "content": "Sure: " * (i + 1)},
                ],
            )
            for i in range(n)
        ],
    )
