"""Tests of the gradient measure: proximity to the own category centre vs typicality."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from moral_indifference.indifference.gradient import correlate, gradient_indifference
from moral_rows import make_row


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


def loo_sample() -> tuple[np.ndarray, pd.DataFrame]:
    """Three care prototypes at (1, 0), (0, 1), (-1, 0) and their mirror images as harm prototypes.

    The layout is point-symmetric, so centring changes nothing. The care centre is (0, 1/3);
    without the prototype at (0, 1) it is (0, 0), and without (1, 0) it is (-1/2, 1/2).
    """
    care = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]
    records = [make_row(f"v{number}", "care-harm", "virtue", 1.0) for number in range(3)]
    records += [make_row(f"x{number}", "care-harm", "vice", 1.0) for number in range(3)]
    vectors = care + [[-x, -y] for x, y in care]
    return np.array(vectors), pd.DataFrame(records)


def test_gradient_default_keeps_self_in_centre():
    reps, rows = loo_sample()
    points = gradient_indifference(reps, rows).points
    proximity = dict(zip(points["id"], points["proximity"]))
    assert proximity["v1"] == pytest.approx(1.0)  # (0, 1) against (0, 1/3)
    assert proximity["v0"] == pytest.approx(0.0)  # (1, 0) against (0, 1/3)


def test_gradient_leave_one_out_centres():
    from moral_indifference.indifference.gradient import GradientConfig

    reps, rows = loo_sample()
    points = gradient_indifference(reps, rows, config=GradientConfig(leave_one_out=True)).points
    proximity = dict(zip(points["id"], points["proximity"]))
    assert proximity["v0"] == pytest.approx(-1 / math.sqrt(2))  # (1, 0) against (-1/2, 1/2)
    assert proximity["v2"] == pytest.approx(-1 / math.sqrt(2))  # (-1, 0) against (1/2, 1/2)
    assert "v1" not in proximity  # (0, 1) against the zero vector (0, 0): cosine undefined


def test_gradient_leave_one_out_single_prototype_dropped():
    from moral_indifference.indifference.gradient import GradientConfig

    rows = pd.DataFrame([make_row("v0", "care-harm", "virtue", 1.0), make_row("n0", "care-harm", "neutral", 0.0)])
    reps = np.array([[1.0, 0.0], [-1.0, 0.0]])
    points = gradient_indifference(reps, rows, config=GradientConfig(leave_one_out=True)).points
    assert "v0" not in set(points["id"])
    assert list(points["id"]) == ["n0"]
