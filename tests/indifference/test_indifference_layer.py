"""Tests of the layer driver: joining by id, the records table, persistence and summaries."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from moral_indifference.foundations import FOUNDATIONS
from moral_indifference.indifference import (
    IndifferenceConfig,
    MEASURES,
    RECORD_COLUMNS,
    best_layer,
    combine_layers,
    compute_layer,
    cross_model_table,
    get_measure,
    load_layer_result,
    save_layer_result,
)
from moral_indifference.indifference.categorical import categorical_indifference
from moral_rows import make_row

CONFIG = IndifferenceConfig.from_dict(
    {
        "structural": {"min_cluster_size": 5, "min_samples": 3},
        "probe": {"lr": 1e-2, "batch_size": 16, "max_epochs": 3},
        "poolings": ["mean", "last"],
    }
)


@pytest.fixture(scope="module")
def layer_inputs():
    """Build 60 annotations with random 6-D activations, a 40-row diagnosis sample and vectors."""
    rng = np.random.default_rng(0)
    rows = []
    for foundation in FOUNDATIONS:
        for polarity, typicality in (("virtue", 1.0), ("virtue", 0.5), ("vice", 1.0), ("vice", 0.25), ("neutral", 0.0)):
            for copy in range(2):
                rows.append(make_row(f"{foundation}-{polarity}-{typicality}-{copy}", foundation, polarity, typicality))
    for number, row in enumerate(rows):
        row["split"] = ("train", "train", "val", "test")[number % 4]
    diagnosis = pd.DataFrame(rows[:40])
    vectors = pd.DataFrame(rows + rows)  # expanded: two rows per annotation
    ids = [row["id"] for row in rows]
    # Index order differs from row order, so the join by id is exercised.
    order = rng.permutation(len(ids))
    index = pd.DataFrame({"position": np.arange(len(ids)), "id": [ids[i] for i in order]})
    representations = {name: rng.normal(size=(len(ids), 6)).astype(np.float32) for name in ("mean", "last", "unused")}
    return representations, index, diagnosis, vectors


def test_compute_layer_columns(layer_inputs):
    result = compute_layer(*layer_inputs, CONFIG)
    assert tuple(result.records.columns) == RECORD_COLUMNS


def test_compute_layer_covers_measures(layer_inputs):
    result = compute_layer(*layer_inputs, CONFIG)
    assert set(result.records["measure"]) == set(MEASURES)
    assert set(result.records["pooling"]) == {"mean", "last"}


def test_compute_layer_joins_by_id(layer_inputs):
    representations, index, diagnosis, vectors = layer_inputs
    result = compute_layer(representations, index, diagnosis, vectors, CONFIG, measures=["categorical"])
    positions = index.set_index("id").loc[diagnosis["id"], "position"].to_numpy()
    expected = categorical_indifference(representations["last"][positions], diagnosis)
    records = result.records
    selected = records[
        (records["pooling"] == "last") & (records["statistic"] == "virtue_vice_cosine") & (records["category"] == "care-harm")
    ]
    assert selected["value"].item() == pytest.approx(expected.virtue_vice_cosine["care-harm"])
    assert selected["n"].item() == 4
    pd.testing.assert_frame_equal(result.centre_cosine["last"], expected.cosine)


def test_compute_layer_overall_category_empty(layer_inputs):
    records = compute_layer(*layer_inputs, CONFIG, measures=["gradient"]).records
    overall = records[(records["statistic"] == "spearman") & (records["category"] == "")]
    assert len(overall) == 2  # one per pooling
    # The 40 diagnosis rows cover four foundations with 4 virtue, 4 vice and 2 neutral rows
    # each, and neutral rows count twice: 4 * (8 + 2 * 2) points.
    assert (overall["n"] == 48).all()


def test_compute_layer_missing_id_raises(layer_inputs):
    representations, index, diagnosis, vectors = layer_inputs
    broken = diagnosis.copy()
    broken.loc[3, "id"] = "not-extracted"
    with pytest.raises(KeyError, match="row 3 has id 'not-extracted'.*index.parquet"):
        compute_layer(representations, index, broken, vectors, CONFIG, measures=["categorical"])


def test_compute_layer_missing_pooling_raises(layer_inputs):
    representations, index, diagnosis, vectors = layer_inputs
    config = IndifferenceConfig(poolings=("mean_skip_first",))
    with pytest.raises(KeyError, match="available: mean, last, unused"):
        compute_layer(representations, index, diagnosis, vectors, config)


def test_registry_unknown_lists_names():
    with pytest.raises(KeyError, match="valid names: categorical, gradient, structural, dimensional"):
        get_measure("topological")


def test_config_unknown_measure_raises():
    with pytest.raises(KeyError, match="unknown indifference measure 'probe'"):
        IndifferenceConfig(measures=("probe",))


def test_config_from_dict_nested():
    assert CONFIG.structural.min_cluster_size == 5
    assert CONFIG.probe.max_epochs == 3
    assert CONFIG.poolings == ("mean", "last")


def test_config_from_dict_unknown_key():
    with pytest.raises(KeyError, match="valid names: gradient, measures, poolings, probe, structural"):
        IndifferenceConfig.from_dict({"pooling": ["mean"]})


def test_layer_result_json_round_trip(layer_inputs, tmp_path):
    result = compute_layer(*layer_inputs, CONFIG)
    path = tmp_path / "layer_003.json"
    save_layer_result(result, path)
    loaded = load_layer_result(path)
    pd.testing.assert_frame_equal(loaded.records, result.records)
    pd.testing.assert_frame_equal(loaded.centre_cosine["mean"], result.centre_cosine["mean"])


def test_combine_layers_adds_model_layer(layer_inputs, tmp_path):
    result = compute_layer(*layer_inputs, CONFIG, measures=["categorical"])
    for layer in (0, 2):
        save_layer_result(result, tmp_path / f"layer_{layer:03d}.json")
    table = combine_layers([tmp_path / "layer_002.json", tmp_path / "layer_000.json"], model="tiny")
    assert list(table.columns[:2]) == ["model", "layer"]
    assert sorted(set(table["layer"])) == [0, 2]
    assert set(table["model"]) == {"tiny"}


def summary_table() -> pd.DataFrame:
    """Build a hand-made two-layer table for one model and pooling."""
    values = [
        # layer, measure, statistic, category, value, n
        (0, "gradient", "spearman", "", 0.2, 100),
        (1, "gradient", "spearman", "", 0.4, 100),
        (0, "categorical", "virtue_vice_cosine", "care-harm", 0.9, 10),
        (0, "categorical", "virtue_vice_cosine", "fairness-cheating", 0.7, 12),
        (1, "categorical", "virtue_vice_cosine", "care-harm", 0.2, 10),
        (1, "categorical", "virtue_vice_cosine", "fairness-cheating", 0.4, 12),
        (0, "structural", "ari_polarity", "", 0.1, 90),
        (1, "structural", "ari_polarity", "", 0.5, 80),
        (0, "structural", "ari_foundation", "", 0.05, 90),
        (1, "structural", "ari_foundation", "", 0.02, 80),
        (0, "dimensional", "r2", "", 0.1, 50),
        (1, "dimensional", "r2", "", float("nan"), 50),
        (0, "dimensional", "adjusted_r2", "", 0.05, 50),
        (1, "dimensional", "adjusted_r2", "", float("nan"), 50),
    ]
    table = pd.DataFrame(values, columns=["layer", "measure", "statistic", "category", "value", "n"])
    table.insert(0, "pooling", "last")
    table.insert(0, "model", "tiny")
    return table


def test_cross_model_table_peaks():
    summary = cross_model_table(summary_table()).iloc[0]
    assert summary["peak_spearman"] == pytest.approx(0.4)
    assert summary["peak_spearman_layer"] == 1
    assert summary["max_virtue_vice_cosine"] == pytest.approx(0.8)  # layer 0: (0.9 + 0.7) / 2
    assert summary["mean_virtue_vice_cosine"] == pytest.approx((0.8 + 0.3) / 2)
    assert summary["max_virtue_vice_cosine_n"] == 10
    assert summary["peak_ari_polarity_n"] == 80
    assert summary["peak_ari_foundation_layer"] == 0
    assert summary["best_r2"] == pytest.approx(0.1)
    assert summary["best_adjusted_r2"] == pytest.approx(0.05)


def test_best_layer_prefers_r2():
    assert best_layer(summary_table(), pooling="last") == 0


def test_best_layer_falls_back_to_cosine():
    table = summary_table()
    table = table[table["measure"] != "dimensional"]
    assert best_layer(table, pooling="last") == 0


def test_best_layer_explicit_statistic():
    assert best_layer(summary_table(), pooling="last", measure="structural", statistic="ari_polarity") == 1


def test_best_layer_no_values_raises():
    with pytest.raises(ValueError, match="no finite values"):
        best_layer(summary_table(), pooling="mean")


def test_cross_model_missing_measure_nan():
    table = summary_table()
    summary = cross_model_table(table[table["measure"] != "structural"]).iloc[0]
    assert math.isnan(summary["peak_ari_polarity"])
