"""Snakemake adapter: train one SAE on pooled training-split representations."""

from pathlib import Path

from moral_indifference import steps
from moral_indifference.workflow import run_step

run_step(
    snakemake,
    lambda smk: steps.train_sae(
        activations_dir=Path(smk.input.index).parent,
        layer=int(smk.wildcards.layer),
        vectors_path=smk.input.vectors,
        config=smk.params.sae,
        out_dir=Path(smk.output.history).parent,
        device=smk.params.device,
    ),
)
