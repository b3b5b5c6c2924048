"""Snakemake adapter: win rates and rubric scores of every condition and layer."""

from moral_indifference import steps
from moral_indifference.workflow import run_step

run_step(
    snakemake,
    lambda smk: steps.summarise_flames(
        pairwise_paths=list(smk.input.pairwise),
        rubric_paths=list(smk.input.rubrics),
        win_rates_path=smk.output.win_rates,
        rubric_path=smk.output.rubric,
    ),
)
