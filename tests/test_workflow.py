"""Tests of the Snakemake glue: cross-key config checks and the step runner."""

from __future__ import annotations

import copy
import re
import json
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
import torch
import yaml

from moral_indifference.workflow import ConfigError, check_config, resolve_device, rule_resources, run_step

REPO = Path(__file__).resolve().parents[1]


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture()
def config() -> dict:
    return load_yaml(REPO / "config" / "config.yaml")


def test_default_config_matches_schema(config):
    schema = load_yaml(REPO / "config" / "schemas" / "config.schema.yaml")
    jsonschema.validate(config, schema)


def test_paper_config_matches_schema(config):
    schema = load_yaml(REPO / "config" / "schemas" / "config.schema.yaml")
    merged = copy.deepcopy(config)
    for key, value in load_yaml(REPO / "config" / "paper.yaml").items():
        if isinstance(value, dict):
            merged[key].update(value)
        else:
            merged[key] = value
    jsonschema.validate(merged, schema)
    check_config(merged)


def test_paper_grid_has_23_models():
    models = load_yaml(REPO / "config" / "paper.yaml")["models"]
    groups = [entry["group"] for entry in models]
    assert len(models) == 23
    assert groups.count("base") == 7
    assert groups.count("instruct") == 10
    assert groups.count("guard") == 6


def test_schema_rejects_unknown_key(config):
    schema = load_yaml(REPO / "config" / "schemas" / "config.schema.yaml")
    config["sae"]["layer"] = 3
    with pytest.raises(jsonschema.ValidationError, match="layer"):
        jsonschema.validate(config, schema)


def test_default_config_passes_checks(config):
    check_config(config)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["sae"].update(model="nope"), "sae.model = 'nope' is not in the models table"),
        (lambda c: c["sae"].update(layers=[99]), "sae.layers [99] do not exist"),
        (lambda c: c["steering"].update(layers=[3]), "steering.layers [3] have no SAE"),
        (lambda c: c["steering"].update(model="smollm2-135m-random"), "must equal sae.model"),
        (lambda c: c["judge"].update(model="gpt-judge"), "judge.model = 'gpt-judge'"),
        (lambda c: c["judge"].update(backend="openai"), "needs judge.base_url"),
        (lambda c: c["indifference"].update(poolings=["max"]), "indifference.poolings ['max']"),
        (lambda c: c["ground_truth"]["split"].update(train=0.9), "sum to 1.1"),
        (lambda c: c["models"][1]["source"].update(like="ghost"), "source.like = 'ghost'"),
        (lambda c: c["models"].append(dict(c["models"][0])), "duplicate names"),
    ],
)
def test_check_config_rejects(config, change, message):
    change(config)
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_config(config)


def fake_snakemake(tmp_path: Path, outputs: list[Path]) -> SimpleNamespace:
    named = lambda **items: SimpleNamespace(items=lambda: items.items())  # noqa: E731
    return SimpleNamespace(
        log=[str(tmp_path / "logs" / "step.log")],
        rule="demo_rule",
        wildcards=named(model="tiny", layer="001"),
        params=named(alpha=1),
        input=[],
        output=[str(path) for path in outputs],
        config={"results": str(tmp_path / "results")},
        threads=1,
    )


def test_run_step_writes_provenance(tmp_path):
    output = tmp_path / "out.txt"
    smk = fake_snakemake(tmp_path, [output])
    run_step(smk, lambda s: output.write_text("done", encoding="utf-8"))
    record_path = tmp_path / "results" / "provenance" / "demo_rule" / "model-tiny_layer-001.json"
    record = json.loads(record_path.read_text(encoding="utf-8"))
    assert record["rule"] == "demo_rule"
    assert record["params"] == {"alpha": 1}
    assert record["outputs"][str(output)]["bytes"] == 4
    assert "torch" in record["packages"]


def test_run_step_removes_partial_outputs(tmp_path):
    output = tmp_path / "partial.txt"
    smk = fake_snakemake(tmp_path, [output])

    def failing(_):
        output.write_text("half", encoding="utf-8")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_step(smk, failing)
    assert not output.exists()
    assert "boom" in (tmp_path / "logs" / "step.log").read_text(encoding="utf-8")


def test_rule_resources_precedence(config):
    config["resources"] = {
        "default": {"mem_mb": 1000, "runtime": 10, "gpu": 0, "cpus_per_task": 1, "slurm_partition": "cpu"},
        "activations": {"mem_mb": 8000, "gpu": 1},
    }
    config["models"][0]["resources"] = {"gpu": 2, "gres": "gpu:a100:2"}
    name = config["models"][0]["name"]
    assert rule_resources(config, "activations", name, environ={}) == {
        "mem_mb": 8000, "runtime": 10, "cpus_per_task": 1, "gpu": 2, "gres": "gpu:a100:2",
        "slurm_partition": "cpu",
    }
    assert rule_resources(config, "report", environ={}) == {
        "mem_mb": 1000, "runtime": 10, "cpus_per_task": 1, "gpu": 0, "slurm_partition": "cpu",
    }


def test_rule_resources_environment_fallback(config):
    environ = {"SBATCH_ACCOUNT": "moral-lab", "SBATCH_PARTITION": "a100"}
    resources = rule_resources(config, "sae", environ=environ)
    assert resources["slurm_account"] == "moral-lab"
    assert resources["slurm_partition"] == "a100"
    config["resources"]["sae"]["slurm_partition"] = "h100"
    assert rule_resources(config, "sae", environ=environ)["slurm_partition"] == "h100"
    assert "slurm_account" not in rule_resources(config, "sae", environ={})


def test_rule_resources_reject_an_unknown_model(config):
    with pytest.raises(ConfigError, match="valid names: smollm2-135m-instruct"):
        rule_resources(config, "models", "qwen3-8b", environ={})


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_resolve_device_warns_when_slurm_gpus_go_unused(monkeypatch, caplog):
    monkeypatch.setenv("SLURM_GPUS_ON_NODE", "1")
    with caplog.at_level("WARNING", logger="moral_indifference"):
        device = resolve_device("auto")
    assert device == "cpu"
    assert "SLURM gave this job 1 GPU(s)" in caplog.text


def test_resolve_device_keeps_an_explicit_device(monkeypatch):
    monkeypatch.setenv("SLURM_GPUS_ON_NODE", "1")
    assert resolve_device("cuda:1") == "cuda:1"
