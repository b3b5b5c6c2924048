"""The smoke configuration shared by the whole-workflow tests, and a Snakemake runner.

The smoke configuration runs every rule of the DAG on two tiny random Qwen3 models (a
local folder and its random-init control), the demo ground truth and four demo prompts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
DEMO_PROMPTS = REPO / "resources" / "demo" / "flames.demo.jsonl"


def snakemake_command(*args: str, cwd: Path) -> list[str]:
    """Return the command line that runs the repository's Snakefile in ``cwd``."""
    return [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(cwd), *args]


def run_snakemake(
    *args: str, cwd: Path, timeout: int = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile in ``cwd`` and capture its output."""
    return subprocess.run(
        snakemake_command(*args, cwd=cwd),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def smoke_config(results: str | Path, model_dir: str | Path, prompts: str | Path = DEMO_PROMPTS) -> dict:
    """Return a config overlay for the smoke DAG. Relative paths resolve in the run folder."""
    tiny = {
        "n_layers": 2,
        "d_model": 64,
        "family": "qwen3",
        "params_b": 0.0001,
        "active_params_b": None,
        "architecture": "dense",
    }
    return {
        "results": str(results),
        "device": "cpu",
        "ground_truth": {"path": str(REPO / "resources" / "demo" / "social-chem-101.demo.tsv")},
        "models": [
            {"name": "tiny", "source": {"kind": "local", "path": str(model_dir)}, "group": "instruct", **tiny},
            {"name": "tiny-random", "source": {"kind": "random_init", "like": "tiny", "seed": 1}, "group": "control", **tiny},
        ],
        "sae": {
            "model": "tiny",
            "layers": [1],
            "training": {"expansion_factor": 2, "batch_size": 64, "epochs": 2, "target_l0": 8},
        },
        "realignment": {"epochs": 2, "batch_size": 64},
        "steering": {"model": "tiny", "layers": [1]},
        "flames": {
            "prompts": str(prompts),
            "max_prompts": 4,
            "generation": {"max_new_tokens": 4, "batch_size": 4},
        },
        "judge": {"model": "tiny", "max_new_tokens": 3, "max_retries": 1, "n_boot": 50},
    }
