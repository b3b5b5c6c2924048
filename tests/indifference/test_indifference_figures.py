"""Tests of the indifference figures: each writes a non-empty PNG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from moral_indifference.foundations import SLOTS
from moral_indifference.indifference.figures import plot_centre_cosine_heatmap, plot_layer_curves

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def curve_table() -> pd.DataFrame:
    """Build a two-model, two-pooling, three-layer table of one per-foundation statistic."""
    rows = []
    for model in ("small", "large"):
        for pooling in ("mean", "last"):
            for layer in range(3):
                for category in ("care-harm", "fairness-cheating"):
                    rows.append((model, layer, pooling, "categorical", "virtue_vice_cosine", category, 0.1 * layer, 10))
    return pd.DataFrame(rows, columns=["model", "layer", "pooling", "measure", "statistic", "category", "value", "n"])


def test_layer_curves_write_png(tmp_path):
    path = plot_layer_curves(curve_table(), tmp_path / "curves" / "cosine.png", "categorical", "virtue_vice_cosine")
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_layer_curves_unknown_statistic_raises(tmp_path):
    with pytest.raises(ValueError, match="statistic 'spearman'"):
        plot_layer_curves(curve_table(), tmp_path / "x.png", "gradient", "spearman")


def test_heatmap_writes_png_with_nan(tmp_path):
    matrix = pd.DataFrame(np.eye(len(SLOTS)), index=list(SLOTS), columns=list(SLOTS))
    matrix.loc["sanctity", :] = np.nan
    path = plot_centre_cosine_heatmap(matrix, tmp_path / "heatmap.png", "tiny, layer 3, last")
    assert path.stat().st_size > 1000
    assert path.read_bytes().startswith(PNG_SIGNATURE)
