"""Helpers shared by the rule files: the models table, layer lists, paths, resources."""

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


wildcard_constraints:
    model="|".join(MODEL_NAMES),
    layer=r"\d{3}",
    condition="|".join(STEER_CONDITIONS),


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
    """Return a resource value of a rule group, falling back to the default group."""
    groups = config["resources"]
    return groups.get(group, {}).get(key, groups["default"].get(key))


RESOURCE_NAMES = ("mem_mb", "runtime", "gpu", "cpus_per_task", "slurm_partition", "slurm_account")


def resources_of(group, model=None):
    """Return the SLURM resources of a rule group as keyword arguments for ``resources:``.

    With ``model``, that model's own ``resources`` entry overrides the group's values.
    """
    values = {name: resource(group, name) for name in RESOURCE_NAMES}
    if model is not None:
        values.update(MODELS[model].get("resources", {}))
    return {name: value for name, value in values.items() if value is not None}


def rule_suffix(model):
    """Return ``model`` as a rule-name suffix (letters, digits and underscores)."""
    return "".join(char if char.isalnum() else "_" for char in model)
