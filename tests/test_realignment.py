"""Tests for moral_indifference.realignment: frozen parameters, loss terms, sampler, history."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
import torch
from sae_lens import SAE
from sae_lens.saes.standard_sae import StandardSAE, StandardSAEConfig

from moral_indifference.features import FeatureConfig, analyse_features, select_moral_latents
from moral_indifference.foundations import FOUNDATIONS, SLOTS
from moral_indifference.realignment import (
    LOSS_TERMS,
    RealignmentConfig,
    _mono_latents,
    _Realigner,
    _row_targets,
    before_after,
    realign,
    sampler_weights,
    save_realignment,
)
from moral_indifference.sae import encode, load_sae

D_IN = 8
D_SAE = 32


def make_rows(n: int, seed: int) -> pd.DataFrame:
    """Random moral-vector rows over all foundations with graded typicality."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        foundation = FOUNDATIONS[i % 5]
        polarity = ("virtue", "vice", "neutral")[int(rng.integers(3))]
        typicality = 0.0 if polarity == "neutral" else float(rng.choice([0.25, 0.5, 0.75, 1.0]))
        record = {slot: 0.0 for slot in SLOTS}
        if polarity != "neutral":
            slot = SLOTS[2 * (i % 5) + (polarity == "vice")]
            record[slot] = typicality
        record.update(
            id=f"row_{seed}_{i:04d}",
            target_dimension=foundation,
            typicality=typicality,
            polarity=polarity,
        )
        records.append(record)
    return pd.DataFrame(records)


def make_acts(rows: pd.DataFrame, seed: int) -> np.ndarray:
    """Activations that carry the moral vector linearly plus noise and an offset."""
    rng = np.random.default_rng(100)
    mixing = rng.normal(size=(len(SLOTS), D_IN))
    noise = np.random.default_rng(seed).normal(scale=0.3, size=(len(rows), D_IN))
    return (rows[list(SLOTS)].to_numpy() @ mixing + noise + 2.0).astype(np.float32)


@pytest.fixture(scope="module")
def sae() -> StandardSAE:
    torch.manual_seed(0)
    model = StandardSAE(StandardSAEConfig(d_in=D_IN, d_sae=D_SAE))
    with torch.no_grad():
        model.b_enc.normal_(std=0.1)
        model.W_dec.div_(model.W_dec.norm(dim=1, keepdim=True))
    return model


@pytest.fixture(scope="module")
def data():
    train_rows = make_rows(300, seed=1)
    val_rows = make_rows(100, seed=2)
    return train_rows, make_acts(train_rows, 1), val_rows, make_acts(val_rows, 2)


@pytest.fixture(scope="module")
def centre(data) -> np.ndarray:
    return data[1].mean(axis=0)


@pytest.fixture(scope="module")
def feature_table(sae, centre, data) -> pd.DataFrame:
    _, _, val_rows, val_acts = data
    return analyse_features(encode(sae, centre, val_acts).numpy(), val_rows)


@pytest.fixture(scope="module")
def selected(feature_table):
    return select_moral_latents(feature_table, FeatureConfig(top_per_slot=1, top_per_pole=1))


@pytest.fixture(scope="module")
def result(sae, centre, data, selected, feature_table):
    train_rows, train_acts, val_rows, val_acts = data
    config = RealignmentConfig(epochs=3, batch_size=64, lr=1e-2, patience=5)
    return realign(sae, centre, train_acts, train_rows, val_acts, val_rows, selected, feature_table, config)


def test_selection_is_partial(selected):
    # The frozen-parameter tests are only meaningful if some latents stay unselected.
    assert 0 < len(selected.indices) < D_SAE


def test_selected_latents_change(result, sae, selected):
    index = list(selected.indices)
    assert not torch.equal(result.sae.W_enc[:, index], sae.W_enc[:, index])


def test_unselected_encoder_rows_equal(result, sae, selected):
    frozen = [i for i in range(D_SAE) if i not in selected.indices]
    assert torch.equal(result.sae.W_enc[:, frozen], sae.W_enc[:, frozen])


def test_unselected_biases_equal(result, sae, selected):
    frozen = [i for i in range(D_SAE) if i not in selected.indices]
    assert torch.equal(result.sae.b_enc[frozen], sae.b_enc[frozen])


