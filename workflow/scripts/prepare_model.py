"""Snakemake adapter: materialise one model and write its manifest."""

from moral_indifference import steps
from moral_indifference.workflow import run_step

run_step(
    snakemake,
    lambda smk: steps.prepare_model(
        smk.params.spec,
        smk.params.models,
        out_dir=smk.params.out_dir,
        results=smk.config["results"],
    ),
)
