"""Pooled residual-stream activations, one vector per text, layer and pooling.

Each annotation's action is wrapped in a template (default ``"{action} is morally"``, no
chat template, no system prompt) and run through the model. A decoder block reads the
*residual stream* (the running sum of the embeddings and of every earlier block's
output) and returns it updated. Layer ``L`` (0-based) here is the residual stream
after block ``L``, captured by a forward hook on the block, so that ``L`` runs over
``0 .. n_layers - 1``.

NOTE: a hook is used instead of ``output_hidden_states``. In transformers 5.25,
``hidden_states[L + 1]`` equals the output of block ``L`` for every block but the last,
because ``hidden_states[-1]`` is replaced by the output of the final norm
(``tie_last_hidden_states``). The hook returns the raw output of the last block too.

A [T, D] stream is reduced to one D-vector by a *pooling*, and several poolings run on
the same forward pass. :data:`POOLINGS` holds them: ``mean`` (all real tokens) and
``last`` (the last real token) follow the reference method, and two variants resist the
attention sink. On SmolLM2-135M-Instruct with this template, the first token's residual
norm is about 24,000 from layer 10 on, against about 150 for every other token. A plain
mean is then dominated by that one position. ``mean_skip_first`` drops the first real
token, and ``mean_norm_filtered`` drops tokens whose norm exceeds a multiple of the row's
median token norm. Each pooling also returns the positions it used, and their count is
stored next to the vectors.

On disk (per model): ``index.parquet`` (position, id, action, n_tokens), one
``layer_{L:03d}.npz`` per layer with a float16 array per pooling and an int32
``"{pooling}__n_tokens"`` count per pooling, and ``pooling.json`` describing each pooling.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm


logger = logging.getLogger(__name__)

COUNT_SUFFIX: Final[str] = "__n_tokens"
"""Suffix of the npz key that stores how many positions a pooling used per row."""

INDEX_NAME: Final[str] = "index.parquet"
POOLING_NAME: Final[str] = "pooling.json"
FLOAT16_MAX: Final[float] = float(np.finfo(np.float16).max)

PoolingFunction = Callable[
    [torch.Tensor, torch.Tensor, Mapping[str, float]], tuple[torch.Tensor, torch.Tensor]
]


def layer_file_name(layer: int) -> str:
    """Return the file name of one layer's activations, e.g. ``layer_003.npz``."""
    return f"layer_{layer:03d}.npz"


# ---------------------------------------------------------------------------
# Poolings
# ---------------------------------------------------------------------------


