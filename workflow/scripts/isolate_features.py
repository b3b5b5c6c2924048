"""Snakemake adapter: classify the latents of one SAE against the moral vectors."""

from pathlib import Path

from moral_indifference import steps
from moral_indifference.workflow import run_step

run_step(
    snakemake,
    lambda smk: steps.isolate_features(
        sae_dir=Path(smk.output.features).parent,
        activations_dir=Path(smk.input.index).parent,
        layer=int(smk.wildcards.layer),
        vectors_path=smk.input.vectors,
        sae_config=smk.params.sae,
        feature_config=smk.params.features,
        features_path=smk.output.features,
        selected_path=smk.output.selected,
        summary_path=smk.output.summary,
    ),
)
