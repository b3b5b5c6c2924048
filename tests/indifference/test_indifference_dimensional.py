"""Tests of the dimensional measure: a linear probe scored by test R²."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from moral_indifference.foundations import SLOTS
from moral_indifference.indifference.dimensional import (
    ProbeConfig,
    adjusted_r2,
    annotation_rows,
    dimensional_indifference,
)

FAST = ProbeConfig(lr=1e-2, batch_size=32, max_epochs=60, patience=10)


def probe_sample(n: int = 400, d: int = 8, noise: float = 0.01, linear: bool = True, seed: int = 0):
    """Build features and 10-slot targets (an exact linear map plus noise, or unrelated noise)."""
    rng = np.random.default_rng(seed)
    # Raw features are offset and scaled, so the probe must standardise them; the targets
    # stay near unit scale, which a few hundred AdamW steps reach.
    signal = rng.normal(size=(n, d))
    features = signal * 3.0 + 5.0
    if linear:
        targets = signal @ rng.normal(size=(d, len(SLOTS))) + noise * rng.normal(size=(n, len(SLOTS)))
    else:
        targets = rng.normal(size=(n, len(SLOTS)))
    split = np.array(["train"] * (n * 6 // 10) + ["val"] * (n * 2 // 10) + ["test"] * (n - n * 8 // 10))
    rows = pd.DataFrame(targets, columns=list(SLOTS))
    rows.insert(0, "id", [f"a{i}" for i in range(n)])
    rows["split"] = split
    return features.astype(np.float32), rows


def test_adjusted_r2_hand_value():
    # 1 - (1 - 0.5) * (11 - 1) / (11 - 2 - 1) = 1 - 0.5 * 10 / 8
    assert adjusted_r2(0.5, n=11, p=2) == pytest.approx(0.375)


def test_adjusted_r2_too_few_rows_nan():
    assert math.isnan(adjusted_r2(0.5, n=3, p=2))


def test_probe_linear_data_high_r2():
    features, rows = probe_sample()
    result = dimensional_indifference(features, rows, FAST)
    assert result.r2 > 0.95
    assert result.n_test == 80
    assert result.adjusted_r2 < result.r2


def test_probe_random_targets_low_r2():
    features, rows = probe_sample(linear=False)
    result = dimensional_indifference(features, rows, FAST)
    assert result.r2 < 0.1


def test_probe_constant_slot_nan():
    features, rows = probe_sample()
    rows["degradation"] = 0.0
    result = dimensional_indifference(features, rows, FAST)
    assert math.isnan(result.r2_per_slot["degradation"])
    assert result.r2_per_slot["care"] > 0.9
    assert result.r2 > 0.95


def test_probe_seeded_repeatable():
    features, rows = probe_sample(n=200)
    config = ProbeConfig(lr=1e-2, batch_size=32, max_epochs=5)
    first = dimensional_indifference(features, rows, config)
    second = dimensional_indifference(features, rows, config)
    assert first.r2 == second.r2


def test_probe_missing_split_raises():
    features, rows = probe_sample(n=50)
    rows["split"] = rows["split"].replace("val", "train")
    with pytest.raises(ValueError, match="no 'val' split rows"):
        dimensional_indifference(features, rows, FAST)


def test_annotation_rows_dedupe_by_id():
    _, rows = probe_sample(n=20)
    expanded = pd.concat([rows, rows], ignore_index=True)
    reduced = annotation_rows(expanded)
    assert len(reduced) == 20
    assert reduced["id"].is_unique


def test_annotation_rows_splits_disjoint():
    _, rows = probe_sample(n=20)
    reduced = annotation_rows(pd.concat([rows, rows], ignore_index=True))
    ids = {name: set(reduced.loc[reduced["split"] == name, "id"]) for name in ("train", "val", "test")}
    assert ids["train"].isdisjoint(ids["test"])
    assert ids["val"].isdisjoint(ids["test"])
    assert ids["train"].isdisjoint(ids["val"])


def test_annotation_rows_leak_raises():
    _, rows = probe_sample(n=20)
    leaking = rows.iloc[[0]].copy()
    leaking["split"] = "test"
    with pytest.raises(ValueError, match="more than one split"):
        annotation_rows(pd.concat([rows, leaking], ignore_index=True))


def test_r2_variance_weighted_by_hand():
    from moral_indifference.indifference.dimensional import _r2_scores

    y_true = np.zeros((4, 10))
    y_true[:, 0] = [0.0, 1.0, 0.0, 1.0]  # care: variance 0.25, predicted exactly (R² 1)
    y_true[:, 1] = [0.0, 0.0, 0.0, 0.5]  # harm: variance 0.046875, predicted as 0 (R² -1/3)
    y_pred = y_true.copy()
    y_pred[:, 1] = 0.0
    plain, weighted, per_slot = _r2_scores(y_true, y_pred)
    assert per_slot["care"] == pytest.approx(1.0)
    assert per_slot["harm"] == pytest.approx(-1 / 3)
    assert plain == pytest.approx((1.0 - 1 / 3) / 2)
    assert weighted == pytest.approx((0.25 * 1.0 + 0.046875 * (-1 / 3)) / (0.25 + 0.046875))
