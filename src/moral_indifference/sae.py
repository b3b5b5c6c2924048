"""Sparse autoencoders on pooled sentence representations.

A sparse autoencoder (SAE) rewrites a representation ``x`` as a sparse, non-negative code
``z = ReLU(W_enc^T (x - b_dec) + b_enc)`` and a reconstruction ``x_hat = z W_dec + b_dec``.
Here one SAE is trained per model layer on *pooled* sentence representations: one vector
per training row (for example the mean over the row's tokens), not one vector per token.

Inputs are centred first: the float32 mean of the training vectors (the *centre*) is
subtracted before encoding and added back after decoding. The centre is stored next to the
SAE as ``centre.npy`` because the SAE is meaningless without it.

The SAE itself is a SAELens module (``StandardTrainingSAE`` for the ReLU + L1 SAE of the
method, ``TopKTrainingSAE`` as an alternative). A folder written by :func:`save_sae` holds:

- ``cfg.json`` and ``sae_weights.safetensors``: SAELens inference format, reloadable with
  ``sae_lens.SAE.load_from_disk(folder)``;
- ``centre.npy``: float32 ``[d_in]``, the training mean;
- ``training.json``: the training configuration and one record per epoch (loss, MSE, L0,
  L1 coefficient, explained variance).

Loss of the standard SAE: ``mean((x_hat - x)^2) + l1 * mean(|z|)``, both means over every
entry of the batch, with the decoder rows (SAELens stores decoder *columns* of the method
as rows of ``W_dec``, shape ``[d_sae, d_in]``) held at unit norm after every step. The L1
coefficient starts at ``l1_coefficient`` and is adapted once per epoch towards
``target_l0`` by :func:`adapt_l1_coefficient`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sae_lens import SAE
from sae_lens.saes.sae import TrainingSAE, TrainStepInput
from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

CENTRE_FILENAME = "centre.npy"
TRAINING_FILENAME = "training.json"

L1_MIN = 1e-6
L1_MAX = 100.0


@dataclass(frozen=True)
class SAETrainingConfig:
    """Settings of one SAE training run; build from a plain dict with ``SAETrainingConfig(**d)``.

    ``warmup_fraction`` is the share of all optimiser steps spent in a linear warm-up from
    0 to ``lr``. The remaining steps follow a cosine decay from ``lr`` to
    ``lr * lr_end_fraction``.
    ``target_l0`` drives the L1 adaptation of the standard architecture; ``k`` is the number
    of active latents of the TopK architecture. ``dead_steps`` is the number of steps
    without activation after which the TopK auxiliary loss treats a latent as dead.
    """

    architecture: str = "standard"
    expansion_factor: int = 16
    l1_coefficient: float = 1e-3
    target_l0: int = 32
    k: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.0
    batch_size: int = 4096
    epochs: int = 10
    warmup_fraction: float = 0.05
    lr_end_fraction: float = 0.0
    grad_clip: float = 1.0
    dead_steps: int = 1000
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise KeyError(
                f"unknown SAE architecture {self.architecture!r}; "
                f"valid names: {', '.join(ARCHITECTURES)}"
            )
        if self.expansion_factor < 1 or self.batch_size < 1 or self.epochs < 1:
            raise ValueError(
                "expansion_factor, batch_size and epochs must be >= 1, got "
                f"{self.expansion_factor}, {self.batch_size}, {self.epochs}"
            )
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")


@dataclass
class TrainedSAE:
    """A trained SAELens SAE, the centre subtracted from its inputs, and its training log."""

    sae: SAE[Any]
    centre: np.ndarray
    history: list[dict[str, Any]]
    config: dict[str, Any] = field(default_factory=dict)


def adapt_l1_coefficient(coefficient: float, l0: float, target: float) -> float:
    """Return the L1 coefficient for the next epoch given this epoch's mean L0.

    Rule: x1.2 when L0 > 2 x target, else x1.05 when L0 > 1.1 x target, x0.95 when
    L0 < 0.9 x target, unchanged otherwise. The result is clamped to [1e-6, 100].
    """
    if l0 > 2.0 * target:
        coefficient *= 1.2
    elif l0 > 1.1 * target:
        coefficient *= 1.05
    elif l0 < 0.9 * target:
        coefficient *= 0.95
    return float(min(max(coefficient, L1_MIN), L1_MAX))


def _build_standard(config: SAETrainingConfig, d_in: int) -> TrainingSAE[Any]:
    sae_config = StandardTrainingSAEConfig(
        d_in=d_in,
        d_sae=d_in * config.expansion_factor,
        dtype="float32",
        device=config.device,
        l1_coefficient=config.l1_coefficient,
        decoder_init_norm=1.0,
    )
    return StandardTrainingSAE(sae_config)


def _build_topk(config: SAETrainingConfig, d_in: int) -> TrainingSAE[Any]:
    # Decoder rows stay at unit norm, so rescaling activations by decoder norm is a no-op
    # and is switched off to keep the saved weights identical to the trained ones.
    sae_config = TopKTrainingSAEConfig(
        d_in=d_in,
        d_sae=d_in * config.expansion_factor,
        dtype="float32",
        device=config.device,
        k=config.k,
        rescale_acts_by_decoder_norm=False,
        decoder_init_norm=1.0,
    )
    return TopKTrainingSAE(sae_config)


ARCHITECTURES: dict[str, Callable[[SAETrainingConfig, int], TrainingSAE[Any]]] = {
    "standard": _build_standard,
    "topk": _build_topk,
}


def _lr_lambda(total_steps: int, warmup_fraction: float, end_fraction: float):
    warmup_steps = int(round(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        decay_steps = max(total_steps - warmup_steps, 1)
        progress = min((step - warmup_steps) / decay_steps, 1.0)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return end_fraction + (1.0 - end_fraction) * cosine

    return factor


@torch.no_grad()
def normalise_decoder_rows(sae: SAE[Any]) -> None:
    """Scale every decoder row (one latent's dictionary vector) of ``sae`` to unit norm, in place."""
    norms = sae.W_dec.norm(dim=1, keepdim=True).clamp(min=1e-8)
    sae.W_dec.data.div_(norms)


def train_sae(train_acts: np.ndarray, config: SAETrainingConfig, d_in: int) -> TrainedSAE:
    """Train one SAE on pooled representations ``train_acts`` ``[n_rows, d_in]``.

    The inputs are centred by their float32 mean. Each epoch visits every row once in a
    seeded random order. For the standard architecture the L1 coefficient is adapted after
    each epoch with :func:`adapt_l1_coefficient`; every epoch's values go to the history.
    """
    acts = np.asarray(train_acts, dtype=np.float32)
    if acts.ndim != 2 or acts.shape[1] != d_in:
        raise ValueError(
            f"train_acts must have shape [n_rows, {d_in}], got {acts.shape}; "
            "pass one pooled vector per row"
        )
    if acts.shape[0] == 0:
        raise ValueError("train_acts is empty; the SAE needs at least one training row")

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    centre = acts.mean(axis=0, dtype=np.float64).astype(np.float32)
    data = torch.from_numpy(acts - centre).to(config.device)
    n_rows = data.shape[0]

    sae = ARCHITECTURES[config.architecture](config, d_in)
    sae.train()
    optimizer = torch.optim.AdamW(sae.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(n_rows / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(total_steps, config.warmup_fraction, config.lr_end_fraction)
    )

    l1_coefficient = config.l1_coefficient
    steps_since_fired = torch.zeros(sae.cfg.d_sae, dtype=torch.long, device=config.device)
    total_variance = float(((data - data.mean(dim=0)) ** 2).sum())
    history: list[dict[str, Any]] = []
    step = 0
    for epoch in tqdm(range(config.epochs), desc="SAE epochs", leave=False):
        order = torch.randperm(n_rows, generator=generator).to(config.device)
        sums = {"loss": 0.0, "mse": 0.0, "l0": 0.0, "squared_error": 0.0}
        for start in range(0, n_rows, config.batch_size):
            batch = data[order[start : start + config.batch_size]]
            # SAELens sums the squared error over d_in and the L1 norm over d_sae. Scaling
            # its L1 coefficient by d_in / d_sae and the loss by 1 / d_in turns both sums
            # into the per-entry means of the method's loss.
            step_input = TrainStepInput(
                sae_in=batch,
                coefficients={"l1": l1_coefficient * d_in / sae.cfg.d_sae},
                dead_neuron_mask=steps_since_fired > config.dead_steps,
                n_training_steps=step,
                is_logging_step=False,
            )
            output = sae.training_forward_pass(step_input)
            loss = output.loss / d_in
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(sae.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            normalise_decoder_rows(sae)
            step += 1

            with torch.no_grad():
                fired = (output.feature_acts > 0).any(dim=0)
                steps_since_fired = torch.where(fired, 0, steps_since_fired + 1)
                n_batch = batch.shape[0]
                squared_error = float(((output.sae_out - batch) ** 2).sum())
                sums["loss"] += float(loss) * n_batch
                sums["mse"] += squared_error / d_in
                sums["l0"] += float((output.feature_acts > 0).sum())
                sums["squared_error"] += squared_error

        record = {
            "epoch": epoch,
            "loss": sums["loss"] / n_rows,
            "mse": sums["mse"] / n_rows,
            "l0": sums["l0"] / n_rows,
            "l1_coefficient": l1_coefficient if config.architecture == "standard" else None,
            "explained_variance": (
                1.0 - sums["squared_error"] / total_variance if total_variance > 0 else float("nan")
            ),
            "lr": scheduler.get_last_lr()[0],
        }
        history.append(record)
        logger.info(
            "SAE epoch %d: loss %.5g, mse %.5g, L0 %.2f, explained variance %.4f",
            epoch,
            record["loss"],
            record["mse"],
            record["l0"],
            record["explained_variance"],
        )
        if config.architecture == "standard":
            l1_coefficient = adapt_l1_coefficient(l1_coefficient, record["l0"], config.target_l0)

    sae.eval()
    return TrainedSAE(sae=sae, centre=centre, history=history, config=asdict(config))


def save_sae(trained: TrainedSAE, folder: str | Path) -> Path:
    """Write ``trained`` to ``folder`` in SAELens inference format plus centre and training log."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(trained.sae, TrainingSAE):
        trained.sae.save_inference_model(folder)
    else:
        trained.sae.save_model(folder)
    # SAELens writes cfg.json keys in set order, which changes with the hash seed of the
    # process. Sorted keys make two runs of the same training give the same bytes.
    cfg_path = folder / "cfg.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    np.save(folder / CENTRE_FILENAME, np.asarray(trained.centre, dtype=np.float32))
    log = {"config": trained.config, "epochs": trained.history}
    (folder / TRAINING_FILENAME).write_text(
        json.dumps(log, ensure_ascii=False, indent=2, default=_json_default), encoding="utf-8"
    )
    return folder


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to {TRAINING_FILENAME}")


def load_sae(folder: str | Path, device: str = "cpu") -> tuple[SAE[Any], torch.Tensor]:
    """Load the SAE and its float32 centre from a folder written by :func:`save_sae`."""
    folder = Path(folder)
    centre_path = folder / CENTRE_FILENAME
    if not centre_path.is_file():
        raise FileNotFoundError(
            f"missing {centre_path}; an SAE folder needs the training mean next to "
            "cfg.json, so write it with moral_indifference.sae.save_sae"
        )
    sae = SAE.load_from_disk(folder, device=device)
    sae.eval()
    centre = torch.from_numpy(np.load(centre_path).astype(np.float32)).to(device)
    return sae, centre


def _as_tensor(values: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach().to(device=device, dtype=torch.float32)
    return torch.from_numpy(np.asarray(values, dtype=np.float32)).to(device)


def _map_rows(
    sae: SAE[Any],
    centre: np.ndarray | torch.Tensor,
    x: np.ndarray | torch.Tensor,
    batch_size: int,
    reconstruct_rows: bool,
) -> torch.Tensor:
    """Encode (or reconstruct) rows in batches on the SAE's device; return a CPU tensor."""
    device = sae.W_enc.device
    centre_t = _as_tensor(centre, device)
    x_t = _as_tensor(x, device)
    parts = []
    for start in range(0, x_t.shape[0], batch_size):
        latents = sae.encode(x_t[start : start + batch_size] - centre_t)
        parts.append((sae.decode(latents) + centre_t).cpu() if reconstruct_rows else latents.cpu())
    if not parts:
        return torch.zeros(0, sae.cfg.d_in if reconstruct_rows else sae.cfg.d_sae)
    return torch.cat(parts)


@torch.no_grad()
def encode(
    sae: SAE[Any],
    centre: np.ndarray | torch.Tensor,
    x: np.ndarray | torch.Tensor,
    batch_size: int = 4096,
) -> torch.Tensor:
    """Encode rows ``x`` ``[n, d_in]`` into latent activations ``[n, d_sae]`` on the CPU."""
    return _map_rows(sae, centre, x, batch_size, reconstruct_rows=False)


@torch.no_grad()
def reconstruct(
    sae: SAE[Any],
    centre: np.ndarray | torch.Tensor,
    x: np.ndarray | torch.Tensor,
    batch_size: int = 4096,
) -> torch.Tensor:
    """Reconstruct rows ``x`` through the SAE, adding the centre back, on the CPU."""
    return _map_rows(sae, centre, x, batch_size, reconstruct_rows=True)
