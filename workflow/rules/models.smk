rule prepare_model:
    """Materialise one model of the table as a plain Hugging Face folder with a manifest."""
    input:
        model_inputs,
    output:
        manifest=f"{RESULTS}/models/{{model}}/manifest.json",
    params:
        spec=lambda wc: MODELS[wc.model],
        models=config["models"],
        out_dir=lambda wc: f"{RESULTS}/models/{wc.model}",
    log:
        f"{LOGS}/models/{{model}}.log",
    threads: threads_of("models")
    resources:
        **resources_of("models"),
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/prepare_model.py"


rule models:
    """Target: every model of the table, prepared."""
    input:
        [manifest(model) for model in MODEL_NAMES],
