# One extraction rule per model, because each model has its own number of layer files and
# a rule's output list cannot depend on a wildcard.
for _model in MODEL_NAMES:

    rule:
        """Pooled residual streams after every decoder block of one model, one file per layer."""
        name:
            f"extract_activations_{rule_suffix(_model)}"
        input:
            manifest=manifest(_model),
            vectors=f"{RESULTS}/ground_truth/moral_vectors.parquet",
        output:
            index=f"{RESULTS}/activations/{_model}/index.parquet",
            pooling=f"{RESULTS}/activations/{_model}/pooling.json",
            layers=[
                f"{RESULTS}/activations/{_model}/layer_{layer}.npz"
                for layer in all_layers(_model)
            ],
        params:
            activations=config["activations"],
            device=config["device"],
            model=_model,
        log:
            f"{LOGS}/activations/{_model}.log",
        threads: threads_of("activations", _model)
        resources:
            **resources_of("activations", _model),
        conda:
            "../../envs/models.yaml"
        script:
            "../scripts/extract_activations.py"


rule activations:
    """Target: activations of every model."""
    input:
        [f"{RESULTS}/activations/{model}/index.parquet" for model in MODEL_NAMES],
