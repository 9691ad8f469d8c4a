"""Published model shapes, written by hand (no download), for config-only folders and random-weight models:
the plan tests and bench/bench_7b.py read them from here."""

from __future__ import annotations

LLAMA = {"rms_norm_eps": 1e-5, "hidden_act": "silu", "tie_word_embeddings": False}
LLAMA_2_7B = LLAMA | {  # config.json of meta-llama/Llama-2-7b-hf
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
}
LLAMA_3_8B = LLAMA | {  # meta-llama/Meta-Llama-3-8B
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
}
TINY_LLAMA = LLAMA | {
    "hidden_size": 64,
    "intermediate_size": 172,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
}


def llama_config_json(shape: dict, dtype: str = "float16") -> dict:
    """`shape` as the config.json a Llama checkpoint ships."""
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": dtype} | shape
