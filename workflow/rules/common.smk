"""Helpers shared by every rule file. Covers the models table, layer lists, paths and resources."""

import sys
from pathlib import Path

from moral_indifference.workflow import check_config, rule_resources

check_config(config)

RESULTS = config["results"]
MODELS = {entry["name"]: entry for entry in config["models"]}
MODEL_NAMES = list(MODELS)
SAE_MODEL = config["sae"]["model"]
SAE_LAYERS = [f"{layer:03d}" for layer in config["sae"]["layers"]]
STEER_LAYERS = [f"{layer:03d}" for layer in config["steering"]["layers"]]
STEER_CONDITIONS = list(config["steering"]["conditions"])
LOGS = f"{RESULTS}/logs"
PROVENANCE = f"{RESULTS}/provenance"


def analysed_layers(model):
    """Return the zero-padded layer indices analysed for ``model``."""
    n_layers = MODELS[model]["n_layers"]
    wanted = config["indifference"]["layers"]
    layers = range(n_layers) if wanted == "all" else [l for l in wanted if l < n_layers]
    return [f"{layer:03d}" for layer in layers]


def all_layers(model):
    """Return every zero-padded layer index of ``model``."""
    return [f"{layer:03d}" for layer in range(MODELS[model]["n_layers"])]


def manifest(model):
    return f"{RESULTS}/models/{model}/manifest.json"


def model_inputs(wildcards):
    """Prepared models that ``wildcards.model``'s preparation needs (random-init copies)."""
    source = MODELS[wildcards.model]["source"]
    return [manifest(source["like"])] if source["kind"] == "random_init" else []


def resources_of(group, model=None):
    """Return the SLURM resources of a resource group as keyword arguments for a resources directive.

    With ``model``, that model's own ``resources`` entry overrides the group's values.
    SBATCH_ACCOUNT and SBATCH_PARTITION fill an account or partition the config leaves out.
    """
    return rule_resources(config, group, model)


def threads_of(group, model=None):
    """Return the thread count for jobs of a resource group.

    It is the group's ``cpus_per_task`` (default 1).
    Locally Snakemake lowers this to ``--cores``. On SLURM it equals the CPUs the job gets.
    """
    return resources_of(group, model).get("cpus_per_task", 1)


def rule_suffix(model):
    """Return ``model`` as a name suffix (letters, digits and underscores)."""
    return "".join(char if char.isalnum() else "_" for char in model)


SAE_FILES = ("cfg.json", "sae_weights.safetensors", "centre.npy")


def sae_folder(kind, model, layer):
    """Return the folder of an SAE: kind is "sae" (as trained) or "realign"."""
    return f"{RESULTS}/{kind}/{model}/layer_{layer}"


STEER_MODEL = config["steering"]["model"]
FLAMES = f"{RESULTS}/flames/{STEER_MODEL}"


def steering_inputs(wildcards):
    """Files that define the steering of ``wildcards.condition`` at ``wildcards.layer``."""
    layer = wildcards.layer
    if wildcards.condition == "realigned_sae":
        return [f"{sae_folder('realign', wildcards.model, layer)}/{name}" for name in SAE_FILES]
    if wildcards.condition == "original_sae":
        return [f"{sae_folder('sae', wildcards.model, layer)}/{name}" for name in SAE_FILES]
    return [
        f"{RESULTS}/activations/{wildcards.model}/layer_{layer}.npz",
        f"{RESULTS}/activations/{wildcards.model}/index.parquet",
        f"{RESULTS}/ground_truth/moral_vectors.parquet",
    ]


def judge_inputs(wildcards):
    """The judge model's manifest for the local backend; nothing for an HTTP endpoint."""
    return [manifest(config["judge"]["model"])] if config["judge"]["backend"] == "local" else []
