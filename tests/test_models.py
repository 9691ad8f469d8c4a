"""Neuron sites by architecture, on tiny random models of each family and on the bundled model."""

import numpy as np
import pytest
import torch
from torch import nn

from nait_core.capture import CaptureOptions, capture, token_activations
from nait_core.models import ModelError, find_neuron_modules, wrap_model
from nait_core.neuron_ids import neuron_id, parse_neuron_id
from nait_testing.models import FAMILIES, tiny_model, tiny_records

pytestmark = pytest.mark.model


def test_bundled_model_shape(bundled):
    assert bundled.n_layers == 30 and bundled.neurons_per_layer == 1536
    assert type(bundled.model).__name__ == "LlamaForCausalLM"
    assert all(isinstance(m, nn.Linear) and m.out_features == 576 for m in bundled.neuron_modules)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_captures_its_mlp_neurons(family, tokenizer, tmp_path):
    model = tiny_model(family, tokenizer)
    assert model.n_layers == 3 and model.neurons_per_layer == 48
    records = tiny_records(3)
    report = capture(model, records, tmp_path, CaptureOptions(shard_size=2))
    store = report.store
    assert (store.n_samples, store.n_layers, store.n_neurons) == (3, 3, 48)
    # The batched, padded capture agrees with a live single-sample pass of the same record.
    _, live, _ = token_activations(model, records.records[2], layer=1)
    np.testing.assert_allclose(store.rows("last", [2])[0, 1], live[-1], rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(store.rows("mean", [2])[0, 1], live.mean(0), rtol=2e-3, atol=2e-3)


def test_llama_neurons_are_gated_product(tokenizer):
    """The captured input of down_proj equals act(gate(x)) * up(x), recomputed from the MLP input."""
    model = tiny_model("llama", tokenizer)
    mlp = model.model.model.layers[1].mlp
    seen = {}
    h1 = mlp.register_forward_pre_hook(lambda m, a: seen.__setitem__("mlp_in", a[0]))
    h2 = model.neuron_modules[1].register_forward_pre_hook(lambda m, a: seen.__setitem__("neurons", a[0]))
    with torch.inference_mode():
        model.model(torch.tensor([[1, 2, 3, 4]]))
        h1.remove(), h2.remove()
        x = seen["mlp_in"]
        expected = mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)
    torch.testing.assert_close(seen["neurons"], expected)


@pytest.mark.unit
def test_unknown_architecture_says_how_to_name_the_module():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 4)) for _ in range(2)])

    with pytest.raises(ModelError, match="--neuron-module"):
        find_neuron_modules(Odd())
    found = find_neuron_modules(Odd(), "1")  # blocks.<l>.1 is the second Linear
    assert len(found) == 2 and found[0].in_features == 8


def test_wrong_neuron_module_is_reported(bundled):
    with pytest.raises(ModelError, match="No per-layer module"):
        wrap_model("x", bundled.model, bundled.tokenizer, "x", neuron_module="mlp.nonexistent")


@pytest.mark.unit
def test_neuron_ids_round_trip():
    assert neuron_id(12, 345) == "L12.N345"
    assert parse_neuron_id("L12.N345") == (12, 345)
    with pytest.raises(ValueError):
        parse_neuron_id("12/345")
