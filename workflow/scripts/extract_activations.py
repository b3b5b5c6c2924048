"""Snakemake adapter: pooled residual streams of one model, one file per layer."""

from pathlib import Path

from moral_indifference import steps
from moral_indifference.workflow import run_step

run_step(
    snakemake,
    lambda smk: steps.extract_activations(
        manifest_path=smk.input.manifest,
        vectors_path=smk.input.vectors,
        out_dir=Path(smk.output.index).parent,
        config=smk.params.activations,
        device=smk.params.device,
    ),
)