def _masked_mean(hidden: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
    weights = used.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def _first_real(mask: torch.Tensor) -> torch.Tensor:
    """Return a [B, T] mask of the first real token of each row."""
    index = mask.to(torch.int64).argmax(dim=1)
    return torch.nn.functional.one_hot(index, mask.shape[1]).bool()


def pool_mean(
    hidden: torch.Tensor, mask: torch.Tensor, params: Mapping[str, float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average all real (non-padding) tokens."""
    return _masked_mean(hidden, mask), mask


def pool_last(
    hidden: torch.Tensor, mask: torch.Tensor, params: Mapping[str, float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Take the last real token, found from the mask, so left and right padding both work."""
    length = mask.shape[1]
    index = length - 1 - mask.flip(dims=[1]).to(torch.int64).argmax(dim=1)
    used = torch.nn.functional.one_hot(index, length).bool() & mask
    return _masked_mean(hidden, used), used


def pool_mean_skip_first(
    hidden: torch.Tensor, mask: torch.Tensor, params: Mapping[str, float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average the real tokens except the first real one (the attention sink).

    A one-token row keeps its only token.
    """
    used = mask & ~_first_real(mask)
    single = used.sum(dim=1) == 0
    used = torch.where(single.unsqueeze(1), mask, used)
    return _masked_mean(hidden, used), used


def pool_mean_norm_filtered(
    hidden: torch.Tensor, mask: torch.Tensor, params: Mapping[str, float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average the real tokens whose L2 norm is at most norm_filter_factor times the
    median norm of the row's real tokens."""
    factor = float(params["norm_filter_factor"])
    norms = hidden.norm(dim=-1)
    # The median interpolates between the two middle values for an even count.
    median = torch.nanquantile(norms.masked_fill(~mask, float("nan")), 0.5, dim=1, keepdim=True)
    used = mask & (norms <= factor * median)
    return _masked_mean(hidden, used), used


POOLINGS: Final[dict[str, PoolingFunction]] = {
    "mean": pool_mean,
    "last": pool_last,
    "mean_skip_first": pool_mean_skip_first,
    "mean_norm_filtered": pool_mean_norm_filtered,
}
"""Pooling name -> function(hidden [B, T, D] float32, mask [B, T] bool, params) ->
(pooled [B, D], used [B, T] bool)."""

POOLING_PARAMS: Final[dict[str, tuple[str, ...]]] = {"mean_norm_filtered": ("norm_filter_factor",)}
"""ActivationConfig fields that each pooling reads from ``params``."""


def get_pooling(name: str) -> PoolingFunction:
    """Look up a pooling function by name."""
    if name not in POOLINGS:
        raise KeyError(f"unknown pooling {name!r}; valid names: {', '.join(POOLINGS)}")
    return POOLINGS[name]


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

_DTYPES: Final[tuple[str, ...]] = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class ActivationConfig:
    """Settings of activation extraction.

    ``dtype`` is the dtype the model must be loaded in. Extraction checks it, so the
    value recorded in ``pooling.json`` is the one that ran. ``padding_side=None`` keeps
    the tokenizer's own padding side. ``norm_filter_factor`` is the multiple of the
    median token norm above which ``mean_norm_filtered`` drops a token.
    """

    template: str = "{action} is morally"
    poolings: tuple[str, ...] = ("mean", "last", "mean_skip_first", "mean_norm_filtered")
    batch_size: int = 32
    max_length: int = 64
    dtype: str = "float32"
    norm_filter_factor: float = 10.0
    padding_side: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "poolings", tuple(self.poolings))
        for name in self.poolings:
            get_pooling(name)
        if len(set(self.poolings)) != len(self.poolings):
            raise ValueError(f"duplicate pooling names in {self.poolings}")
        if "{action}" not in self.template:
            raise ValueError(f"template {self.template!r} has no {{action}} placeholder")
        if self.batch_size < 1 or self.max_length < 1:
            raise ValueError(
                f"batch_size ({self.batch_size}) and max_length ({self.max_length}) must be positive"
            )
        if self.dtype not in _DTYPES:
            raise ValueError(f"invalid dtype {self.dtype!r}; valid dtypes: {', '.join(_DTYPES)}")
        # With a factor of at least 1, the token of smallest norm always passes the filter.
        if self.norm_filter_factor < 1.0:
            raise ValueError(f"norm_filter_factor must be at least 1.0, got {self.norm_filter_factor}")
        if self.padding_side not in (None, "left", "right"):
            raise ValueError(
                f"invalid padding_side {self.padding_side!r}; valid values: None, 'left', 'right'"
            )

    def pooling_params(self) -> dict[str, float]:
        """Return the parameters passed to every pooling function."""
        return {"norm_filter_factor": self.norm_filter_factor}

    def describe_poolings(self) -> dict[str, dict[str, Any]]:
        """Describe each configured pooling: the positions it uses, its params and the extraction settings."""
        extraction = {key: value for key, value in asdict(self).items() if key != "poolings"}
        extraction["poolings"] = list(self.poolings)
        description = {}
        for name in self.poolings:
            params = {key: getattr(self, key) for key in POOLING_PARAMS.get(name, ())}
            description[name] = {
                "description": " ".join(inspect.getdoc(POOLINGS[name]).split()),
                "params": params,
                "extraction": extraction,
            }
        return description


# ---------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------


def unique_texts(vectors_df: pd.DataFrame) -> pd.DataFrame:
    """Return one (id, action) row per annotation id, first occurrence first.

    Several expanded rows share one annotation, and so one text. An id with two
    different actions is an error.
    """
    missing = [column for column in ("id", "action") if column not in vectors_df.columns]
    if missing:
        raise KeyError(f"vectors table is missing columns {missing}; it needs id and action")
    pairs = vectors_df[["id", "action"]].drop_duplicates()
    conflicting = pairs["id"][pairs["id"].duplicated()]
    if len(conflicting):
        raise ValueError(
            f"{conflicting.nunique()} annotation ids have more than one action, "
            f"e.g. {conflicting.iloc[0]!r}; fix the moral vectors table"
        )
    return vectors_df.drop_duplicates("id", keep="first")[["id", "action"]].reset_index(drop=True)


def _block_output(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def pool_batch(
    model: torch.nn.Module, tokenizer: Any, texts: Sequence[str], config: ActivationConfig
) -> tuple[torch.Tensor, dict[int, dict[str, torch.Tensor]]]:
    """Run one batch and pool the residual stream after every decoder block.

    Returns the number of real tokens per text and, per layer, float32 CPU tensors: one
    [B, D] array per pooling and a [B] int32 ``"{pooling}__n_tokens"`` count of the
    positions that pooling used.
    """
    padding_kwargs = {} if config.padding_side is None else {"padding_side": config.padding_side}
    encoded = tokenizer(
        list(texts),
        return_tensors="pt",
        padding=True,
        truncation=True,
        max_length=config.max_length,
        **padding_kwargs,
    )
    mask = encoded["attention_mask"].bool()
    # Positions count real tokens only, so a left-padded row gets the same positions as an unpadded one.
    position_ids = (mask.to(torch.int64).cumsum(dim=1) - 1).clamp(min=0)
    params = config.pooling_params()
    from moral_indifference.models import decoder_layers  # transformers loads slowly; only extraction needs it
    blocks = decoder_layers(model)
    pooled: dict[int, dict[str, torch.Tensor]] = {}

    def make_hook(layer: int) -> Callable[..., None]:
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            if layer in pooled:
                raise RuntimeError(f"decoder block {layer} ran twice in one forward pass")
            hidden = _block_output(output).detach().float()
            layer_mask = mask.to(hidden.device)
            results: dict[str, torch.Tensor] = {}
            for name in config.poolings:
                vectors, used = POOLINGS[name](hidden, layer_mask, params)
                results[name] = vectors.cpu()
                results[name + COUNT_SUFFIX] = used.sum(dim=1).to(torch.int32).cpu()
            pooled[layer] = results

        return hook

    handles = [block.register_forward_hook(make_hook(layer)) for layer, block in enumerate(blocks)]
    try:
        device = next(model.parameters()).device
        with torch.inference_mode():
            model(
                input_ids=encoded["input_ids"].to(device),
                attention_mask=encoded["attention_mask"].to(device),
                position_ids=position_ids.to(device),
                use_cache=False,
            )
    finally:
        for handle in handles:
            handle.remove()

    if sorted(pooled) != list(range(len(blocks))):
        raise RuntimeError(
            f"captured the output of {len(pooled)} decoder blocks, expected {len(blocks)}; "
            "check decoder_layers for this model"
        )
    return mask.sum(dim=1), pooled


def extract_activations(
    model: torch.nn.Module, tokenizer: Any, texts_df: pd.DataFrame, config: ActivationConfig
) -> tuple[pd.DataFrame, dict[int, dict[str, np.ndarray]]]:
    """Pool the residual stream after every decoder block for each text of ``texts_df``.

    ``texts_df`` has one row per annotation, with columns ``id`` and ``action``, as
    built by :func:`unique_texts`. Texts are batched by token length to limit padding, and the
    results are put back in input order. Returns the index table (position, id, action,
    n_tokens) and, per layer, float16 [n_rows, d_model] arrays per pooling plus int32
    ``"{pooling}__n_tokens"`` counts.
    """
    missing = [column for column in ("id", "action") if column not in texts_df.columns]
    if missing:
        raise KeyError(f"texts table is missing columns {missing}; build it with unique_texts")
    if texts_df["id"].duplicated().any():
        raise ValueError("texts table has duplicate ids; build it with unique_texts")
    model_dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    if model_dtype != config.dtype:
        raise ValueError(
            f"model is loaded as {model_dtype}, but the activation config expects {config.dtype}; "
            f"load it with load_model(..., dtype={config.dtype!r}) or change the config"
        )

    texts = [config.template.format(action=action) for action in texts_df["action"]]
    lengths = np.array(
        [len(ids) for ids in tokenizer(texts, truncation=True, max_length=config.max_length)["input_ids"]],
        dtype=np.int64,
    )
    n_truncated = int((lengths >= config.max_length).sum())
    if n_truncated:
        logger.warning(
            "%d of %d texts reach max_length=%d tokens and may be truncated",
            n_truncated,
            len(texts),
            config.max_length,
        )

    order = np.argsort(-lengths, kind="stable")
    n_rows = len(texts)
    layers: dict[int, dict[str, np.ndarray]] = {}
    batches = range(0, n_rows, config.batch_size)
    logger.info("extracting activations for %d texts in %d batches", n_rows, len(batches))
    for start in tqdm(batches, desc="activations", unit="batch"):
        rows = order[start : start + config.batch_size]
        n_tokens, pooled = pool_batch(model, tokenizer, [texts[i] for i in rows], config)
        if not np.array_equal(n_tokens.numpy(), lengths[rows]):
            raise RuntimeError("token counts of a padded batch differ from the unpadded counts")
        for layer, results in pooled.items():
            arrays = layers.get(layer)
            if arrays is None:
                arrays = _allocate(results, n_rows)
                layers[layer] = arrays
            for key, values in results.items():
                arrays[key][rows] = values.numpy()

    _warn_overflow(layers)
    index_df = pd.DataFrame(
        {
            "position": np.arange(n_rows, dtype=np.int64),
            "id": texts_df["id"].astype(str).to_numpy(),
            "action": texts_df["action"].astype(str).to_numpy(),
            "n_tokens": lengths,
        }
    )
    return index_df, layers


def _allocate(results: Mapping[str, torch.Tensor], n_rows: int) -> dict[str, np.ndarray]:
    arrays = {}
    for key, values in results.items():
        if key.endswith(COUNT_SUFFIX):
            arrays[key] = np.zeros(n_rows, dtype=np.int32)
        else:
            arrays[key] = np.zeros((n_rows, values.shape[1]), dtype=np.float16)
    return arrays


def _warn_overflow(layers: Mapping[int, Mapping[str, np.ndarray]]) -> None:
    """Log every layer and pooling whose float16 vectors overflowed to infinity."""
    # TODO: float16 storage overflows beyond 65,504; switch the stored dtype if this fires.
    for layer, arrays in layers.items():
        for key, values in arrays.items():
            if key.endswith(COUNT_SUFFIX):
                continue
            n_infinite = int(np.isinf(values).sum())
            if n_infinite:
                logger.warning(
                    "layer %d, pooling %s: %d values exceed the float16 range (%g) and are stored as inf",
                    layer,
                    key,
                    n_infinite,
                    FLOAT16_MAX,
                )


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def write_activations(
    out_dir: str | Path,
    index_df: pd.DataFrame,
    layers: Mapping[int, Mapping[str, np.ndarray]],
    config: ActivationConfig,
) -> None:
    """Write ``index.parquet``, one uncompressed ``layer_{L:03d}.npz`` per layer and ``pooling.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_rows = len(index_df)
    for layer, arrays in layers.items():
        for key, values in arrays.items():
            if values.shape[0] != n_rows:
                raise ValueError(
                    f"layer {layer}, array {key!r} has {values.shape[0]} rows but the index has {n_rows}"
                )
        np.savez(out_dir / layer_file_name(layer), **arrays)

    index_df.to_parquet(out_dir / INDEX_NAME, index=False)
    (out_dir / POOLING_NAME).write_text(
        json.dumps(config.describe_poolings(), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    logger.info("wrote %d layers of activations for %d texts to %s", len(layers), n_rows, out_dir)


def load_layer(folder: str | Path, layer: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Read the index and one layer's pooled vectors as float32, keyed by pooling name.

    Only ``index.parquet`` and that layer's file are read. The ``__n_tokens`` counts
    stay in the file.
    """
    folder = Path(folder)
    path = folder / layer_file_name(layer)
    if not path.is_file():
        available = sorted(p.name for p in folder.glob("layer_*.npz"))
        raise FileNotFoundError(
            f"{path} not found; available layer files: {', '.join(available) or 'none'}. "
            "Run the activation extraction for this model"
        )
    index_df = pd.read_parquet(folder / INDEX_NAME)
    with np.load(path) as data:
        vectors = {
            key: data[key].astype(np.float32) for key in data.files if not key.endswith(COUNT_SUFFIX)
        }
    for key, values in vectors.items():
        if values.shape[0] != len(index_df):
            raise ValueError(
                f"{path}: pooling {key!r} has {values.shape[0]} rows but {folder / INDEX_NAME} has "
                f"{len(index_df)}; re-run the extraction"
            )
    return index_df, vectors
