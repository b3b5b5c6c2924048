"""Snakemake adapter: build the ground-truth tables."""

from moral_indifference import steps
from moral_indifference.workflow import run_step

run_step(
    snakemake,
    lambda smk: steps.build_ground_truth(
        smk.params.ground_truth,
        vectors_path=smk.output.vectors,
        diagnosis_path=smk.output.diagnosis,
        summary_path=smk.output.summary,
    ),
)
