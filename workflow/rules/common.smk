"""Helpers shared by every rule file. Covers the models table, layer lists, paths and resources."""

import sys
from pathlib import Path

from moral_indifference.workflow import check_config

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


def resource(group, key):
    """Return one value of a resource group, falling back to the default group."""
    groups = config["resources"]
    return groups.get(group, {}).get(key, groups["default"].get(key))


RESOURCE_NAMES = ("mem_mb", "runtime", "gpu", "cpus_per_task", "slurm_partition", "slurm_account")


def resources_of(group, model=None):
    """Return the SLURM resources of a resource group as keyword arguments for a resources directive.

    With ``model``, that model's own ``resources`` entry overrides the group's values.
    """
    values = {name: resource(group, name) for name in RESOURCE_NAMES}
    if model is not None:
        values.update(MODELS[model].get("resources", {}))
    return {name: value for name, value in values.items() if value is not None}


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