def test_unselected_decoder_rows_equal(result, sae, selected):
    frozen = [i for i in range(D_SAE) if i not in selected.indices]
    assert torch.equal(result.sae.W_dec[frozen], sae.W_dec[frozen])


def test_decoder_bias_equal(result, sae):
    assert torch.equal(result.sae.b_dec, sae.b_dec)


def test_original_sae_untouched(sae, centre, data, selected, feature_table):
    train_rows, train_acts, val_rows, val_acts = data
    before = {name: value.clone() for name, value in sae.state_dict().items()}
    config = RealignmentConfig(epochs=1, batch_size=64, lr=1e-2)
    realign(sae, centre, train_acts, train_rows, val_acts, val_rows, selected, feature_table, config)
    for name, value in sae.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_history_per_epoch(result):
    assert [record["epoch"] for record in result.history] == [0, 1, 2]


def test_history_has_every_term(result):
    expected = {f"{split}_{term}" for split in ("train", "val") for term in (*LOSS_TERMS, "total")}
    assert expected <= set(result.history[0])


def test_early_stopping_stops(sae, centre, data, selected, feature_table):
    train_rows, train_acts, val_rows, val_acts = data
    # lr 0 leaves the validation loss constant, so patience 1 stops after the second epoch.
    config = RealignmentConfig(epochs=10, batch_size=64, lr=0.0, patience=1)
    outcome = realign(sae, centre, train_acts, train_rows, val_acts, val_rows, selected, feature_table, config)
    assert len(outcome.history) == 2


def test_save_reload_round_trip(result, centre, tmp_path):
    save_realignment(result, centre, tmp_path)
    reloaded, _ = load_sae(tmp_path)
    assert torch.equal(reloaded.W_enc, result.sae.W_enc)


def test_saved_is_saelens_folder(result, centre, tmp_path):
    save_realignment(result, centre, tmp_path)
    assert isinstance(SAE.load_from_disk(tmp_path), StandardSAE)


def realigner_terms(sae, centre, data, selected, feature_table, **weights) -> dict[str, torch.Tensor]:
    train_rows, train_acts, _, _ = data
    config = RealignmentConfig(**weights)
    # Label every selected latent mono-semantic for "care", so the mono term has work to do.
    table = feature_table.copy()
    table.loc[list(selected.indices), ["class", "dominant_slot"]] = ["mono", "care"]
    positions, slots = _mono_latents(selected.indices, table)
    realigner = _Realigner(sae, torch.tensor(selected.indices), positions, slots, config)
    x = torch.from_numpy(train_acts - centre)
    terms = realigner.losses(x, _row_targets(train_rows, "train rows"))
    return {name: value.detach() for name, value in terms.items()}


@pytest.mark.parametrize("term", LOSS_TERMS)
def test_loss_term_positive_by_default(sae, centre, data, selected, feature_table, term):
    terms = realigner_terms(sae, centre, data, selected, feature_table)
    assert float(terms[term]) > 0.0


@pytest.mark.parametrize("term", LOSS_TERMS)
def test_loss_weight_zero_turns_off(sae, centre, data, selected, feature_table, term):
    terms = realigner_terms(sae, centre, data, selected, feature_table, **{f"{term}_weight": 0.0})
    assert float(terms[term]) == 0.0


@pytest.mark.parametrize("term", LOSS_TERMS)
def test_loss_weight_zero_total(sae, centre, data, selected, feature_table, term):
    config = RealignmentConfig(**{f"{term}_weight": 0.0})
    terms = realigner_terms(sae, centre, data, selected, feature_table, **{f"{term}_weight": 0.0})
    expected = sum(config.weight(t) * float(terms[t]) for t in LOSS_TERMS)
    assert float(terms["total"]) == pytest.approx(expected, rel=1e-6)


def test_negative_weight_rejected():
    with pytest.raises(ValueError, match="polarity_weight"):
        RealignmentConfig(polarity_weight=-1.0)


