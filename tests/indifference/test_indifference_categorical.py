"""Tests of the categorical measure: prototype centres and their cosines after centring."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from moral_indifference.foundations import SLOTS
from moral_indifference.indifference.categorical import categorical_indifference, centre_rows, cosine
from moral_rows import make_row


def test_centre_rows_subtracts_mean():
    centred = centre_rows(np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32))
    assert np.allclose(centred, [[-1.0, -2.0], [1.0, 2.0]])


def test_cosine_zero_vector_is_nan():
    assert math.isnan(cosine(np.zeros(2), np.ones(2)))


def test_categorical_opposite_centres():
    # Raw vectors share the offset (2, 1); after centring care is (1, 0) and harm (-1, 0).
    rows = pd.DataFrame(
        [
            make_row("a", "care-harm", "virtue", 1.0),
            make_row("b", "care-harm", "virtue", 1.0),
            make_row("c", "care-harm", "vice", 1.0),
            make_row("d", "care-harm", "vice", 1.0),
        ]
    )
    reps = np.array([[3.0, 1.0], [3.0, 1.0], [1.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    result = categorical_indifference(reps, rows)
    assert np.allclose(result.centres["care"], [1.0, 0.0])
    assert np.allclose(result.centres["harm"], [-1.0, 0.0])
    assert result.virtue_vice_cosine["care-harm"] == pytest.approx(-1.0)
    assert result.mean_off_diagonal == pytest.approx(-1.0)
    assert math.isnan(result.virtue_vice_cosine["fairness-cheating"])
    assert result.n_prototypes == {slot: (2 if slot in ("care", "harm") else 0) for slot in SLOTS}


def test_categorical_matrix_shape_and_labels():
    rows = pd.DataFrame([make_row("a", "care-harm", "virtue", 1.0), make_row("b", "care-harm", "vice", 1.0)])
    result = categorical_indifference(np.array([[1.0, 0.0], [0.0, 1.0]]), rows)
    assert list(result.cosine.index) == list(SLOTS)
    assert list(result.cosine.columns) == list(SLOTS)
    assert result.cosine.loc["care", "care"] == pytest.approx(1.0)
    assert np.isnan(result.cosine.loc["loyalty", "betrayal"])


def test_categorical_excludes_non_prototypes():
    # Rows: care prototype (4, 0), care at typicality 0.5 (0, 4), harm prototype (-4, -4).
    # The mean is (0, 0), so care = (4, 0), harm = (-4, -4): cosine = -16 / (4 * 4 * sqrt 2).
    # A fairness row with care = 1.0 is sampled for another foundation and must not count.
    fairness_row = make_row("d", "fairness-cheating", "virtue", 0.5)
    fairness_row["care"] = 1.0
    rows = pd.DataFrame(
        [
            make_row("a", "care-harm", "virtue", 1.0),
            make_row("b", "care-harm", "virtue", 0.5),
            make_row("c", "care-harm", "vice", 1.0),
            fairness_row,
        ]
    )
    reps = np.array([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0], [0.0, 0.0]])
    result = categorical_indifference(reps, rows)
    assert result.n_prototypes["care"] == 1
    assert np.allclose(result.centres["care"], [4.0, 0.0])
    assert result.virtue_vice_cosine["care-harm"] == pytest.approx(-1.0 / math.sqrt(2.0))


def test_categorical_off_diagonal_mean():
    # Orthogonal care and fairness centres, care and harm at cosine -1 -> off-diagonal
    # entries (each pair twice): care-harm -1, care-fairness 0, harm-fairness 0 -> mean -1/3.
    rows = pd.DataFrame(
        [
            make_row("a", "care-harm", "virtue", 1.0),
            make_row("b", "care-harm", "vice", 1.0),
            make_row("c", "fairness-cheating", "virtue", 1.0),
            make_row("d", "fairness-cheating", "virtue", 1.0),
        ]
    )
    reps = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    # Centres: care (1, 0), harm (-1, 0), fairness mean of (0, 1), (0, -1) = (0, 0) -> NaN.
    result = categorical_indifference(reps, rows)
    assert np.isnan(result.cosine.loc["care", "fairness"])
    assert result.mean_off_diagonal == pytest.approx(-1.0)

    reps[3] = [0.0, 1.0]
    # Mean is now (0, 0.5): care (1, -0.5), harm (-1, -0.5), fairness (0, 0.5).
    result = categorical_indifference(reps, rows)
    care_harm = (-1.0 + 0.25) / 1.25
    care_fairness = -0.25 / (math.sqrt(1.25) * 0.5)
    expected = (care_harm + 2 * care_fairness) / 3
    assert result.mean_off_diagonal == pytest.approx(expected)


def test_categorical_misaligned_rows_raise():
    rows = pd.DataFrame([make_row("a", "care-harm", "virtue", 1.0)])
    with pytest.raises(ValueError, match="align them by id"):
        categorical_indifference(np.zeros((2, 3)), rows)
