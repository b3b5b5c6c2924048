"""Tests for answer generation and the JSON-lines record format on a tiny random Qwen3."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from tiny_models import load_tiny
import torch

from moral_indifference.generation import (
    GenerationConfig,
    generate_answers,
    prompt_seed,
    read_jsonl,
    render_prompt,
    write_jsonl,
)
from moral_indifference.steering import VectorSteerer

PROMPTS = pd.DataFrame(
    {
        "prompt_id": [0, 1, 2, 3],
        "dimension": ["Fairness", "Safety", "Morality", "Data protection"],
        "subcomponent": ["Bias", "Physical harm", "Ethics", "Privacy"],
        "prompt": [
            "帮助朋友是道德的吗？",
            "Is stealing from a store morally wrong?",
            "偷窃是不道德的。",
            "Please answer the question carefully and safely.",
        ],
    }
)
SETTINGS = {"sae_folder": "results/sae/tiny/layer_000"}


@pytest.fixture(scope="module")
def tiny(tiny_qwen3_dir):
    return load_tiny(tiny_qwen3_dir)


def run(tiny, config, **kwargs):
    model, tokenizer = tiny
    options = {"condition": "baseline", "model_name": "tiny-qwen3", "settings": SETTINGS}
    options.update(kwargs)
    return generate_answers(model, tokenizer, PROMPTS, config, **options)


def test_records_keep_prompt_and_settings(tiny):
    config = GenerationConfig(max_new_tokens=4, batch_size=2)
    records = run(tiny, config)
    assert [r["prompt_id"] for r in records] == [0, 1, 2, 3]
    assert records[3]["dimension"] == "Data protection"
    assert records[0]["prompt"] == "帮助朋友是道德的吗？"
    assert records[0]["model"] == "tiny-qwen3"
    assert records[0]["condition"] == "baseline"
    assert records[0]["layer"] is None
    assert records[0]["strength"] is None
    assert records[0]["generation"]["max_new_tokens"] == 4
    assert records[0]["generation"]["enable_thinking"] is False
    assert records[0]["settings"] == SETTINGS


def test_records_count_tokens(tiny):
    _, tokenizer = tiny
    config = GenerationConfig(max_new_tokens=4, batch_size=4)
    records = run(tiny, config)
    for record, prompt in zip(records, PROMPTS["prompt"], strict=True):
        text = render_prompt(tokenizer, prompt, config)
        assert record["n_prompt_tokens"] == len(tokenizer(text, add_special_tokens=False)["input_ids"])
        assert record["finish_reason"] in {"eos", "length"}
        assert 1 <= record["n_answer_tokens"] <= 4
        if record["finish_reason"] == "length":
            assert record["n_answer_tokens"] == 4


def test_padding_side_restored(tiny):
    _, tokenizer = tiny
    tokenizer.padding_side = "right"
    try:
        run(tiny, GenerationConfig(max_new_tokens=2, batch_size=4))
        assert tokenizer.padding_side == "right"
    finally:
        tokenizer.padding_side = "left"


def test_chinese_round_trip_byte_exact(tiny, tmp_path):
    records = run(tiny, GenerationConfig(max_new_tokens=3))
    path = tmp_path / "answers.jsonl"
    write_jsonl(records, path)
    assert read_jsonl(path) == records
    raw = path.read_bytes()
    assert "帮助朋友是道德的吗？".encode("utf-8") in raw
    assert b"\\u" not in raw


def test_read_jsonl_names_bad_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"a": 1}\n{not json}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        read_jsonl(path)


def test_template_disables_thinking(tiny):
    _, tokenizer = tiny
    text = render_prompt(tokenizer, "你好", GenerationConfig())
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert "You are a helpful assistant." in text


def test_template_thinking_left_to_template(tiny):
    _, tokenizer = tiny
    text = render_prompt(tokenizer, "你好", GenerationConfig(enable_thinking=None))
    assert "<think>" not in text


def test_raw_prompt_without_template(tiny):
    _, tokenizer = tiny
    assert render_prompt(tokenizer, "你好", GenerationConfig(chat_template=False)) == "你好"


def test_strength_zero_matches_baseline(tiny):
    config = GenerationConfig(max_new_tokens=6, batch_size=2)
    baseline = run(tiny, config)
    steered = run(
        tiny, config, condition="mean_difference",
        steerer=VectorSteerer(np.ones(64), strength=0.0), layer=0,
    )
    assert [r["answer"] for r in steered] == [r["answer"] for r in baseline]
    assert steered[0]["condition"] == "mean_difference"
    assert steered[0]["layer"] == 0
    assert steered[0]["strength"] == 0.0


def test_strong_steering_changes_answers(tiny):
    config = GenerationConfig(max_new_tokens=6, batch_size=4)
    baseline = run(tiny, config)
    steered = run(
        tiny, config, condition="mean_difference",
        steerer=VectorSteerer(np.linspace(-1, 1, 64), strength=50.0), layer=1,
    )
    assert [r["answer"] for r in steered] != [r["answer"] for r in baseline]


def test_batched_equals_unbatched(tiny):
    batched = run(tiny, GenerationConfig(max_new_tokens=8, batch_size=3))
    single = run(tiny, GenerationConfig(max_new_tokens=8, batch_size=1))
    assert [r["answer"] for r in batched] == [r["answer"] for r in single]
    assert [r["n_answer_tokens"] for r in batched] == [r["n_answer_tokens"] for r in single]


def test_sampling_repeatable_per_prompt(tiny):
    config = GenerationConfig(max_new_tokens=8, do_sample=True, temperature=1.0, top_p=1.0)
    first = run(tiny, config)
    second = generate_answers(
        tiny[0], tiny[1], PROMPTS.iloc[[2, 0]], config,
        condition="baseline", model_name="tiny-qwen3", settings=SETTINGS,
    )
    assert second[0]["answer"] == first[2]["answer"]
    assert second[1]["answer"] == first[0]["answer"]


def test_prompt_seed_values():
    assert prompt_seed(10, 5) == 15
    assert prompt_seed(0, "abc") == prompt_seed(0, "abc")
    assert prompt_seed(0, "abc") != prompt_seed(0, "abd")


def test_baseline_rejects_steerer(tiny):
    with pytest.raises(ValueError, match="takes no steerer"):
        run(tiny, GenerationConfig(max_new_tokens=1), steerer=VectorSteerer(np.ones(64)), layer=0)


def test_steered_needs_layer(tiny):
    with pytest.raises(ValueError, match="layer="):
        run(tiny, GenerationConfig(max_new_tokens=1), condition="original_sae",
            steerer=VectorSteerer(np.ones(64)))


def test_unknown_condition_rejected(tiny):
    with pytest.raises(KeyError, match="valid names"):
        run(tiny, GenerationConfig(max_new_tokens=1), condition="steered",
            steerer=VectorSteerer(np.ones(64)), layer=0)


def test_missing_columns_named(tiny):
    model, tokenizer = tiny
    with pytest.raises(KeyError, match="subcomponent"):
        generate_answers(
            model, tokenizer, PROMPTS.drop(columns="subcomponent"), GenerationConfig(),
            condition="baseline", model_name="tiny", settings={},
        )
