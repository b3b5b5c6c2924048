"""Tests for poolings, activation extraction on a tiny Qwen3, and the activation files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_models import build_tiny_qwen3

from moral_indifference.activations import (
    POOLINGS,
    ActivationConfig,
    extract_activations,
    get_pooling,
    layer_file_name,
    load_layer,
    pool_batch,
    unique_texts,
    write_activations,
)
from moral_indifference.models import load_model

# Two rows of four tokens with two dimensions. The masks below mark the real tokens.
HIDDEN = torch.tensor(
    [
        [[1.0, 0.0], [2.0, 2.0], [3.0, 4.0], [40.0, 0.0]],
        [[0.0, 1.0], [6.0, 2.0], [2.0, 0.0], [4.0, 4.0]],
    ]
)
RIGHT_MASK = torch.tensor([[True, True, True, False], [True, True, False, False]])
LEFT_MASK = torch.tensor([[False, True, True, True], [False, False, True, True]])
PARAMS = {"norm_filter_factor": 1.5}

# Hand-computed (pooled vectors, used-token counts) per mask and pooling.
# Norm filter, right mask: row 0 norms 1, 2.83, 5 (median 2.83, limit 4.24) drop token 2.
# Row 1 norms 1, 6.32 (median 3.66, limit 5.49) drop token 1.
# Norm filter, left mask: row 0 norms 2.83, 5, 40 (median 5, limit 7.5) drop token 3.
# Row 1 norms 2, 5.66 (interpolated median 3.83, limit 5.74) keep both.
EXPECTED = {
    "right": {
        "mean": ([[2.0, 2.0], [3.0, 1.5]], [3, 2]),
        "last": ([[3.0, 4.0], [6.0, 2.0]], [1, 1]),
        "mean_skip_first": ([[2.5, 3.0], [6.0, 2.0]], [2, 1]),
        "mean_norm_filtered": ([[1.5, 1.0], [0.0, 1.0]], [2, 1]),
    },
    "left": {
        "mean": ([[15.0, 2.0], [3.0, 2.0]], [3, 2]),
        "last": ([[40.0, 0.0], [4.0, 4.0]], [1, 1]),
        "mean_skip_first": ([[21.5, 2.0], [4.0, 4.0]], [2, 1]),
        "mean_norm_filtered": ([[2.5, 3.0], [3.0, 2.0]], [2, 2]),
    },
}
MASKS = {"right": RIGHT_MASK, "left": LEFT_MASK}

ACTIONS = [
    "Helping a friend move",
    "Stealing from a store when nobody is looking and then lying about it",
    "Lying",
    "Keeping a promise to your parents",
    "Cheating on a test",
]


def texts_table() -> pd.DataFrame:
    return pd.DataFrame({"id": [f"socialchem_{i:06d}" for i in range(len(ACTIONS))], "action": ACTIONS})


@pytest.fixture(scope="module")
def right_padding_dir(tmp_path_factory):
    return build_tiny_qwen3(tmp_path_factory.mktemp("tiny-right"), padding_side="right")


@pytest.fixture(scope="module", params=["left", "right"])
def model_and_tokenizer(request, tiny_qwen3_dir, right_padding_dir):
    path = tiny_qwen3_dir if request.param == "left" else right_padding_dir
    model, tokenizer = load_model(path)
    assert tokenizer.padding_side == request.param
    return model, tokenizer


# ---------------------------------------------------------------------------
# Poolings on hand-built tensors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["right", "left"])
@pytest.mark.parametrize("name", list(POOLINGS))
def test_pooling_hand_values(name, padding):
    expected_vectors, expected_counts = EXPECTED[padding][name]
    pooled, used = POOLINGS[name](HIDDEN, MASKS[padding], PARAMS)
    torch.testing.assert_close(pooled, torch.tensor(expected_vectors))
    assert used.sum(dim=1).tolist() == expected_counts


@pytest.mark.parametrize("name", list(POOLINGS))
def test_pooling_ignores_padding(name):
    _, used = POOLINGS[name](HIDDEN, LEFT_MASK, PARAMS)
    assert not (used & ~LEFT_MASK).any()


def test_skip_first_single_token():
    mask = torch.tensor([[False, False, False, True], [True, True, True, True]])
    pooled, used = POOLINGS["mean_skip_first"](HIDDEN, mask, PARAMS)
    torch.testing.assert_close(pooled[0], torch.tensor([40.0, 0.0]))
    assert used[0].tolist() == [False, False, False, True]


def test_norm_filter_drops_sink():
    hidden = torch.tensor([[[24000.0, 0.0], [150.0, 0.0], [0.0, 150.0], [150.0, 150.0]]])
    mask = torch.ones(1, 4, dtype=torch.bool)
    pooled, used = POOLINGS["mean_norm_filtered"](hidden, mask, {"norm_filter_factor": 10.0})
    assert used[0].tolist() == [False, True, True, True]
    torch.testing.assert_close(pooled[0], torch.tensor([100.0, 100.0]))


def test_get_pooling_unknown_lists_names():
    with pytest.raises(KeyError, match="valid names: mean, last, mean_skip_first, mean_norm_filtered"):
        get_pooling("max")


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


def test_config_unknown_pooling():
    with pytest.raises(KeyError, match="unknown pooling 'max'"):
        ActivationConfig(poolings=("mean", "max"))


def test_config_template_placeholder():
    with pytest.raises(ValueError, match="no {action} placeholder"):
        ActivationConfig(template="is morally")


def test_config_from_dict_list_poolings():
    config = ActivationConfig(**{"poolings": ["mean", "last"], "batch_size": 4})
    assert config.poolings == ("mean", "last")


def test_config_invalid_padding_side():
    with pytest.raises(ValueError, match="invalid padding_side 'middle'"):
        ActivationConfig(padding_side="middle")


# ---------------------------------------------------------------------------
# unique_texts
# ---------------------------------------------------------------------------


def test_unique_texts_dedupes_in_order():
    vectors = pd.DataFrame(
        {
            "id": ["b", "a", "b", "c", "a"],
            "action": ["B", "A", "B", "C", "A"],
            "target_dimension": ["care-harm"] * 5,
        }
    )
    texts = unique_texts(vectors)
    assert texts["id"].tolist() == ["b", "a", "c"]
    assert texts["action"].tolist() == ["B", "A", "C"]
    assert list(texts.columns) == ["id", "action"]


def test_unique_texts_conflicting_action():
    vectors = pd.DataFrame({"id": ["a", "a"], "action": ["A", "other"]})
    with pytest.raises(ValueError, match="more than one action, e.g. 'a'"):
        unique_texts(vectors)


# ---------------------------------------------------------------------------
# Extraction on the tiny model
# ---------------------------------------------------------------------------


def test_pool_batch_matches_single(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    config = ActivationConfig()
    texts = [config.template.format(action=action) for action in ACTIONS[:3]]
    _, batched = pool_batch(model, tokenizer, texts, config)
    for row, text in enumerate(texts):
        _, single = pool_batch(model, tokenizer, [text], config)
        for layer in single:
            for key in single[layer]:
                torch.testing.assert_close(
                    batched[layer][key][row], single[layer][key][0], atol=1e-5, rtol=0,
                    msg=f"layer {layer}, {key}, row {row}",
                )


def test_pool_batch_padding_side_override(tiny_qwen3_dir):
    model, tokenizer = load_model(tiny_qwen3_dir)
    texts = ["Lying is morally", "Keeping a promise to your parents is morally"]
    _, left = pool_batch(model, tokenizer, texts, ActivationConfig())
    _, right = pool_batch(model, tokenizer, texts, ActivationConfig(padding_side="right"))
    torch.testing.assert_close(left[1]["last"], right[1]["last"], atol=1e-5, rtol=0)


def test_extract_batch_sizes_agree(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    _, batched = extract_activations(model, tokenizer, texts_table(), ActivationConfig(batch_size=3))
    _, single = extract_activations(model, tokenizer, texts_table(), ActivationConfig(batch_size=1))
    for layer in single:
        for key in single[layer]:
            np.testing.assert_allclose(
                batched[layer][key].astype(np.float32),
                single[layer][key].astype(np.float32),
                rtol=1e-3,
                atol=1e-3,
                err_msg=f"layer {layer}, {key}",
            )


def test_extract_keeps_input_order(tiny_qwen3_dir):
    model, tokenizer = load_model(tiny_qwen3_dir)
    config = ActivationConfig(batch_size=2)
    _, layers = extract_activations(model, tokenizer, texts_table(), config)
    for row, action in enumerate(ACTIONS):
        _, single = pool_batch(model, tokenizer, [config.template.format(action=action)], config)
        np.testing.assert_allclose(
            layers[1]["last"][row].astype(np.float32),
            single[1]["last"][0].numpy(),
            rtol=1e-3,
            atol=1e-3,
            err_msg=f"row {row}",
        )


def test_extract_layer_count(tiny_qwen3_dir):
    model, tokenizer = load_model(tiny_qwen3_dir)
    _, layers = extract_activations(model, tokenizer, texts_table(), ActivationConfig())
    assert sorted(layers) == [0, 1]


def test_extract_layers_are_block_outputs(tiny_qwen3_dir):
    model, tokenizer = load_model(tiny_qwen3_dir)
    config = ActivationConfig(poolings=("last",))
    text = "Lying is morally"
    _, pooled = pool_batch(model, tokenizer, [text], config)
    with torch.inference_mode():
        outputs = model(**tokenizer([text], return_tensors="pt"), output_hidden_states=True)
    assert len(outputs.hidden_states) == 3
    # Block 0's output is hidden_states[1]. The last entry is the final norm's output,
    # which is why extraction hooks the blocks instead.
    torch.testing.assert_close(pooled[0]["last"][0], outputs.hidden_states[1][0, -1], atol=1e-5, rtol=0)
    final_norm = model.model.norm(pooled[1]["last"][0])
    torch.testing.assert_close(final_norm, outputs.hidden_states[2][0, -1], atol=1e-4, rtol=1e-4)


def test_extract_index_table(tiny_qwen3_dir):
    model, tokenizer = load_model(tiny_qwen3_dir)
    texts = texts_table()
    index_df, _ = extract_activations(model, tokenizer, texts, ActivationConfig(batch_size=2))
    expected_tokens = [len(tokenizer(f"{action} is morally")["input_ids"]) for action in ACTIONS]
    assert index_df["position"].tolist() == list(range(len(ACTIONS)))
    assert index_df["id"].tolist() == texts["id"].tolist()
    assert index_df["n_tokens"].tolist() == expected_tokens
    assert index_df["n_tokens"].dtype == np.int64


def test_extract_counts_recorded(tiny_qwen3_dir):
    model, tokenizer = load_model(tiny_qwen3_dir)
    index_df, layers = extract_activations(model, tokenizer, texts_table(), ActivationConfig(batch_size=2))
    n_tokens = index_df["n_tokens"].to_numpy()
    counts = layers[1]
    assert counts["mean__n_tokens"].tolist() == n_tokens.tolist()
    assert counts["last__n_tokens"].tolist() == [1] * len(ACTIONS)
    assert counts["mean_skip_first__n_tokens"].tolist() == (n_tokens - 1).tolist()
    assert counts["mean__n_tokens"].dtype == np.int32


def test_extract_stores_float16(tiny_qwen3_dir):
    model, tokenizer = load_model(tiny_qwen3_dir)
    _, layers = extract_activations(model, tokenizer, texts_table(), ActivationConfig())
    assert layers[0]["mean"].dtype == np.float16
    assert layers[0]["mean"].shape == (len(ACTIONS), 64)


def test_extract_dtype_mismatch(tiny_qwen3_dir):
    model, tokenizer = load_model(tiny_qwen3_dir)
    with pytest.raises(ValueError, match="loaded as float32, but the activation config expects bfloat16"):
        extract_activations(model, tokenizer, texts_table(), ActivationConfig(dtype="bfloat16"))


def test_extract_duplicate_ids(tiny_qwen3_dir):
    model, tokenizer = load_model(tiny_qwen3_dir)
    texts = pd.DataFrame({"id": ["a", "a"], "action": ["Lying", "Lying"]})
    with pytest.raises(ValueError, match="duplicate ids"):
        extract_activations(model, tokenizer, texts, ActivationConfig())


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def written(tiny_qwen3_dir, tmp_path_factory):
    model, tokenizer = load_model(tiny_qwen3_dir)
    config = ActivationConfig(batch_size=2)
    index_df, layers = extract_activations(model, tokenizer, texts_table(), config)
    out_dir = tmp_path_factory.mktemp("activations")
    write_activations(out_dir, index_df, layers, config)
    return out_dir, index_df, layers


def test_write_file_names(written):
    out_dir, _, _ = written
    names = sorted(path.name for path in out_dir.iterdir())
    assert names == ["index.parquet", "layer_000.npz", "layer_001.npz", "pooling.json"]


def test_load_layer_round_trip(written):
    out_dir, index_df, layers = written
    loaded_index, vectors = load_layer(out_dir, 1)
    pd.testing.assert_frame_equal(loaded_index, index_df)
    assert sorted(vectors) == sorted(ActivationConfig().poolings)
    for name, values in vectors.items():
        assert values.dtype == np.float32, name
        np.testing.assert_array_equal(values, layers[1][name].astype(np.float32), err_msg=name)


def test_npz_keeps_counts(written):
    out_dir, _, layers = written
    with np.load(out_dir / layer_file_name(0)) as data:
        assert data["last__n_tokens"].dtype == np.int32
        np.testing.assert_array_equal(data["mean__n_tokens"], layers[0]["mean__n_tokens"])


def test_load_layer_reads_only_its_file(written, tmp_path):
    out_dir, _, _ = written
    for name in ("index.parquet", "layer_001.npz", "pooling.json"):
        (tmp_path / name).write_bytes((out_dir / name).read_bytes())
    index_df, vectors = load_layer(tmp_path, 1)
    assert len(index_df) == len(ACTIONS)
    assert vectors["mean"].shape == (len(ACTIONS), 64)


def test_load_layer_missing_lists_available(written):
    out_dir, _, _ = written
    with pytest.raises(FileNotFoundError, match="available layer files: layer_000.npz, layer_001.npz"):
        load_layer(out_dir, 5)


def test_pooling_json_describes_params(written):
    out_dir, _, _ = written
    description = json.loads((out_dir / "pooling.json").read_text(encoding="utf-8"))
    assert list(description) == list(ActivationConfig().poolings)
    assert description["mean_norm_filtered"]["params"] == {"norm_filter_factor": 10.0}
    assert description["mean"]["extraction"]["template"] == "{action} is morally"
    assert description["last"]["description"].startswith("Take the last real token")


def test_write_rejects_row_mismatch(written, tmp_path):
    _, index_df, layers = written
    with pytest.raises(ValueError, match="has 5 rows but the index has 4"):
        write_activations(tmp_path, index_df.iloc[:4], layers, ActivationConfig())
