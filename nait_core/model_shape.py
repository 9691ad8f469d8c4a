"""A model's shape without its weights: layers, neurons, hidden size and parameters from its config, built
on the meta device (no memory) and searched by the same `find_neuron_modules` capture uses, so a
config-only folder (config.json and tokenizer files) describes a model as a full one does (`nait plan`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .models import BUNDLED_MODEL, ModelError, find_neuron_modules, neuron_count, resolve_model_source


class ShapeUnknown(ModelError):
    """The model's shape cannot be read without loading it."""


@dataclass(frozen=True)
class ModelShape:
    layers: int
    neurons: int  # per layer: the down projection's input width
    hidden: int
    params: int  # decoder stack without the input embeddings and the LM head (which capture never runs)

    @property
    def n_layers(self) -> int:  # as LoadedModel names them
        return self.layers

    @property
    def neurons_per_layer(self) -> int:
        return self.neurons

    def flops_per_token(self, context: float) -> float:
        """Forward FLOPs of one token through the decoder stack: 2 per weight, plus attention over
        `context` earlier tokens (2 × layers × context × hidden; Kaplan et al. 2020, Table 1)."""
        return 2 * self.params + 2 * self.layers * context * self.hidden


def model_source(name: str) -> str:
    """The folder or hub id whose config and tokenizer describe `name` (the bundled model's is dequantised
    once into the cache, as `load_model` does)."""
    return resolve_model_source(name)[0]


def model_shape(name: str = BUNDLED_MODEL, neuron_module: str | None = None, trust_remote_code=False) -> ModelShape:
    """Layers, neurons, hidden size and parameters of `name` from its config alone (meta device: no weights)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    source = model_source(name)
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ModelError(f"Could not read the config of model {name!r}: {error}") from error
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except Exception as error:  # an architecture whose __init__ needs real tensors: say so, never guess
        raise ShapeUnknown(f"cannot build model {name!r} on the meta device to read its shape: {error}") from error
    modules = find_neuron_modules(model, neuron_module)
    embeddings = model.get_input_embeddings().weight.numel()
    params = sum(p.numel() for p in model.base_model.parameters()) - embeddings
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None) or 0
    return ModelShape(len(modules), neuron_count(modules[0]), int(hidden), int(params))


def load_tokenizer(name: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_source(name), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ModelError(f"Could not read the tokenizer of model {name!r}: {error}") from error
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
