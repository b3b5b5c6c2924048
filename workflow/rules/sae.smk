rule train_sae:
    """One SAE on the pooled training-split representations of one layer."""
    input:
        activations=f"{RESULTS}/activations/{{model}}/layer_{{layer}}.npz",
        index=f"{RESULTS}/activations/{{model}}/index.parquet",
        vectors=rules.build_ground_truth.output.vectors,
    output:
        [f"{RESULTS}/sae/{{model}}/layer_{{layer}}/{name}" for name in SAE_FILES],
        history=f"{RESULTS}/sae/{{model}}/layer_{{layer}}/training.json",
    params:
        sae=config["sae"],
        device=config["device"],
    log:
        f"{LOGS}/sae/{{model}}/layer_{{layer}}.log",
    threads: threads_of("sae")
    resources:
        **resources_of("sae"),
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/train_sae.py"


rule isolate_features:
    """Classify every latent against the moral vectors of the validation split."""
    input:
        sae=rules.train_sae.output,
        activations=f"{RESULTS}/activations/{{model}}/layer_{{layer}}.npz",
        index=f"{RESULTS}/activations/{{model}}/index.parquet",
        vectors=rules.build_ground_truth.output.vectors,
    output:
        features=f"{RESULTS}/sae/{{model}}/layer_{{layer}}/features.parquet",
        selected=f"{RESULTS}/sae/{{model}}/layer_{{layer}}/selected_latents.json",
        summary=f"{RESULTS}/sae/{{model}}/layer_{{layer}}/features_summary.json",
    params:
        sae=config["sae"],
        features=config["features"],
    log:
        f"{LOGS}/sae/{{model}}/layer_{{layer}}.features.log",
    threads: threads_of("sae")
    resources:
        **resources_of("sae"),
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/isolate_features.py"


rule sae:
    """Target: the SAEs of the target model and their feature tables."""
    input:
        expand(
            f"{RESULTS}/sae/{SAE_MODEL}/layer_{{layer}}/features.parquet", layer=SAE_LAYERS
        ),
