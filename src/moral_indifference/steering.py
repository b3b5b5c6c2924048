"""Steer a language model by rewriting the residual stream after one decoder block.

A sparse autoencoder (SAE) trained on the residual stream after decoder block ``L``
encodes an activation ``h`` into sparse latents and decodes it back. If the SAE's latents
were realigned so that moral concepts are separated, replacing ``h`` by the SAE's
reconstruction pushes the model's internal representation towards that realigned
geometry while the model weights stay unchanged.

SAE steering is a forward hook on decoder block ``L``. At every position, for prompt
tokens and generated tokens alike, it replaces the block output ``h`` by::

    h + s * (SAE(h - c) + c - h)

where ``c`` is the centre stored with the SAE (the training mean subtracted before
encoding) and ``s`` is the steering strength. ``s = 0`` is the identity and ``s = 1``
replaces ``h`` by the reconstruction ``SAE(h - c) + c``. Values in between interpolate.

Three steering conditions are registered in :data:`STEERING_CONDITIONS`:

- ``realigned_sae``: the hook above with the realigned SAE, the method under test.
- ``original_sae``: the same hook with the SAE before realignment. It separates the
  effect of realignment from the effect of passing activations through any SAE.
- ``mean_difference``: adds ``s * v`` at every position, where ``v`` is a
  difference-of-means vector (see :func:`mean_difference_vector`). It is a standard
  activation-steering baseline that needs no SAE.

Use :func:`steer` as a context manager around ``model(...)`` or ``model.generate(...)``::

    steerer = build_steerer("realigned_sae", strength=1.0, sae=sae, centre=centre)
    with steer(model, layer=11, steerer=steerer):
        output = model.generate(**inputs)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
import torch

from moral_indifference.foundations import PROTOTYPE

logger = logging.getLogger(__name__)


class Steerer(Protocol):
    """A map from a block output ``[..., d_model]`` to its steered replacement."""

    strength: float

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class SteeringCondition:
    """A named steering condition and the kind of steerer it builds."""

    name: str
    kind: Literal["sae", "vector"]
    description: str


STEERING_CONDITIONS: dict[str, SteeringCondition] = {
    "realigned_sae": SteeringCondition(
        "realigned_sae",
        "sae",
        "h + s * (SAE(h - c) + c - h) with the realigned SAE",
    ),
    "original_sae": SteeringCondition(
        "original_sae",
        "sae",
        "h + s * (SAE(h - c) + c - h) with the SAE before realignment",
    ),
    "mean_difference": SteeringCondition(
        "mean_difference",
        "vector",
        "h + s * v with v the virtue-minus-vice prototype difference of means",
    ),
}


@dataclass(frozen=True)
class SteeringConfig:
    """Settings of one steering run: which condition, at which block, how strong."""

    condition: str = "realigned_sae"
    layer: int = 11
    strength: float = 1.0

    def __post_init__(self) -> None:
        get_condition(self.condition)
        if self.layer < 0:
            raise ValueError(f"invalid layer {self.layer}; use a 0-based decoder block index")


def get_condition(name: str) -> SteeringCondition:
    """Look up a steering condition by name, raising a KeyError that lists valid names."""
    if name not in STEERING_CONDITIONS:
        raise KeyError(
            f"unknown steering condition {name!r}; valid names: {', '.join(STEERING_CONDITIONS)}"
        )
    return STEERING_CONDITIONS[name]


class SAESteerer:
    """Replace ``h`` by ``h + s * (SAE(h - c) + c - h)``.

    The SAE runs in its own dtype and on its own device. ``h`` is moved there, and the result
    is moved back to the device and dtype of ``h``. Keeping the SAE on the model's device
    avoids a copy per forward pass.
    """

    def __init__(self, sae: torch.nn.Module, centre: torch.Tensor, strength: float = 1.0):
        self.sae = sae
        self.centre = torch.as_tensor(centre).detach()
        self.strength = float(strength)
        d_in = getattr(getattr(sae, "cfg", None), "d_in", None)
        if d_in is not None and self.centre.shape != (d_in,):
            raise ValueError(
                f"centre has shape {tuple(self.centre.shape)} but the SAE expects d_in={d_in}; "
                "use the centre.npy stored next to this SAE"
            )

    @torch.no_grad()
    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        parameter = next(self.sae.parameters())
        h = hidden.to(device=parameter.device, dtype=parameter.dtype)
        centre = self.centre.to(device=parameter.device, dtype=parameter.dtype)
        reconstruction = self.sae(h - centre) + centre
        steered = h + self.strength * (reconstruction - h)
        return steered.to(device=hidden.device, dtype=hidden.dtype)


class VectorSteerer:
    """Add ``s * v`` to ``h`` at every position."""

    def __init__(self, vector: np.ndarray | torch.Tensor, strength: float = 1.0):
        self.vector = torch.as_tensor(np.asarray(vector, dtype=np.float32)).detach()
        if self.vector.ndim != 1:
            raise ValueError(f"steering vector must be 1-D [d_model], got shape {tuple(self.vector.shape)}")
        self.strength = float(strength)

    @torch.no_grad()
    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        vector = self.vector.to(device=hidden.device, dtype=hidden.dtype)
        return hidden + self.strength * vector


def build_steerer(
    condition: str,
    strength: float,
    *,
    sae: torch.nn.Module | None = None,
    centre: torch.Tensor | np.ndarray | None = None,
    vector: np.ndarray | torch.Tensor | None = None,
) -> Steerer:
    """Build the steerer of a registered condition from its SAE and centre, or its vector."""
    spec = get_condition(condition)
    if spec.kind == "sae":
        if sae is None or centre is None:
            raise ValueError(f"condition {condition!r} needs sae= and centre= (see sae.load_sae)")
        return SAESteerer(sae, torch.as_tensor(centre), strength)
    if vector is None:
        raise ValueError(f"condition {condition!r} needs vector= (see mean_difference_vector)")
    return VectorSteerer(vector, strength)


def mean_difference_vector(acts: np.ndarray, rows: pd.DataFrame) -> np.ndarray:
    """Compute the unit virtue-minus-vice direction scaled to the mean activation norm.

    ``acts`` is one pooled activation array of one layer, ``[n_positions, d_model]``
    (for example ``load_layer(folder, L)[1]["mean"]``). ``rows`` lists ground-truth rows
    with the columns ``position`` (row in ``acts``), ``polarity`` and ``typicality``; build
    it with ``moral_vectors.merge(index[["id", "position"]], on="id")``.

    Only prototype rows (``typicality == 1.0``) are used. An activation row counts once
    per pole even when several expanded rows point to it. A row that is a virtue prototype
    for one foundation and a vice prototype for another is left out of both means.
    With ``P`` the virtue positions and ``N`` the vice positions::

        d = mean(acts[P]) - mean(acts[N])
        v = d / ||d|| * mean(||acts[i]|| for i in P and N)

    Returns ``v`` as float32 ``[d_model]``.
    """
    missing = {"position", "polarity", "typicality"} - set(rows.columns)
    if missing:
        raise KeyError(
            f"rows lacks the columns {sorted(missing)}; merge the moral vectors with the "
            "activation index on 'id' to get 'position'"
        )
    acts = np.asarray(acts, dtype=np.float64)
    prototypes = rows[rows["typicality"] == PROTOTYPE]
    virtue = set(prototypes.loc[prototypes["polarity"] == "virtue", "position"].astype(int))
    vice = set(prototypes.loc[prototypes["polarity"] == "vice", "position"].astype(int))
    both = virtue & vice
    if both:
        logger.info("left out %d activation rows that are both virtue and vice prototypes", len(both))
    virtue_positions = np.array(sorted(virtue - both), dtype=np.int64)
    vice_positions = np.array(sorted(vice - both), dtype=np.int64)
    if len(virtue_positions) == 0 or len(vice_positions) == 0:
        raise ValueError(
            f"need at least one virtue and one vice prototype row, got {len(virtue_positions)} "
            f"virtue and {len(vice_positions)} vice; check that rows has typicality 1.0 rows"
        )
    out_of_range = [p for p in (*virtue_positions, *vice_positions) if not 0 <= p < len(acts)]
    if out_of_range:
        raise IndexError(
            f"positions {out_of_range[:10]} are outside acts with {len(acts)} rows; "
            "rows and acts must come from the same activation folder"
        )

    difference = acts[virtue_positions].mean(axis=0) - acts[vice_positions].mean(axis=0)
    difference_norm = np.linalg.norm(difference)
    if difference_norm == 0:
        raise ValueError("virtue and vice prototype means are identical; no direction to steer along")
    used = np.concatenate([virtue_positions, vice_positions])
    mean_norm = np.linalg.norm(acts[used], axis=1).mean()
    return (difference / difference_norm * mean_norm).astype(np.float32)


def _decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    from moral_indifference.models import decoder_layers

    return decoder_layers(model)


def _steering_hook(steerer: Steerer) -> Any:
    def hook(module: torch.nn.Module, args: tuple, output: Any) -> Any:
        # Decoder layers return a Tensor in transformers 5.25 and a tuple in older releases.
        if isinstance(output, torch.Tensor):
            return steerer(output)
        if isinstance(output, tuple):
            return (steerer(output[0]), *output[1:])
        raise TypeError(
            f"decoder block returned {type(output).__name__}; steering expects a Tensor or a tuple"
        )

    return hook


@contextmanager
def steer(model: torch.nn.Module, layer: int, steerer: Steerer) -> Iterator[None]:
    """Register the steering hook on decoder block ``layer`` and remove it on exit.

    The hook is removed when the ``with`` statement exits, also when it exits with an exception.
    """
    layers = _decoder_layers(model)
    if not 0 <= layer < len(layers):
        raise IndexError(f"layer {layer} is out of range; the model has {len(layers)} decoder blocks")
    handle = layers[layer].register_forward_hook(_steering_hook(steerer))
    try:
        yield
    finally:
        handle.remove()