def band_rows() -> pd.DataFrame:
    # One virtue and one vice row per band, so the polarity factor is 1.
    return pd.DataFrame(
        {
            "typicality": [1.0, 0.75, 0.5, 0.375, 0.125, 0.0, 1.0, 0.75, 0.5, 0.375, 0.125],
            "polarity": ["virtue"] * 5 + ["neutral"] + ["vice"] * 5,
        }
    )


def test_sampler_bands():
    weights = sampler_weights(band_rows(), RealignmentConfig())
    np.testing.assert_array_equal(weights, [3.0, 2.0, 2.0, 1.5, 1.5, 0.3, 3.0, 2.0, 2.0, 1.5, 1.5])


def test_sampler_reference_bug():
    weights = sampler_weights(band_rows(), RealignmentConfig(reference_sampler_bug=True))
    np.testing.assert_array_equal(weights, [2.0, 2.0, 2.0, 1.5, 1.5, 0.3, 2.0, 2.0, 2.0, 1.5, 1.5])


def test_sampler_minority_factor():
    rows = pd.DataFrame({"typicality": [0.5] * 3, "polarity": ["virtue", "virtue", "vice"]})
    weights = sampler_weights(rows, RealignmentConfig())
    np.testing.assert_array_equal(weights, [2.0, 2.0, 4.0])


def test_sampler_minority_factor_capped():
    rows = pd.DataFrame({"typicality": [0.5] * 6, "polarity": ["virtue"] * 5 + ["vice"]})
    weights = sampler_weights(rows, RealignmentConfig())
    assert weights[-1] == 6.0


def test_realign_rejects_misaligned(sae, centre, data, selected, feature_table):
    train_rows, train_acts, val_rows, val_acts = data
    with pytest.raises(ValueError, match="row-aligned"):
        realign(sae, centre, train_acts[:-1], train_rows, val_acts, val_rows, selected, feature_table)


def diagnosis_sample(n_per_stratum: int = 3) -> pd.DataFrame:
    records = []
    for f_index, foundation in enumerate(FOUNDATIONS):
        for polarity in ("virtue", "vice", "neutral"):
            levels = (0.0,) if polarity == "neutral" else (0.5, 1.0)
            for level in levels:
                for k in range(n_per_stratum):
                    record = {slot: 0.0 for slot in SLOTS}
                    if polarity != "neutral":
                        record[SLOTS[2 * f_index + (polarity == "vice")]] = level
                    record.update(
                        id=f"diag_{foundation}_{polarity}_{level}_{k}",
                        target_dimension=foundation,
                        sampled_dimension=foundation,
                        typicality=level,
                        polarity=polarity,
                        sample_type=polarity,
                        score_stratum=level,
                    )
                    records.append(record)
    return pd.DataFrame(records)


@pytest.mark.skipif(
    importlib.util.find_spec("moral_indifference.indifference") is None,
    reason="moral_indifference.indifference (compute_layer) is not available",
)
def test_before_after_table(sae, centre, data, result):
    _, _, val_rows, val_acts = data
    diagnosis = diagnosis_sample()
    diagnosis_acts = make_acts(diagnosis, seed=3)
    index = pd.DataFrame({"position": np.arange(len(diagnosis)), "id": diagnosis["id"]})
    table = before_after(sae, result.sae, centre, val_acts, val_rows, diagnosis_acts, index, diagnosis)
    assert list(table.columns) == ["stage", "measure", "statistic", "category", "value", "n"]
    assert set(table["stage"]) == {"before", "after"}
    assert {"features", "categorical", "gradient"} <= set(table["measure"])


@pytest.mark.skipif(
    importlib.util.find_spec("moral_indifference.indifference") is None,
    reason="moral_indifference.indifference (compute_layer) is not available",
)
def test_before_after_same_sae_equal(sae, centre, data):
    _, _, val_rows, val_acts = data
    diagnosis = diagnosis_sample()
    diagnosis_acts = make_acts(diagnosis, seed=3)
    index = pd.DataFrame({"position": np.arange(len(diagnosis)), "id": diagnosis["id"]})
    table = before_after(sae, sae, centre, val_acts, val_rows, diagnosis_acts, index, diagnosis)
    before = table[table["stage"] == "before"].drop(columns="stage").reset_index(drop=True)
    after = table[table["stage"] == "after"].drop(columns="stage").reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)
