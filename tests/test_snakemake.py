"""Whole-workflow tests: lint, a dry run of the paper grid on SLURM, and a smoke run.

The smoke run executes every rule of the DAG on the configuration in ``smoke.py``.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from smoke import REPO, run_snakemake, smoke_config
from tiny_models import build_tiny_qwen3


def test_lint_is_clean(tmp_path):
    result = run_snakemake("--lint", cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def test_paper_grid_dry_run_on_slurm(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "social-chem-101.v1.0.tsv").touch()
    (data / "Flames_1k_Chinese.jsonl").touch()
    result = run_snakemake(
        "-n",
        "--profile", str(REPO / "profiles" / "slurm"),
        "--configfile", str(REPO / "config" / "paper.yaml"),
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "indifference_layer" in output
    assert "extract_activations_qwen3_235b_a22b" in output


@pytest.mark.slow
def test_whole_dag_smoke_run(tmp_path):
    model_dir = build_tiny_qwen3(tmp_path / "tiny-qwen3")
    overlay = tmp_path / "smoke.yaml"
    overlay.write_text(yaml.safe_dump(smoke_config(tmp_path / "results", model_dir)), encoding="utf-8")
    result = run_snakemake("--cores", "2", "--configfile", str(overlay), cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]

    results = tmp_path / "results"
    summary = (results / "report" / "summary.md").read_text(encoding="utf-8")
    assert "## Indifference" in summary
    assert "## Flames: steered against baseline" in summary

    table = pd.read_parquet(results / "indifference" / "all_layers.parquet")
    assert set(table["model"]) == {"tiny", "tiny-random"}
    assert set(table["layer"]) == {0, 1}
    assert set(table["measure"]) == {"categorical", "gradient", "structural", "dimensional"}

    win_rates = pd.read_parquet(results / "flames" / "tiny" / "win_rates.parquet")
    assert set(win_rates["condition"]) == {"realigned_sae", "original_sae", "mean_difference"}
    assert (win_rates["n"] + win_rates["failures"] == 4).all()

    baseline = [json.loads(line) for line in (results / "flames" / "tiny" / "baseline.jsonl").open(encoding="utf-8")]
    prompt_ids = [record["prompt_id"] for record in baseline]
    assert len(prompt_ids) == 4
    assert prompt_ids == sorted(prompt_ids)

    records = list((results / "provenance").rglob("*.json"))
    rules = {json.loads(path.read_text(encoding="utf-8"))["rule"] for path in records}
    assert {"build_ground_truth", "prepare_model", "indifference_layer", "train_sae", "realign_sae",
            "generate_steered", "judge_pairwise", "score_rubric", "report"} <= rules
