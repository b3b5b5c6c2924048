"""Snakemake adapter: cross-model indifference table and per-layer curves."""

from moral_indifference import steps
from moral_indifference.workflow import run_step

run_step(
    snakemake,
    lambda smk: steps.indifference_summary(
        model_tables=list(smk.input),
        models=smk.params.models,
        table_path=smk.output.table,
        per_layer_path=smk.output.per_layer,
        curves_dir=smk.output.curves,
    ),
)
