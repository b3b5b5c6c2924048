"""Snakemake adapter: the four indifference measures of one model at one layer."""

from moral_indifference import steps
from moral_indifference.workflow import run_step

run_step(
    snakemake,
    lambda smk: steps.indifference_layer(
        activations_dir=smk.input.index.rsplit("/", 1)[0],
        layer=int(smk.wildcards.layer),
        vectors_path=smk.input.vectors,
        diagnosis_path=smk.input.diagnosis,
        config=smk.params.indifference,
        out_path=smk.output[0],
    ),
)
