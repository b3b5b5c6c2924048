rule build_ground_truth:
    """Build moral vectors, the annotation-level split and the diagnosis sample."""
    input:
        config["ground_truth"]["path"],
    output:
        vectors=f"{RESULTS}/ground_truth/moral_vectors.parquet",
        diagnosis=f"{RESULTS}/ground_truth/diagnosis_sample.parquet",
        summary=f"{RESULTS}/ground_truth/summary.json",
    params:
        ground_truth=config["ground_truth"],
    log:
        f"{LOGS}/ground_truth.log",
    threads: threads_of("ground_truth")
    resources:
        **resources_of("ground_truth"),
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/build_ground_truth.py"


rule ground_truth:
    """Target: the ground-truth tables."""
    input:
        rules.build_ground_truth.output,
