"""Snakemake adapter: realign the moral latents of one SAE and compare before/after."""

from pathlib import Path

from moral_indifference import steps
from moral_indifference.workflow import run_step

run_step(
    snakemake,
    lambda smk: steps.realign_sae(
        sae_dir=Path(smk.input.features).parent,
        features_path=smk.input.features,
        selected_path=smk.input.selected,
        activations_dir=Path(smk.input.index).parent,
        layer=int(smk.wildcards.layer),
        vectors_path=smk.input.vectors,
        diagnosis_path=smk.input.diagnosis,
        params=dict(smk.params.items()),
        out_dir=Path(smk.output.history).parent,
        before_after_path=smk.output.before_after,
    ),
)
