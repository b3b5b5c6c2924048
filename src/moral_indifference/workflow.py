"""Glue between Snakemake and the package: config checks and the step runner.

The workflow scripts under ``workflow/scripts`` stay thin: each translates the
``snakemake`` object into one call of a package function and hands that call to
:func:`run_step`, which sends logging to the rule's log file, records provenance and
leaves no partial output behind when the step fails.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from moral_indifference.provenance import build_record, write_record

logger = logging.getLogger("moral_indifference")


#: Resource names that a rule group may set, in the SLURM executor plugin's terms.
RESOURCE_NAMES = (
    "mem_mb",
    "runtime",
    "cpus_per_task",
    "gpu",
    "gres",
    "constraint",
    "slurm_partition",
    "slurm_account",
)

#: Environment variables that fill ``slurm_account`` and ``slurm_partition`` when the
#: configuration leaves them out. They are the variables that sbatch itself reads.
RESOURCE_ENVIRONMENT = {"slurm_account": "SBATCH_ACCOUNT", "slurm_partition": "SBATCH_PARTITION"}


class ConfigError(ValueError):
    """A configuration value that the JSON schema accepts but the workflow cannot use."""


def check_config(config: Mapping[str, Any]) -> None:
    """Check the cross-key rules of a configuration; raise :class:`ConfigError` listing each."""
    problems: list[str] = []
    models = {entry["name"]: entry for entry in config["models"]}
    if len(models) != len(config["models"]):
        names = [entry["name"] for entry in config["models"]]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        problems.append(f"models: duplicate names {duplicates}; give every model a unique name")

    for name, entry in models.items():
        source = entry["source"]
        if source["kind"] == "random_init" and source.get("like") not in models:
            problems.append(
                f"models[{name}].source.like = {source.get('like')!r} is not in the models "
                f"table; valid names: {', '.join(models)}"
            )

    def require_model(key: str, value: str | None) -> dict | None:
        if value not in models:
            problems.append(f"{key} = {value!r} is not in the models table; valid names: {', '.join(models)}")
            return None
        return models[value]

    sae_model = require_model("sae.model", config["sae"]["model"])
    if sae_model is not None:
        too_deep = [layer for layer in config["sae"]["layers"] if layer >= sae_model["n_layers"]]
        if too_deep:
            problems.append(
                f"sae.layers {too_deep} do not exist in {config['sae']['model']} "
                f"({sae_model['n_layers']} layers, indices 0-{sae_model['n_layers'] - 1})"
            )
    if config["steering"]["model"] != config["sae"]["model"]:
        problems.append(
            f"steering.model = {config['steering']['model']!r} must equal sae.model = "
            f"{config['sae']['model']!r}: steering uses that model's SAEs"
        )
    missing_sae = sorted(set(config["steering"]["layers"]) - set(config["sae"]["layers"]))
    if missing_sae:
        problems.append(f"steering.layers {missing_sae} have no SAE; add them to sae.layers")
    if config["judge"].get("backend", "local") == "local":
        require_model("judge.model", config["judge"].get("model"))
    elif not config["judge"].get("base_url") or not config["judge"].get("api_model"):
        problems.append("judge.backend = 'openai' needs judge.base_url and judge.api_model")

    extracted = set(config["activations"].get("poolings", []))
    for key, requested in (
        ("indifference.poolings", config["indifference"].get("poolings", [])),
        ("sae.pooling", [config["sae"].get("pooling", "mean")]),
    ):
        unknown = sorted(set(requested) - extracted)
        if unknown:
            problems.append(f"{key} {unknown} are not extracted; add them to activations.poolings")

    split = config["ground_truth"].get("split", {})
    fractions = [split.get(name) for name in ("train", "val", "test")]
    if all(value is not None for value in fractions) and abs(sum(fractions) - 1.0) > 1e-9:
        problems.append(f"ground_truth.split fractions sum to {sum(fractions)}, not 1")

    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))


def rule_resources(
    config: Mapping[str, Any],
    group: str,
    model: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return the SLURM resources of one rule group, as a rule's ``resources`` keywords.

    A value comes from the first of: the model's own ``resources`` entry (with ``model``,
    for the extraction jobs),
    the group in ``config["resources"]``, its ``default`` group, and for account and
    partition the environment variables in :data:`RESOURCE_ENVIRONMENT`. Names with no
    value anywhere are left out, so the plugin does not pass them to sbatch.
    """
    environ = os.environ if environ is None else environ
    groups = config["resources"]
    layers = [groups.get("default", {}), groups.get(group, {})]
    if model is not None:
        entries = {entry["name"]: entry for entry in config["models"]}
        if model not in entries:
            raise ConfigError(
                f"model {model!r} not found in the models table; valid names: {', '.join(entries)}"
            )
        layers.append(entries[model].get("resources", {}))
    values: dict[str, Any] = {}
    for name in RESOURCE_NAMES:
        for layer in reversed(layers):
            if layer.get(name) is not None:
                values[name] = layer[name]
                break
        else:
            variable = RESOURCE_ENVIRONMENT.get(name)
            if variable and environ.get(variable):
                values[name] = environ[variable]
    return values


