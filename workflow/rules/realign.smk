rule realign_sae:
    """Fine-tune the selected moral latents toward the ground truth; before/after table."""
    input:
        sae=rules.train_sae.output,
        features=rules.isolate_features.output.features,
        selected=rules.isolate_features.output.selected,
        activations=f"{RESULTS}/activations/{{model}}/layer_{{layer}}.npz",
        index=f"{RESULTS}/activations/{{model}}/index.parquet",
        vectors=rules.build_ground_truth.output.vectors,
        diagnosis=rules.build_ground_truth.output.diagnosis,
    output:
        [f"{RESULTS}/realign/{{model}}/layer_{{layer}}/{name}" for name in SAE_FILES],
        history=f"{RESULTS}/realign/{{model}}/layer_{{layer}}/training.json",
        readout=f"{RESULTS}/realign/{{model}}/layer_{{layer}}/readout.pt",
        before_after=f"{RESULTS}/realign/{{model}}/layer_{{layer}}/before_after.parquet",
    params:
        sae=config["sae"],
        realignment=config["realignment"],
        features=config["features"],
        indifference=config["indifference"],
        device=config["device"],
    log:
        f"{LOGS}/realign/{{model}}/layer_{{layer}}.log",
    threads: threads_of("realign")
    resources:
        **resources_of("realign"),
    conda:
        "../../envs/models.yaml"
    script:
        "../scripts/realign_sae.py"


rule realign:
    """Target: realigned SAEs and their before/after tables."""
    input:
        expand(
            f"{RESULTS}/realign/{SAE_MODEL}/layer_{{layer}}/before_after.parquet",
            layer=SAE_LAYERS,
        ),
