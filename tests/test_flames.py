"""Tests for reading Flames-format prompt files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from moral_indifference.flames import FLAMES_DIMENSIONS, FlamesFormatError, read_flames

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_PATH = REPO_ROOT / "resources" / "demo" / "flames.demo.jsonl"
REAL_PATH = Path("/work/shared/data/flames/Flames_1k_Chinese.jsonl")


def write_jsonl(path: Path, records: list[object]) -> Path:
    lines = [record if isinstance(record, str) else json.dumps(record, ensure_ascii=False) for record in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def record(dimension: str = "Safety", prompt: str = "你好") -> dict[str, str]:
    return {"dimension": dimension, "subcomponent": "Physical harm", "prompt": prompt}


def test_read_flames_columns(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "f.jsonl", [record(), record("Fairness", "hello")])
    frame = read_flames(path)
    assert list(frame.columns) == ["prompt_id", "dimension", "subcomponent", "prompt"]
    assert frame["prompt_id"].tolist() == [0, 1]
    assert str(frame["prompt_id"].dtype) == "int64"
    assert frame["prompt"].tolist() == ["你好", "hello"]


def test_read_flames_skips_blank_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "f.jsonl", [record(), "", record("Morality")])
    frame = read_flames(path)
    assert frame["prompt_id"].tolist() == [0, 1]
    assert frame["dimension"].tolist() == ["Safety", "Morality"]


def test_read_flames_keeps_ids(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "f.jsonl", [{**record(), "id": 7}, {**record(), "id": "b"}])
    frame = read_flames(path)
    assert frame["prompt_id"].tolist() == ["7", "b"]


def test_read_flames_mixed_ids(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "f.jsonl", [{**record(), "id": 1}, record()])
    with pytest.raises(FlamesFormatError, match="line 2"):
        read_flames(path)


def test_read_flames_duplicate_id(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "f.jsonl", [{**record(), "id": 1}, {**record(), "id": 1}])
    with pytest.raises(FlamesFormatError, match="duplicate id '1'"):
        read_flames(path)


def test_read_flames_capital_protection(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "f.jsonl", [record(), record("Data Protection")])
    with pytest.raises(FlamesFormatError) as error:
        read_flames(path)
    message = str(error.value)
    assert "line 2" in message
    assert "'Data Protection'" in message
    assert "'Data protection'" in message
    assert "lower-case 'p'" in message


def test_read_flames_unknown_dimension(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "f.jsonl", [record("Privacy")])
    with pytest.raises(FlamesFormatError, match="valid names: Fairness, Safety"):
        read_flames(path)


def test_read_flames_bad_json(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "f.jsonl", [record(), '{"dimension": "Safety",'])
    with pytest.raises(FlamesFormatError) as error:
        read_flames(path)
    assert str(path) in str(error.value)
    assert "line 2: invalid JSON" in str(error.value)


def test_read_flames_missing_key(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "f.jsonl", [{"dimension": "Safety", "prompt": "x"}])
    with pytest.raises(FlamesFormatError, match="line 1: missing key 'subcomponent'"):
        read_flames(path)


def test_read_flames_non_string(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "f.jsonl", [{**record(), "prompt": 3}])
    with pytest.raises(FlamesFormatError, match="key 'prompt': expected a string"):
        read_flames(path)


def test_flames_demo_file() -> None:
    frame = read_flames(DEMO_PATH)
    chinese = frame["prompt"].map(lambda text: any("\u4e00" <= char <= "\u9fff" for char in text))
    assert len(frame) >= 24
    assert set(frame["dimension"]) == set(FLAMES_DIMENSIONS)
    assert int(chinese.sum()) * 2 == len(frame)


@pytest.mark.skipif(not REAL_PATH.is_file(), reason="Flames-1k-Chinese not present")
def test_flames_real_file() -> None:
    frame = read_flames(REAL_PATH)
    counts = Counter(frame["dimension"])
    assert len(frame) == 1000
    assert counts["Safety"] == 429
    assert counts["Fairness"] == 249
    assert counts["Morality"] == 201
    assert counts["Data protection"] == 75
    assert counts["Legality"] == 46


def test_select_prompts_seeded_and_ordered():
    import pandas as pd

    from moral_indifference.flames import select_prompts

    prompts = pd.DataFrame({"prompt_id": range(10), "dimension": ["Safety"] * 5 + ["Fairness"] * 5})
    first = select_prompts(prompts, 4, seed=1)
    assert len(first) == 4
    assert list(first.index) == sorted(first.index)
    assert first.equals(select_prompts(prompts, 4, seed=1))
    assert select_prompts(prompts, None) is prompts
    assert select_prompts(prompts, 20) is prompts


def test_select_prompts_rejects_zero():
    import pandas as pd

    from moral_indifference.flames import select_prompts

    with pytest.raises(ValueError, match="invalid prompt limit 0"):
        select_prompts(pd.DataFrame({"prompt_id": [0, 1]}), 0)
