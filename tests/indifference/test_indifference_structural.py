"""Tests of the structural measure: PCA + HDBSCAN clusters scored by ARI."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from moral_indifference.foundations import FOUNDATIONS
from moral_indifference.indifference.structural import StructuralConfig, structural_indifference


def blob_sample(points_per_blob: int = 120, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Build three tight, far-apart 5-D blobs, one per polarity, with foundations cycled within each."""
    rng = np.random.default_rng(seed)
    centres = {"virtue": [10.0, 0, 0, 0, 0], "vice": [0, 10.0, 0, 0, 0], "neutral": [0, 0, 10.0, 0, 0]}
    vectors, records = [], []
    for polarity, centre in centres.items():
        vectors.append(rng.normal(loc=centre, scale=0.1, size=(points_per_blob, 5)))
        for number in range(points_per_blob):
            records.append(
                {
                    "id": f"{polarity}{number}",
                    "sampled_dimension": FOUNDATIONS[number % len(FOUNDATIONS)],
                    "polarity": polarity,
                }
            )
    return np.vstack(vectors), pd.DataFrame(records)


def test_structural_blobs_match_polarity():
    reps, rows = blob_sample()
    result = structural_indifference(reps, rows)
    assert result.ari["polarity"] == pytest.approx(1.0)
    assert result.n_clusters == 3
    assert result.noise_ratio == pytest.approx(0.0)


def test_structural_blobs_ignore_foundation():
    reps, rows = blob_sample()
    result = structural_indifference(reps, rows)
    assert abs(result.ari["foundation"]) < 0.05
    assert result.ari["foundation_polarity"] < 1.0


def test_structural_pca_keeps_two_components():
    # Three blob centres span a plane, which explains almost all variance.
    reps, rows = blob_sample()
    assert structural_indifference(reps, rows).n_components == 2


def test_structural_all_noise_nan():
    # 50 rows cannot form a cluster of at least 100, so HDBSCAN labels them all noise.
    reps, rows = blob_sample(points_per_blob=17)
    result = structural_indifference(reps[:50], rows.iloc[:50])
    assert result.noise_ratio == pytest.approx(1.0)
    assert result.n_clusters == 0
    assert math.isnan(result.ari["polarity"])


def test_structural_too_few_rows_nan():
    reps, rows = blob_sample(points_per_blob=3)
    result = structural_indifference(reps, rows, StructuralConfig(min_samples=20))
    assert result.n_clustered == 0
    assert math.isnan(result.ari["foundation"])


def test_structural_noise_excluded_from_ari():
    # Add 30 isolated points far from the blobs; they are noise and do not lower the ARI.
    reps, rows = blob_sample()
    rng = np.random.default_rng(1)
    outliers = rng.uniform(-200.0, 200.0, size=(30, 5))
    extra = pd.DataFrame({"id": [f"o{i}" for i in range(30)], "sampled_dimension": FOUNDATIONS[0], "polarity": "virtue"})
    result = structural_indifference(np.vstack([reps, outliers]), pd.concat([rows, extra], ignore_index=True))
    assert result.noise_ratio > 0.0
    assert result.ari["polarity"] == pytest.approx(1.0)


def test_structural_config_rejects_bad_variance():
    with pytest.raises(ValueError, match="explained_variance"):
        StructuralConfig(explained_variance=1.5)
