"""Snakemake adapter: write the markdown results summary."""

from moral_indifference import reporting
from moral_indifference.workflow import run_step

run_step(
    snakemake,
    lambda smk: reporting.write_summary(
        inputs={key: value for key, value in smk.input.items()},
        config=smk.params.config,
        out_path=smk.output[0],
    ),
)
