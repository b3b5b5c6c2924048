"""Tests for moral_indifference.sae: training, L1 adaptation, save and reload."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sae_lens import SAE

from moral_indifference.sae import (
    SAETrainingConfig,
    adapt_l1_coefficient,
    encode,
    load_sae,
    reconstruct,
    save_sae,
    train_sae,
)

D_IN = 16


@pytest.fixture(scope="module")
def train_acts() -> np.ndarray:
    rng = np.random.default_rng(0)
    # Sparse non-negative combinations of 32 directions plus an offset, so centring matters.
    dictionary = rng.normal(size=(32, D_IN))
    codes = rng.exponential(size=(512, 32)) * (rng.random((512, 32)) < 0.1)
    return (codes @ dictionary + 5.0).astype(np.float32)


@pytest.fixture(scope="module")
def trained(train_acts: np.ndarray):
    config = SAETrainingConfig(
        expansion_factor=4, epochs=3, batch_size=64, lr=1e-3, target_l0=4, seed=0
    )
    return train_sae(train_acts, config, d_in=D_IN)


@pytest.mark.parametrize(
    ("coefficient", "l0", "target", "expected"),
    [
        (1e-3, 70.0, 32, 1.2e-3),  # L0 > 2 x target
        (1e-3, 64.0, 32, 1.05e-3),  # exactly 2 x target is not > 2 x target
        (1e-3, 36.0, 32, 1.05e-3),  # L0 > 1.1 x target
        (1e-3, 32.0, 32, 1e-3),  # inside the band
        (1e-3, 28.0, 32, 0.95e-3),  # L0 < 0.9 x target
        (1e-6, 0.0, 32, 1e-6),  # clamped below
        (99.0, 100.0, 32, 100.0),  # clamped above
    ],
)
def test_adapt_l1_branches(coefficient, l0, target, expected):
    assert adapt_l1_coefficient(coefficient, l0, target) == pytest.approx(expected, rel=1e-12)


def test_config_unknown_architecture():
    with pytest.raises(KeyError, match="valid names: standard, topk"):
        SAETrainingConfig(architecture="gated")


def test_train_history_per_epoch(trained):
    assert [record["epoch"] for record in trained.history] == [0, 1, 2]


def test_train_l1_adapted_each_epoch(trained):
    for before, after in zip(trained.history, trained.history[1:]):
        expected = adapt_l1_coefficient(before["l1_coefficient"], before["l0"], 4)
        assert after["l1_coefficient"] == pytest.approx(expected)


def test_train_decoder_unit_norm(trained):
    norms = trained.sae.W_dec.detach().norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


def test_train_centre_is_mean(trained, train_acts):
    np.testing.assert_allclose(trained.centre, train_acts.mean(axis=0), rtol=1e-5)


def test_train_loss_decreases(trained):
    assert trained.history[-1]["mse"] < trained.history[0]["mse"]


def test_train_deterministic(train_acts, trained):
    config = SAETrainingConfig(
        expansion_factor=4, epochs=3, batch_size=64, lr=1e-3, target_l0=4, seed=0
    )
    again = train_sae(train_acts, config, d_in=D_IN)
    assert torch.equal(again.sae.W_enc, trained.sae.W_enc)


def test_train_topk_l0_is_k(train_acts):
    config = SAETrainingConfig(architecture="topk", expansion_factor=4, k=3, epochs=1, batch_size=128)
    result = train_sae(train_acts, config, d_in=D_IN)
    assert result.history[0]["l0"] <= 3.0


def test_train_rejects_wrong_width(train_acts):
    with pytest.raises(ValueError, match="shape"):
        train_sae(train_acts, SAETrainingConfig(epochs=1), d_in=D_IN + 1)


def test_save_load_round_trip(trained, train_acts, tmp_path):
    save_sae(trained, tmp_path)
    sae, centre = load_sae(tmp_path)
    before = reconstruct(trained.sae, trained.centre, train_acts[:20])
    after = reconstruct(sae, centre, train_acts[:20])
    assert torch.allclose(before, after, atol=1e-6)


def test_save_centre_round_trip(trained, tmp_path):
    save_sae(trained, tmp_path)
    _, centre = load_sae(tmp_path)
    assert np.array_equal(centre.numpy(), trained.centre)


def test_save_loads_with_saelens(trained, train_acts, tmp_path):
    save_sae(trained, tmp_path)
    sae = SAE.load_from_disk(tmp_path)
    x = torch.from_numpy(train_acts[:8] - trained.centre)
    assert torch.allclose(sae.encode(x), trained.sae.encode(x).detach(), atol=1e-6)


def test_save_writes_cfg_keys_in_sorted_order(trained, tmp_path):
    save_sae(trained, tmp_path)
    text = (tmp_path / "cfg.json").read_text(encoding="utf-8")
    cfg = json.loads(text)
    assert list(cfg) == sorted(cfg)
    assert text == json.dumps(cfg, indent=2, sort_keys=True) + "\n"


def test_save_training_log(trained, tmp_path):
    save_sae(trained, tmp_path)
    log = json.loads((tmp_path / "training.json").read_text(encoding="utf-8"))
    assert set(log["epochs"][0]) >= {"loss", "mse", "l0", "l1_coefficient", "explained_variance"}


def test_load_missing_centre(trained, tmp_path):
    trained.sae.save_inference_model(tmp_path)
    with pytest.raises(FileNotFoundError, match="centre.npy"):
        load_sae(tmp_path)


def test_encode_shape(trained, train_acts):
    assert encode(trained.sae, trained.centre, train_acts[:5]).shape == (5, D_IN * 4)


def test_reconstruct_adds_centre(trained, train_acts):
    recon = reconstruct(trained.sae, trained.centre, train_acts)
    # The centre is about 5 in every dimension, so a reconstruction without it would be far off.
    assert float(recon.mean()) == pytest.approx(float(train_acts.mean()), abs=0.5)
