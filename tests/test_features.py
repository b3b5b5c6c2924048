"""Tests for moral_indifference.features: correlations, classes, diagnostics, selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from moral_indifference.features import (
    R_COLUMNS,
    FeatureConfig,
    SelectedLatents,
    analyse_features,
    correlate,
    select_moral_latents,
    summarise_features,
)
from moral_indifference.foundations import FOUNDATIONS, SLOTS


def make_rows(slot_values: list[tuple[int | None, float]], foundations: list[str]) -> pd.DataFrame:
    """Build moral-vector rows: (slot index or None for neutral, typicality) per row."""
    records = []
    for (slot_index, value), foundation in zip(slot_values, foundations):
        record = {slot: 0.0 for slot in SLOTS}
        if slot_index is None:
            polarity = "neutral"
            value = 0.0
        else:
            record[SLOTS[slot_index]] = value
            polarity = "virtue" if slot_index % 2 == 0 else "vice"
            foundation = FOUNDATIONS[slot_index // 2]
        record.update(typicality=value, polarity=polarity, target_dimension=foundation)
        records.append(record)
    return pd.DataFrame(records)


@pytest.fixture(scope="module")
def indicator_rows() -> pd.DataFrame:
    """100 rows: 2 prototype rows per slot, then 80 neutral rows."""
    slot_values = [(i // 2, 1.0) for i in range(20)] + [(None, 0.0)] * 80
    foundations = [FOUNDATIONS[i % 5] for i in range(100)]
    return make_rows(slot_values, foundations)


def indicator(rows: pd.DataFrame, *slots: str) -> np.ndarray:
    return (rows[list(slots)].to_numpy() > 0).any(axis=1).astype(np.float64)


@pytest.fixture(scope="module")
def indicator_table(indicator_rows: pd.DataFrame) -> pd.DataFrame:
    one_neutral_row = np.zeros(100)
    one_neutral_row[50] = 1.0
    z = np.column_stack(
        [
            indicator(indicator_rows, "care"),  # 0: mono
            indicator(indicator_rows, "care", "harm"),  # 1: mono, pair of poles
            indicator(indicator_rows, "care", "fairness"),  # 2: poly
            np.full(100, 3.0),  # 3: constant, weak
            one_neutral_row,  # 4: weak
        ]
    )
    return analyse_features(z, indicator_rows)


def test_correlate_matches_numpy():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(50, 7))
    y = rng.normal(size=(50, 3))
    expected = np.corrcoef(z.T, y.T)[:7, 7:]
    np.testing.assert_allclose(correlate(z, y, block_size=3), expected, atol=1e-12)


def test_correlate_constant_column_zero():
    z = np.column_stack([np.ones(10), np.arange(10.0)])
    y = np.arange(10.0)[:, None]
    assert correlate(z, y)[0, 0] == 0.0


def test_r_indicator_own_slot(indicator_table):
    assert indicator_table.loc[0, "r_care"] == pytest.approx(1.0)


def test_r_disjoint_indicator(indicator_table):
    # Two disjoint indicators with p = 0.02 each: r = -p / (1 - p) = -1/49.
    assert indicator_table.loc[0, "r_harm"] == pytest.approx(-1 / 49)


def test_r_pair_indicator(indicator_table):
    # cov = p(1-p) - p^2 = 0.0192, var(a+b) = 0.04 * 0.96, var(a) = 0.02 * 0.98.
    expected = 0.0192 / np.sqrt(0.0384 * 0.0196)
    assert indicator_table.loc[1, "r_care"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("latent", "expected"),
    [(0, "mono"), (1, "mono"), (2, "poly"), (3, "weak"), (4, "weak")],
)
def test_class_by_latent(indicator_table, latent, expected):
    assert indicator_table.loc[latent, "class"] == expected


def test_class_between_thresholds_is_poly():
    rows = make_rows([(0, 1.0)] * 2 + [(None, 0.0)] * 98, ["care-harm"] * 100)
    rng = np.random.default_rng(0)
    base = indicator(rows, "care")
    noise = rng.normal(size=100)
    # Mix until r with care lands in (0.05, 0.1).
    for weight in np.linspace(0.0, 1.0, 2001):
        z = (weight * base / base.std() + noise / noise.std())[:, None]
        r = correlate(z, base[:, None])[0, 0]
        if 0.06 < r < 0.09:
            break
    table = analyse_features(z, rows)
    assert table.loc[0, "class"] == "poly"


def test_constant_latent_r_zero(indicator_table):
    assert (indicator_table.loc[3, list(R_COLUMNS)] == 0.0).all()


def test_dominant_slot(indicator_table):
    assert indicator_table.loc[0, "dominant_slot"] == "care"


def test_n_slots_above(indicator_table):
    assert indicator_table.loc[2, "n_slots_above"] == 2


def test_collapse_symmetric_pair(indicator_table):
    assert indicator_table.loc[1, "collapse"] == pytest.approx(1.0)


def test_collapse_zero_profile_nan(indicator_table):
    assert np.isnan(indicator_table.loc[3, "collapse"])


def test_prototypicality_monotone():
    levels = [0.125, 0.25, 0.375, 0.5, 0.75, 1.0]
    slot_values = [(0, level) for level in levels] + [(1, 1.0)] * 3 + [(None, 0.0)] * 3
    foundations = ["care-harm"] * 12
    rows = make_rows(slot_values, foundations)
    # Activation rises with care typicality. The harm prototypes (typicality 1.0, activation
    # 0) are left out of the Spearman, else they would break the order.
    z = np.array(levels + [0.0, 0.0, 0.0] + [0.0, 0.0, 0.0])[:, None]
    table = analyse_features(z, rows)
    assert table.loc[0, "prototypicality"] == pytest.approx(1.0)


def test_prototypicality_row_count():
    levels = [0.125, 0.25, 0.375, 0.5, 0.75, 1.0]
    slot_values = [(0, level) for level in levels] + [(1, 1.0)] * 3 + [(None, 0.0)] * 3
    rows = make_rows(slot_values, ["care-harm"] * 12)
    z = np.array(levels + [0.0, 0.0, 0.0] + [0.0, 0.0, 0.0])[:, None]
    table = analyse_features(z, rows)
    assert table.loc[0, "dominant_slot"] == "care"
    assert table.loc[0, "prototypicality_n"] == 9


def test_polarity_matches_scipy():
    rng = np.random.default_rng(3)
    slot_values = [(int(rng.integers(10)), 0.5) for _ in range(40)] + [(None, 0.0)] * 10
    rows = make_rows(slot_values, ["care-harm"] * 50)
    z = rng.exponential(size=(50, 4))
    table = analyse_features(z, rows)
    non_neutral = rows["polarity"] != "neutral"
    labels = (rows.loc[non_neutral, "polarity"] == "virtue").astype(int)
    expected = stats.pointbiserialr(labels, z[non_neutral.to_numpy(), 2])
    assert table.loc[2, "polarity_r"] == pytest.approx(expected.statistic)
    assert table.loc[2, "polarity_p"] == pytest.approx(expected.pvalue)


def test_rows_missing_column(indicator_rows):
    with pytest.raises(KeyError, match="typicality"):
        analyse_features(np.zeros((100, 2)), indicator_rows.drop(columns="typicality"))


def test_rows_misaligned(indicator_rows):
    with pytest.raises(ValueError, match="row-aligned"):
        analyse_features(np.zeros((99, 2)), indicator_rows)


def test_summary_counts(indicator_table):
    summary = summarise_features(indicator_table)
    assert (summary["n_mono"], summary["n_poly"], summary["n_weak"]) == (2, 1, 2)


def test_summary_mean_collapse_mono(indicator_table):
    summary = summarise_features(indicator_table)
    expected = np.mean(indicator_table.loc[[0, 1], "collapse"])
    assert summary["mono"]["mean_collapse"] == pytest.approx(expected)


def table_from_r(r: np.ndarray) -> pd.DataFrame:
    abs_sorted = -np.sort(-np.abs(r), axis=1)
    table = pd.DataFrame(r, columns=list(R_COLUMNS))
    table.insert(0, "latent", np.arange(len(r)))
    table["max_abs_r"] = abs_sorted[:, 0]
    table["second_abs_r"] = abs_sorted[:, 1]
    return table


@pytest.fixture()
def selection_table() -> pd.DataFrame:
    r = np.zeros((8, 10))
    r[0, 0] = 0.5  # strict: 0.5 > 1.5 x 0.3
    r[0, 2] = 0.3
    r[1, 0] = 0.3  # not strict: 0.3 < 1.5 x 0.25
    r[1, 1] = 0.25
    r[2, 0] = 0.4  # care, third strongest with latent 0 and 3
    r[2, 4] = 0.35
    r[3, 0] = 0.45
    r[3, 6] = 0.44
    r[4, 9] = 0.05  # degradation, below 0.1 but positive
    r[5, 9] = -0.9  # strict through |r|, negative on degradation
    return table_from_r(r)


def test_select_strict_mono(selection_table):
    selected = select_moral_latents(selection_table, FeatureConfig(top_per_slot=2, top_per_pole=1))
    assert selected.strict_mono == (0, 5)


def test_select_top_per_slot(selection_table):
    selected = select_moral_latents(selection_table, FeatureConfig(top_per_slot=2, top_per_pole=1))
    assert selected.per_slot["care"] == (0, 3)


def test_select_per_slot_threshold(selection_table):
    selected = select_moral_latents(selection_table, FeatureConfig(top_per_slot=2, top_per_pole=1))
    assert selected.per_slot["degradation"] == ()


def test_select_per_pole_positive(selection_table):
    selected = select_moral_latents(selection_table, FeatureConfig(top_per_slot=2, top_per_pole=1))
    assert selected.per_pole["degradation"] == (4,)


def test_select_union_sorted(selection_table):
    selected = select_moral_latents(selection_table, FeatureConfig(top_per_slot=2, top_per_pole=1))
    assert selected.indices == (0, 1, 2, 3, 4, 5)


def test_selected_json_round_trip(selection_table, tmp_path):
    selected = select_moral_latents(selection_table, FeatureConfig(top_per_slot=2, top_per_pole=1))
    path = selected.save(tmp_path / "selected.json")
    assert SelectedLatents.load(path) == selected
