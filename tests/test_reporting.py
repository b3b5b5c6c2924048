"""Tests of the markdown results summary helpers."""

from __future__ import annotations

import math

import pandas as pd

from moral_indifference.reporting import is_embedded_default, markdown_table


def test_markdown_table_formats_cells():
    frame = pd.DataFrame({"model": ["a|b", "c"], "value": [0.12345, math.nan], "n": [3, 4]})
    assert markdown_table(frame, digits=2).splitlines() == [
        "| model | value | n |",
        "| --- | --- | --- |",
        "| a\\|b | 0.12 | 3 |",
        "| c | n/a | 4 |",
    ]


def test_markdown_table_empty():
    assert markdown_table(pd.DataFrame()) == "_(no rows)_"


def test_embedded_default_detection():
    assert is_embedded_default({"ground_truth": {"path": "resources/demo/social-chem-101.demo.tsv"}})
    assert not is_embedded_default({"ground_truth": {"path": "data/social-chem-101.v1.0.tsv"}})


def test_realignment_section_counts_and_change(tmp_path):
    from moral_indifference.reporting import realignment_section

    folder = tmp_path / "layer_010"
    folder.mkdir()
    pd.DataFrame(
        {
            "stage": ["before", "after", "before", "after"],
            "measure": ["features", "features", "categorical", "categorical"],
            "statistic": ["n_mono", "n_mono", "virtue_vice_cosine", "virtue_vice_cosine"],
            "category": ["", "", "care-harm", "care-harm"],
            "value": [21.0, 16.0, 0.5, 0.25],
            "n": [53, 53, 30, 30],
        }
    ).to_parquet(folder / "before_after.parquet")
    table = "\n".join(realignment_section([str(folder / "before_after.parquet")]))
    assert "| layer_010 | features | n_mono |  | 21 | 16 | -5 |" in table
    assert "| layer_010 | categorical | virtue_vice_cosine | care-harm | 0.500 | 0.250 | -0.250 |" in table
