"""Snakemake adapter: pairwise judging of baseline against steered answers."""

from moral_indifference import steps
from moral_indifference.workflow import run_step

run_step(
    snakemake,
    lambda smk: steps.judge_pairwise(
        baseline_path=smk.input.baseline[0],
        steered_path=smk.input.steered[0],
        judge_config=smk.params.judge,
        results=smk.config["results"],
        device=smk.params.device,
        judgements_path=smk.output.judgements,
        summary_path=smk.output.summary,
    ),
)
