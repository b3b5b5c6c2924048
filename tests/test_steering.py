"""Tests for the SAE and mean-difference steering hooks on a tiny random Qwen3."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from tiny_models import load_tiny
import torch
from sae_lens import StandardSAE, StandardSAEConfig

from moral_indifference.steering import (
    STEERING_CONDITIONS,
    SAESteerer,
    SteeringConfig,
    VectorSteerer,
    build_steerer,
    get_condition,
    mean_difference_vector,
    steer,
)

D_MODEL = 64


@pytest.fixture(scope="module")
def tiny(tiny_qwen3_dir):
    model, tokenizer = load_tiny(tiny_qwen3_dir)
    inputs = tokenizer(["Stealing from a store is morally wrong."], return_tensors="pt")
    return model, tokenizer, inputs


def random_sae(seed: int = 0) -> StandardSAE:
    torch.manual_seed(seed)
    sae = StandardSAE(StandardSAEConfig(d_in=D_MODEL, d_sae=128))
    with torch.no_grad():
        sae.W_enc.normal_(0, 0.2)
        sae.W_dec.normal_(0, 0.2)
        sae.b_enc.normal_(0, 0.1)
        sae.b_dec.normal_(0, 0.1)
    return sae


def exact_sae() -> StandardSAE:
    """Build an SAE with SAE(x) = x: latents relu(x) and relu(-x), decoded as their difference."""
    sae = StandardSAE(StandardSAEConfig(d_in=D_MODEL, d_sae=2 * D_MODEL))
    eye = torch.eye(D_MODEL)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def capture_block_output(model, layer: int, inputs) -> torch.Tensor:
    """Run the model and return the output of decoder block ``layer`` after all its hooks."""
    captured = {}

    def record(module, args, output):
        captured["h"] = (output[0] if isinstance(output, tuple) else output).detach().clone()

    # Registered after the steering hook, so it sees the steered output.
    handle = model.model.layers[layer].register_forward_hook(record)
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        handle.remove()
    return captured["h"]


def logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits


def test_exact_sae_reconstructs_input():
    x = torch.randn(5, D_MODEL)
    assert torch.allclose(exact_sae()(x), x, atol=1e-6)


def test_strength_zero_is_bit_identical(tiny):
    model, _, inputs = tiny
    baseline = logits(model, inputs)
    steerer = SAESteerer(random_sae(), torch.randn(D_MODEL), strength=0.0)
    with steer(model, 0, steerer):
        steered = logits(model, inputs)
    assert torch.equal(steered, baseline)


def test_strength_one_matches_reconstruction(tiny):
    model, _, inputs = tiny
    sae = random_sae()
    centre = torch.randn(D_MODEL)
    h = capture_block_output(model, 0, inputs)
    with torch.no_grad():
        expected = sae(h - centre) + centre
    with steer(model, 0, SAESteerer(sae, centre, strength=1.0)):
        steered = capture_block_output(model, 0, inputs)
    assert torch.allclose(steered, expected, atol=1e-5)


def test_strength_half_matches_formula(tiny):
    model, _, inputs = tiny
    sae = random_sae(seed=1)
    centre = torch.randn(D_MODEL)
    h = capture_block_output(model, 1, inputs)
    with torch.no_grad():
        expected = h + 0.5 * (sae(h - centre) + centre - h)
    with steer(model, 1, SAESteerer(sae, centre, strength=0.5)):
        steered = capture_block_output(model, 1, inputs)
    assert torch.allclose(steered, expected, atol=1e-5)


def test_exact_sae_keeps_block_output(tiny):
    model, _, inputs = tiny
    centre = torch.randn(D_MODEL)
    h = capture_block_output(model, 0, inputs)
    with steer(model, 0, SAESteerer(exact_sae(), centre, strength=1.0)):
        steered = capture_block_output(model, 0, inputs)
    assert torch.allclose(steered, h, atol=1e-5)


def test_hook_removed_after_block(tiny):
    model, _, inputs = tiny
    baseline = logits(model, inputs)
    with steer(model, 0, SAESteerer(random_sae(), torch.zeros(D_MODEL), strength=1.0)):
        steered = logits(model, inputs)
    after = logits(model, inputs)
    assert not torch.allclose(steered, baseline)
    assert torch.equal(after, baseline)


def test_hook_removed_on_exception(tiny):
    model, _, inputs = tiny
    baseline = logits(model, inputs)
    with pytest.raises(RuntimeError, match="inside"):
        with steer(model, 0, VectorSteerer(np.ones(D_MODEL), strength=3.0)):
            raise RuntimeError("raised inside the steering block")
    assert torch.equal(logits(model, inputs), baseline)


def test_hook_runs_on_generated_tokens(tiny):
    model, tokenizer, inputs = tiny
    calls = []
    inner = SAESteerer(random_sae(), torch.zeros(D_MODEL), strength=0.0)

    class CountingSteerer:
        strength = 0.0

        def __call__(self, hidden):
            calls.append(hidden.shape[1])
            return inner(hidden)

    with steer(model, 0, CountingSteerer()), torch.no_grad():
        model.generate(
            **inputs, max_new_tokens=5, min_new_tokens=5, do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    # One call for the prompt, then one call per generated token after the first.
    assert len(calls) == 5
    assert calls[0] == inputs["input_ids"].shape[1]
    assert calls[1:] == [1, 1, 1, 1]


def test_hook_handles_tuple_output():
    block = torch.nn.Linear(D_MODEL, D_MODEL)
    block.register_forward_hook(lambda module, args, output: (output, "cache"))
    holder = torch.nn.Module()
    holder.model = torch.nn.Module()
    holder.model.layers = torch.nn.ModuleList([block])
    x = torch.randn(2, D_MODEL)
    with torch.no_grad():
        expected = block(x)[0] + 2.0
        with steer(holder, 0, VectorSteerer(np.ones(D_MODEL), strength=2.0)):
            output = block(x)
    assert torch.allclose(output[0], expected)
    assert output[1] == "cache"


def test_steer_rejects_missing_layer(tiny):
    model, _, _ = tiny
    with pytest.raises(IndexError, match="2 decoder blocks"):
        with steer(model, 2, VectorSteerer(np.zeros(D_MODEL))):
            pass


def test_vector_steerer_adds_scaled_vector():
    hidden = torch.zeros(1, 3, 4)
    steered = VectorSteerer(np.array([1.0, 2.0, 0.0, -1.0]), strength=0.5)(hidden)
    assert torch.equal(steered[0, 2], torch.tensor([0.5, 1.0, 0.0, -0.5]))


def test_registry_lists_conditions():
    assert set(STEERING_CONDITIONS) == {"realigned_sae", "original_sae", "mean_difference"}


def test_unknown_condition_lists_names():
    with pytest.raises(KeyError, match="realigned_sae, original_sae, mean_difference"):
        get_condition("realigned")


def test_config_rejects_unknown_condition():
    with pytest.raises(KeyError, match="valid names"):
        SteeringConfig(condition="sae")


def test_build_steerer_kinds():
    sae_steerer = build_steerer("original_sae", 1.0, sae=random_sae(), centre=np.zeros(D_MODEL))
    vector_steerer = build_steerer("mean_difference", 2.0, vector=np.ones(D_MODEL))
    assert isinstance(sae_steerer, SAESteerer)
    assert isinstance(vector_steerer, VectorSteerer)
    assert vector_steerer.strength == 2.0


def test_build_steerer_needs_vector():
    with pytest.raises(ValueError, match="vector="):
        build_steerer("mean_difference", 1.0)


def test_centre_shape_checked():
    with pytest.raises(ValueError, match="d_in=64"):
        SAESteerer(random_sae(), torch.zeros(3))


def test_mean_difference_by_hand():
    acts = np.array(
        [
            [3.0, 0.0],  # virtue prototype
            [1.0, 0.0],  # virtue prototype
            [0.0, 4.0],  # vice prototype
            [9.0, 9.0],  # virtue, not a prototype
            [7.0, 7.0],  # virtue prototype for one foundation, vice for another
        ]
    )
    rows = pd.DataFrame(
        {
            "position": [0, 1, 2, 3, 4, 4, 0],
            "polarity": ["virtue", "virtue", "vice", "virtue", "virtue", "vice", "virtue"],
            "typicality": [1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0],
        }
    )
    # d = (2, 0) - (0, 4) = (2, -4); mean norm of rows 0, 1, 2 = (3 + 1 + 4) / 3 = 8/3.
    expected = np.array([2.0, -4.0]) / np.sqrt(20.0) * (8.0 / 3.0)
    vector = mean_difference_vector(acts, rows)
    assert vector.dtype == np.float32
    assert np.allclose(vector, expected, atol=1e-6)


def test_mean_difference_needs_both_poles():
    rows = pd.DataFrame({"position": [0], "polarity": ["virtue"], "typicality": [1.0]})
    with pytest.raises(ValueError, match="0 vice"):
        mean_difference_vector(np.ones((1, 2)), rows)


def test_mean_difference_needs_position():
    rows = pd.DataFrame({"id": ["a"], "polarity": ["virtue"], "typicality": [1.0]})
    with pytest.raises(KeyError, match="position"):
        mean_difference_vector(np.ones((1, 2)), rows)
