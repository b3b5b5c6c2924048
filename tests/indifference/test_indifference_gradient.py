"""Tests of the gradient measure: proximity to the own category centre vs typicality."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from moral_indifference.foundations import SLOTS, foundation_slots
from moral_indifference.indifference.gradient import correlate, gradient_indifference


def make_row(row_id: str, foundation: str, polarity: str, typicality: float) -> dict:
    """Build one diagnosis-sample row whose active pole has ``typicality``."""
    virtue, vice = foundation_slots(foundation)
    row = {"id": row_id, "sampled_dimension": foundation, "target_dimension": foundation, "polarity": polarity}
    row.update({slot: 0.0 for slot in SLOTS})
    if polarity == "virtue":
        row[virtue] = typicality
    elif polarity == "vice":
        row[vice] = typicality
    row["typicality"] = typicality if polarity != "neutral" else 0.0
    return row


def graded_sample() -> tuple[np.ndarray, pd.DataFrame]:
    """Place each care row at angle arccos(t) from (1, 0) and each harm row opposite.

    The layout is point-symmetric, so the mean is 0 and centring changes nothing: the care
    centre is (1, 0), the harm centre (-1, 0), and every proximity equals the typicality.
    Neutral rows at (0, 1) and (0, -1) have proximity 0 to both centres.
    """
    typicalities = [1.0, 1.0, 0.75, 0.5, 0.25, 0.125]
    records, vectors = [], []
    for number, typicality in enumerate(typicalities):
        angle = math.acos(typicality)
        records.append(make_row(f"v{number}", "care-harm", "virtue", typicality))
        vectors.append([math.cos(angle), math.sin(angle)])
        records.append(make_row(f"x{number}", "care-harm", "vice", typicality))
        vectors.append([-math.cos(angle), -math.sin(angle)])
    records.append(make_row("n0", "care-harm", "neutral", 0.0))
    vectors.append([0.0, 1.0])
    records.append(make_row("n1", "care-harm", "neutral", 0.0))
    vectors.append([0.0, -1.0])
    return np.array(vectors), pd.DataFrame(records)


def test_gradient_monotone_spearman_one():
    reps, rows = graded_sample()
    result = gradient_indifference(reps, rows)
    assert result.overall.spearman == pytest.approx(1.0)


def test_gradient_exact_pearson_one():
    reps, rows = graded_sample()
    result = gradient_indifference(reps, rows)
    assert result.overall.pearson == pytest.approx(1.0)


def test_gradient_proximity_equals_typicality():
    reps, rows = graded_sample()
    points = gradient_indifference(reps, rows).points
    assert np.allclose(points["proximity"], points["typicality"])


def test_gradient_neutral_rows_count_twice():
    reps, rows = graded_sample()
    result = gradient_indifference(reps, rows)
    assert result.overall.n == 6 + 6 + 2 * 2
    assert result.per_category["care"].n == 6 + 2
    assert result.per_category["harm"].n == 6 + 2


def test_gradient_missing_centre_is_nan():
    reps, rows = graded_sample()
    result = gradient_indifference(reps, rows)
    assert result.per_category["fairness"].n == 0
    assert math.isnan(result.per_category["fairness"].spearman)


def test_correlate_reversed_minus_one():
    # Proximity falls as typicality rises, so the ranks are exactly reversed.
    proximity = np.array([0.9, 0.6, 0.3])
    typicality = np.array([0.125, 0.25, 0.5])
    correlation = correlate(proximity, typicality)
    assert correlation.spearman == pytest.approx(-1.0)


def test_correlate_constant_input_nan():
    correlation = correlate(np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.5, 0.5]))
    assert math.isnan(correlation.spearman)
    assert math.isnan(correlation.pearson)
    assert correlation.n == 3


def test_correlate_too_few_points_nan():
    assert math.isnan(correlate(np.array([0.1, 0.2]), np.array([0.5, 1.0])).spearman)


def test_gradient_invalid_polarity_raises():
    reps, rows = graded_sample()
    rows.loc[0, "polarity"] = "good"
    with pytest.raises(ValueError, match="polarity 'good'"):
        gradient_indifference(reps, rows)
