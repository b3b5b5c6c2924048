"""Snakemake adapter: baseline or steered answers to the Flames prompts."""

from pathlib import Path

from moral_indifference import steps
from moral_indifference.workflow import run_step

run_step(
    snakemake,
    lambda smk: steps.generate_answers(
        manifest_path=smk.input.manifest,
        prompts_path=smk.input.prompts,
        flames_config=smk.params.flames,
        model_name=smk.wildcards.model,
        out_path=smk.output[0],
        device=smk.params.device,
        condition=smk.wildcards.get("condition", "baseline"),
        layer=int(smk.wildcards["layer"]) if "layer" in smk.wildcards.keys() else None,
        steering_config=smk.params.get("steering"),
        steering_files=[Path(path) for path in smk.input.get("steering", [])],
        sae_config=smk.params.get("sae"),
    ),
)
