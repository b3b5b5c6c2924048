"""Moral indifference in language models: the whole study as one DAG.

Targets: all (default), ground_truth, models, activations, indifference, sae, realign,
flames, report. The configuration is validated against config/schemas/config.schema.yaml.
"""

from snakemake.utils import min_version, validate

min_version("9.0")


# The embedded default, found from the Snakefile so that --directory runs elsewhere still
# read it; --configfile and --config values are merged over it.
configfile: f"{workflow.basedir}/config/config.yaml"


validate(config, "config/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    model="|".join(MODEL_NAMES),
    layer=r"\d{3}",
    condition="|".join(STEER_CONDITIONS),


include: "workflow/rules/ground_truth.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/indifference.smk"
include: "workflow/rules/sae.smk"
include: "workflow/rules/realign.smk"
include: "workflow/rules/flames.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        rules.report.output,
