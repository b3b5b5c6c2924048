"""Provenance records: what produced a result, from which inputs, code and versions.

Every workflow step writes one JSON record next to the results tree
(``<results>/provenance/<rule>/<wildcards>.json``). A record lists the rule and its
wildcards and parameters, the sha256 and size of every input and output file, the git
commit of the code (and whether the working tree had uncommitted changes), the versions of
the packages that shape the numbers, the Python and platform, the SLURM job that ran the
step (when one did), and the start and end time.
Two results with equal records were produced by the same computation on the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = (
    "moral-indifference",
    "torch",
    "transformers",
    "sae-lens",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "scikit-learn",
    "snakemake",
    "gguf",
)

_CHUNK = 1 << 20

#: Variables kept in a record of a SLURM job: which job and step ran, where, with what
#: allocation (CUDA_VISIBLE_DEVICES lists the GPUs SLURM gave the step).
SLURM_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_STEP_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_PARTITION",
    "SLURM_JOB_ACCOUNT",
    "SLURM_CLUSTER_NAME",
    "SLURMD_NODENAME",
    "SLURM_CPUS_PER_TASK",
    "SLURM_MEM_PER_NODE",
    "SLURM_MEM_PER_CPU",
    "SLURM_GPUS_ON_NODE",
    "SLURM_STEP_GPUS",
    "CUDA_VISIBLE_DEVICES",
)


def sha256_file(path: str | Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe_files(paths: Iterable[str | Path]) -> dict[str, dict[str, Any]]:
    """Return ``{path: {sha256, bytes}}`` for files, and one entry per file inside folders."""
    described: dict[str, dict[str, Any]] = {}
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.exists():
                described[str(file)] = {"sha256": sha256_file(file), "bytes": file.stat().st_size}
            else:
                described[str(file)] = {"sha256": None, "bytes": None}
    return described


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Return installed versions of ``names``; None for a package that is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(directory: str | Path | None = None) -> dict[str, Any]:
    """Return the git commit of ``directory`` and whether tracked files have changes.

    The default is this package's own folder, so that a run in another working directory
    still records the commit of the code that ran (None outside a git checkout).
    """
    directory = Path(__file__).resolve().parent if directory is None else directory
    def run(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", *args], cwd=directory, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def scheduler_context(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """Return the job's variables from :data:`SLURM_VARIABLES`, or None outside a SLURM job."""
    environ = os.environ if environ is None else environ
    if not environ.get("SLURM_JOB_ID"):
        return None
    return {name: environ[name] for name in SLURM_VARIABLES if name in environ}


def build_record(
    *,
    rule: str,
    wildcards: Mapping[str, str],
    params: Mapping[str, Any],
    inputs: Iterable[str | Path],
    outputs: Iterable[str | Path],
    started: dt.datetime,
    finished: dt.datetime,
) -> dict[str, Any]:
    """Assemble one provenance record; hashes every input and output file."""
    return {
        "rule": rule,
        "wildcards": dict(wildcards),
        "params": _jsonable(params),
        "inputs": describe_files(inputs),
        "outputs": describe_files(outputs),
        "code": git_state(),
        "packages": package_versions(),
        "python": sys.version,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "slurm": scheduler_context(),
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "seconds": round((finished - started).total_seconds(), 3),
    }


def write_record(record: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``record`` as indented UTF-8 JSON and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _jsonable(value: Any) -> Any:
    """Convert Snakemake's namedlists and other containers into plain JSON values."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