def resolve_device(name: str) -> str:
    """Return a torch device string; "auto" picks CUDA when available.

    A SLURM job that was given GPUs but gets the CPU logs a warning, because it then runs
    far slower than its time limit assumes (a CPU-only torch build, for example).
    """
    if name != "auto":
        return name
    import torch

    if torch.cuda.is_available():
        return "cuda"
    granted = os.environ.get("SLURM_GPUS_ON_NODE", "0")
    if granted not in ("", "0"):
        logger.warning(
            "SLURM gave this job %s GPU(s), but torch %s sees no CUDA device, so it runs on "
            "the CPU; install a CUDA build of torch to use them",
            granted,
            torch.__version__,
        )
    return "cpu"


def configure_logging(log_path: str | Path | None) -> None:
    """Send the package's log records to ``log_path`` (and stderr), one line each."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


def run_step(snakemake: Any, step: Callable[[Any], None]) -> None:
    """Run one workflow step with logging, provenance and cleanup of partial outputs.

    ``step`` receives the ``snakemake`` object. On failure the traceback goes to the rule's
    log, every output the step created is removed, and the exception propagates so that
    Snakemake reports the rule as failed.
    """
    log_path = snakemake.log[0] if len(snakemake.log) else None
    configure_logging(log_path)
    threads = max(1, int(getattr(snakemake, "threads", 1)))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if "torch" in sys.modules:
        # torch reads OMP_NUM_THREADS only at import, so set its thread count directly.
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    started = dt.datetime.now(dt.timezone.utc)
    rule = snakemake.rule
    logger.info("rule %s started (wildcards %s)", rule, dict(snakemake.wildcards.items()))
    try:
        step(snakemake)
    except BaseException:
        logger.exception("rule %s failed; removing its partial outputs", rule)
        _remove_outputs(snakemake.output)
        raise
    finished = dt.datetime.now(dt.timezone.utc)
    record = build_record(
        rule=rule,
        wildcards=dict(snakemake.wildcards.items()),
        params=dict(snakemake.params.items()),
        inputs=list(snakemake.input),
        outputs=list(snakemake.output),
        started=started,
        finished=finished,
    )
    results = Path(snakemake.config["results"])
    label = "_".join(f"{key}-{value}" for key, value in snakemake.wildcards.items()) or "all"
    label = label.replace("/", "_")
    path = write_record(record, results / "provenance" / rule / f"{label}.json")
    logger.info("rule %s finished in %.1f s; provenance in %s", rule, record["seconds"], path)


def _remove_outputs(outputs: Any) -> None:
    import shutil

    for output in outputs:
        path = Path(output)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
