rule indifference_layer:
    """The four indifference measures of one model at one layer, for every pooling."""
    input:
        activations=f"{RESULTS}/activations/{{model}}/layer_{{layer}}.npz",
        index=f"{RESULTS}/activations/{{model}}/index.parquet",
        vectors=rules.build_ground_truth.output.vectors,
        diagnosis=rules.build_ground_truth.output.diagnosis,
    output:
        f"{RESULTS}/indifference/{{model}}/layer_{{layer}}.json",
    params:
        indifference=config["indifference"],
    log:
        f"{LOGS}/indifference/{{model}}/layer_{{layer}}.log",
    threads: threads_of("indifference")
    resources:
        **resources_of("indifference"),
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/indifference_layer.py"


rule indifference_model:
    """Per-model table over layers and the centre-cosine heatmap at the best layer."""
    input:
        lambda wc: expand(
            f"{RESULTS}/indifference/{wc.model}/layer_{{layer}}.json",
            layer=analysed_layers(wc.model),
        ),
    output:
        table=f"{RESULTS}/indifference/{{model}}/measures.parquet",
        heatmap=report(
            f"{RESULTS}/indifference/{{model}}/centre_cosine.png",
            caption="../report/centre_cosine.rst",
            category="Indifference",
            subcategory="{model}",
        ),
    log:
        f"{LOGS}/indifference/{{model}}/summary.log",
    threads: threads_of("report")
    resources:
        **resources_of("report"),
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/indifference_model.py"


rule indifference_summary:
    """Cross-model table and per-layer curves of every measure."""
    input:
        [f"{RESULTS}/indifference/{model}/measures.parquet" for model in MODEL_NAMES],
    output:
        table=f"{RESULTS}/indifference/summary.parquet",
        per_layer=f"{RESULTS}/indifference/all_layers.parquet",
        curves=report(
            directory(f"{RESULTS}/indifference/curves"),
            patterns=["{name}.png"],
            caption="../report/layer_curves.rst",
            category="Indifference",
        ),
    params:
        models=config["models"],
    log:
        f"{LOGS}/indifference/summary.log",
    threads: threads_of("report")
    resources:
        **resources_of("report"),
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/indifference_summary.py"


rule indifference:
    """Target: indifference tables and figures of every model."""
    input:
        rules.indifference_summary.output,
