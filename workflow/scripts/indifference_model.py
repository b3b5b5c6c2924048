"""Snakemake adapter: one model's indifference table and best-layer heatmap."""

from moral_indifference import steps
from moral_indifference.workflow import run_step

run_step(
    snakemake,
    lambda smk: steps.indifference_model(
        layer_paths=list(smk.input),
        model=smk.wildcards.model,
        table_path=smk.output.table,
        heatmap_path=smk.output.heatmap,
    ),
)
