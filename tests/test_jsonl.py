"""Tests of JSON Lines reading and writing."""

from __future__ import annotations

import pytest

from moral_indifference.jsonl import iter_json_objects, read_jsonl, write_jsonl


def test_round_trip_keeps_chinese_bytes(tmp_path):
    records = [{"prompt": "如何评价这种行为？", "id": 1}, {"prompt": "plain", "id": 2}]
    path = tmp_path / "answers.jsonl"
    write_jsonl(records, path)
    assert read_jsonl(path) == records
    assert "如何评价这种行为" in path.read_text(encoding="utf-8")


def test_reader_skips_blank_lines_and_bom(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_bytes('\ufeff{"a": 1}\n\n{"a": 2}\n'.encode("utf-8"))
    assert list(iter_json_objects(path)) == [(1, {"a": 1}), (3, {"a": 2})]


def test_reader_names_line_of_bad_json(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(KeyError, match=r"broken\.jsonl, line 2: invalid JSON"):
        list(iter_json_objects(path, KeyError))


def test_reader_rejects_non_object(tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1: expected a JSON object, got list"):
        read_jsonl(path)
