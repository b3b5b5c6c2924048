rule generate_baseline:
    """Unsteered answers to the Flames prompts."""
    input:
        manifest=f"{RESULTS}/models/{{model}}/manifest.json",
        prompts=config["flames"]["prompts"],
    output:
        f"{RESULTS}/flames/{{model}}/baseline.jsonl",
    params:
        flames=config["flames"],
        device=config["device"],
    log:
        f"{LOGS}/flames/{{model}}/baseline.log",
    threads: threads_of("generation")
    resources:
        **resources_of("generation"),
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/generate_answers.py"


rule generate_steered:
    """Steered answers with the same decoding settings and seeds as the baseline."""
    input:
        manifest=f"{RESULTS}/models/{{model}}/manifest.json",
        prompts=config["flames"]["prompts"],
        steering=steering_inputs,
    output:
        f"{RESULTS}/flames/{{model}}/layer_{{layer}}/{{condition}}.jsonl",
    params:
        flames=config["flames"],
        steering=config["steering"],
        sae=config["sae"],
        device=config["device"],
    log:
        f"{LOGS}/flames/{{model}}/layer_{{layer}}/{{condition}}.log",
    threads: threads_of("generation")
    resources:
        **resources_of("generation"),
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/generate_answers.py"


rule judge_pairwise:
    """Pairwise verdicts in both orders and the win rate of steered over baseline."""
    input:
        baseline=rules.generate_baseline.output,
        steered=rules.generate_steered.output,
        judge=judge_inputs,
    output:
        judgements=f"{RESULTS}/flames/{{model}}/layer_{{layer}}/{{condition}}.judgements.jsonl",
        summary=f"{RESULTS}/flames/{{model}}/layer_{{layer}}/{{condition}}.pairwise.json",
    params:
        judge=config["judge"],
        device=config["device"],
    log:
        f"{LOGS}/flames/{{model}}/layer_{{layer}}/{{condition}}.judge.log",
    threads: threads_of("judging")
    resources:
        **resources_of("judging"),
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/judge_pairwise.py"


rule score_rubric:
    """Absolute 1-3 rubric scores of one answers file, per Flames dimension."""
    input:
        answers=f"{RESULTS}/flames/{{model}}/{{answers}}.jsonl",
        judge=judge_inputs,
    output:
        f"{RESULTS}/flames/{{model}}/{{answers}}.rubric.jsonl",
    wildcard_constraints:
        answers=r"baseline|layer_\d{3}/[a-z_]+",
    params:
        judge=config["judge"],
        device=config["device"],
    log:
        f"{LOGS}/flames/{{model}}/{{answers}}.rubric.log",
    threads: threads_of("judging")
    resources:
        **resources_of("judging"),
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/score_rubric.py"


rule summarise_flames:
    """Win rates and rubric scores of every steering condition and layer."""
    input:
        pairwise=expand(
            f"{FLAMES}/layer_{{layer}}/{{condition}}.pairwise.json",
            layer=STEER_LAYERS,
            condition=STEER_CONDITIONS,
        ),
        rubrics=[f"{FLAMES}/baseline.rubric.jsonl"]
        + expand(
            f"{FLAMES}/layer_{{layer}}/{{condition}}.rubric.jsonl",
            layer=STEER_LAYERS,
            condition=STEER_CONDITIONS,
        ),
    output:
        win_rates=f"{FLAMES}/win_rates.parquet",
        rubric=f"{FLAMES}/rubric_scores.parquet",
    log:
        f"{LOGS}/flames/summary.log",
    threads: threads_of("report")
    resources:
        **resources_of("report"),
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/summarise_flames.py"


rule flames:
    """Target: Flames generations, judgements and their summary."""
    input:
        rules.summarise_flames.output,
