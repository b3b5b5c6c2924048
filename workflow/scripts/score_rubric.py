"""Snakemake adapter: absolute rubric scores of one answers file."""

from moral_indifference import steps
from moral_indifference.workflow import run_step

run_step(
    snakemake,
    lambda smk: steps.score_rubric(
        answers_path=smk.input.answers,
        judge_config=smk.params.judge,
        results=smk.config["results"],
        device=smk.params.device,
        out_path=smk.output[0],
    ),
)
