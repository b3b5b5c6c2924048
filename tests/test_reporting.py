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
