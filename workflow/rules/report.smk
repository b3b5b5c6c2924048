rule report:
    """The results summary: the headline table of every stage and the figures."""
    input:
        ground_truth=rules.build_ground_truth.output.summary,
        indifference=rules.indifference_summary.output.table,
        per_layer=rules.indifference_summary.output.per_layer,
        curves=rules.indifference_summary.output.curves,
        heatmaps=[f"{RESULTS}/indifference/{model}/centre_cosine.png" for model in MODEL_NAMES],
        features=expand(
            f"{RESULTS}/sae/{SAE_MODEL}/layer_{{layer}}/features_summary.json", layer=SAE_LAYERS
        ),
        sae_history=expand(
            f"{RESULTS}/sae/{SAE_MODEL}/layer_{{layer}}/training.json", layer=SAE_LAYERS
        ),
        before_after=expand(
            f"{RESULTS}/realign/{SAE_MODEL}/layer_{{layer}}/before_after.parquet",
            layer=SAE_LAYERS,
        ),
        win_rates=rules.summarise_flames.output.win_rates,
        rubric=rules.summarise_flames.output.rubric,
    output:
        report(
            f"{RESULTS}/report/summary.md",
            caption="../report/summary.rst",
            category="Summary",
        ),
    params:
        config=config,
    log:
        f"{LOGS}/report.log",
    threads: threads_of("report")
    resources:
        **resources_of("report"),
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/write_report.py"

