"""Realignment: fine-tune an SAE's moral latents so that they follow the moral topology.

After feature isolation picks the moral latents of a trained SAE, realignment fine-tunes
only those latents: their encoder rows (``W_enc[:, selected]``), encoder biases
(``b_enc[selected]``) and decoder rows (``W_dec[selected, :]``, the method's decoder
*columns*). Every other SAE parameter stays bit-for-bit unchanged. The trainable slices
are separate small tensors, so AdamW weight decay cannot reach the frozen entries. They
are written back into a deep copy of the SAE at the end, so the input SAE is untouched.

A learnable linear readout maps the selected latents' activations to the ten slots through
a sigmoid. The loss is a weighted sum of six terms (a weight of 0 skips its term):

- reconstruction: mean squared error between the reconstruction and the centred input;
- sparsity: mean ``|z|`` over the selected latents (the only activations it can change);
- alignment: mean squared error between readout and moral vector on the vector's
  non-zero entries;
- polarity: hinge ``max(0, margin - (readout[own pole] - readout[opposite pole]))`` on
  non-neutral rows, the poles being those of the row's target foundation;
- typicality: pairwise hinge per slot over rows of that slot's foundation, so that
  ``readout[slot]`` follows the rows' values on that slot (typicality on the slot's pole,
  0 for the other pole and neutral rows);
- mono: mean activation of each selected mono-semantic latent on non-neutral rows whose
  own slot (the target foundation's pole of the row) is not that latent's dominant slot.

Training rows are drawn with replacement by weights from :func:`sampler_weights`. AdamW
with a one-cycle learning-rate schedule runs with early stopping on the validation loss,
and the best epoch's parameters are kept. :func:`before_after` compares feature diagnostics
and indifference measures of the SAE before and after realignment.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sae_lens import SAE
from torch import nn

from moral_indifference.features import (
    FeatureConfig,
    SelectedLatents,
    analyse_features,
    summarise_features,
)
from moral_indifference.foundations import FOUNDATIONS, PROTOTYPE, SLOTS
from moral_indifference.sae import TrainedSAE, encode, normalise_decoder_rows, reconstruct, save_sae

logger = logging.getLogger(__name__)

LOSS_TERMS = ("reconstruction", "sparsity", "alignment", "polarity", "typicality", "mono")
OUTPUT_COLUMNS = ("stage", "measure", "statistic", "category", "value", "n")
REQUIRED_ROW_COLUMNS = (*SLOTS, "typicality", "polarity", "target_dimension")


@dataclass(frozen=True)
class RealignmentConfig:
    """Settings of the realignment stage; build from a plain dict with ``RealignmentConfig(**d)``.

    Loss weights (``*_weight``) of 0 skip their term. Sampler bands by row typicality t:
    prototype (t == 1.0) gets ``band_weights[0]``, 0.5 <= t < 1.0 gets ``band_weights[1]``,
    0 < t < 0.5 gets ``band_weights[2]`` and neutral rows (t == 0) get ``band_weights[3]``.
    ``reference_sampler_bug`` tests the 0.5 band before the prototype band, as the reference
    code does, so prototypes get ``band_weights[1]``. The less frequent polarity (virtue or
    vice, over all training rows) is up-weighted by ``n_major / n_minor``, at most
    ``max_minority_factor``.
    """

    reconstruction_weight: float = 1.0
    sparsity_weight: float = 1e-4
    alignment_weight: float = 0.5
    polarity_weight: float = 0.3
    typicality_weight: float = 0.2
    mono_weight: float = 0.1
    polarity_margin: float = 0.1
    typicality_margin: float = 0.05
    lr: float = 1e-4
    weight_decay: float = 0.01
    batch_size: int = 512
    epochs: int = 20
    patience: int = 3
    band_weights: tuple[float, float, float, float] = (3.0, 2.0, 1.5, 0.3)
    max_minority_factor: float = 3.0
    reference_sampler_bug: bool = False
    unit_norm_decoder: bool = True
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        for term in LOSS_TERMS:
            if getattr(self, f"{term}_weight") < 0:
                raise ValueError(f"{term}_weight must be >= 0, got {getattr(self, f'{term}_weight')}")
        if len(self.band_weights) != 4:
            raise ValueError(f"band_weights needs 4 values (prototype, >=0.5, >0, neutral), got {self.band_weights}")
        object.__setattr__(self, "band_weights", tuple(float(w) for w in self.band_weights))

    def weight(self, term: str) -> float:
        """Return the loss weight of ``term``."""
        if term not in LOSS_TERMS:
            raise KeyError(f"unknown loss term {term!r}; valid names: {', '.join(LOSS_TERMS)}")
        return float(getattr(self, f"{term}_weight"))


@dataclass
class RealignmentResult:
    """The realigned SAE (a new SAELens SAE), its slot readout and the per-epoch log."""

    sae: SAE[Any]
    readout: nn.Linear
    history: list[dict[str, Any]]
    selected: tuple[int, ...]
    config: dict[str, Any]


def sampler_weights(rows: pd.DataFrame, config: RealignmentConfig) -> np.ndarray:
    """Return one sampling weight per row from its typicality band and polarity."""
    typicality = rows["typicality"].to_numpy(dtype=np.float64)
    prototype, upper, lower, neutral = config.band_weights
    # np.select takes the first condition that holds, so the order of the tests matters.
    if config.reference_sampler_bug:
        # Reference ordering: the 0.5 test comes first, so the prototype branch never fires.
        conditions = [typicality >= 0.5, typicality >= PROTOTYPE, typicality > 0]
        choices = [upper, prototype, lower]
    else:
        conditions = [typicality >= PROTOTYPE, typicality >= 0.5, typicality > 0]
        choices = [prototype, upper, lower]
    weights = np.select(conditions, choices, default=neutral).astype(np.float64)

    polarity = rows["polarity"].to_numpy()
    n_virtue = int((polarity == "virtue").sum())
    n_vice = int((polarity == "vice").sum())
    if n_virtue and n_vice and n_virtue != n_vice:
        minority = "virtue" if n_virtue < n_vice else "vice"
        factor = min(max(n_virtue, n_vice) / min(n_virtue, n_vice), config.max_minority_factor)
        weights[polarity == minority] *= factor
    return weights


@dataclass
class _RowTargets:
    """Per-row tensors that the loss terms need."""

    vectors: torch.Tensor  # [n, 10] moral vector
    own_slot: torch.Tensor  # [n] slot index of the row's pole of its target foundation, -1 neutral
    opposite_slot: torch.Tensor  # [n] the other pole of that foundation, -1 neutral
    foundation: torch.Tensor  # [n] index of target_dimension in FOUNDATIONS

    def take(self, index: torch.Tensor) -> _RowTargets:
        return _RowTargets(
            self.vectors[index], self.own_slot[index], self.opposite_slot[index], self.foundation[index]
        )


def _row_targets(rows: pd.DataFrame, name: str) -> _RowTargets:
    missing = [column for column in REQUIRED_ROW_COLUMNS if column not in rows.columns]
    if missing:
        raise KeyError(f"{name} lacks columns {missing}; pass rows of the moral-vector table")
    unknown = sorted(set(rows["target_dimension"]) - set(FOUNDATIONS))
    if unknown:
        raise ValueError(f"{name} has unknown target_dimension values {unknown}; valid names: {', '.join(FOUNDATIONS)}")
    foundation = rows["target_dimension"].map(FOUNDATIONS.index).to_numpy(dtype=np.int64)
    polarity = rows["polarity"].to_numpy()
    own = np.where(polarity == "virtue", 2 * foundation, np.where(polarity == "vice", 2 * foundation + 1, -1))
    opposite = np.where(own >= 0, own ^ 1, -1)
    return _RowTargets(
        vectors=torch.tensor(rows[list(SLOTS)].to_numpy(dtype=np.float32)),
        own_slot=torch.tensor(own, dtype=torch.long),
        opposite_slot=torch.tensor(opposite, dtype=torch.long),
        foundation=torch.tensor(foundation, dtype=torch.long),
    )


class _SelectedSlices(nn.Module):
    """Trainable copies of the selected latents' SAE slices plus the slot readout."""

    def __init__(self, sae: SAE[Any], selected: torch.Tensor, seed: int) -> None:
        super().__init__()
        self.W_enc = nn.Parameter(sae.W_enc.detach()[:, selected].clone())
        self.b_enc = nn.Parameter(sae.b_enc.detach()[selected].clone())
        self.W_dec = nn.Parameter(sae.W_dec.detach()[selected].clone())
        torch.manual_seed(seed)
        self.readout = nn.Linear(len(selected), len(SLOTS))


def _check_sae(sae: SAE[Any]) -> None:
    cfg = sae.cfg
    if not hasattr(sae, "b_enc"):
        raise ValueError(f"realignment needs an SAE with an encoder bias; {type(sae).__name__} has none")
    if cfg.normalize_activations != "none" or cfg.reshape_activations != "none":
        raise ValueError(
            "realignment supports SAEs with normalize_activations='none' and reshape_activations='none', "
            f"got {cfg.normalize_activations!r} and {cfg.reshape_activations!r}"
        )
    if getattr(cfg, "rescale_acts_by_decoder_norm", False):
        raise ValueError(
            "realignment does not support rescale_acts_by_decoder_norm=True; fold the decoder norms "
            "first (sae.fold_W_dec_norm()) and set it to False"
        )


class _Realigner:
    """Forward pass and loss terms of a frozen SAE with trainable selected slices."""

    def __init__(
        self,
        sae: SAE[Any],
        selected: torch.Tensor,
        mono_positions: torch.Tensor,
        mono_slots: torch.Tensor,
        config: RealignmentConfig,
    ) -> None:
        self.sae = sae
        self.selected = selected
        self.mono_positions = mono_positions
        self.mono_slots = mono_slots
        self.config = config
        self.slices = _SelectedSlices(sae, selected, config.seed)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (reconstruction, selected activations, slot readout) for centred rows ``x``."""
        sae = self.sae
        sae_in = x - sae.b_dec.detach() * sae.cfg.apply_b_dec_to_input
        with torch.no_grad():
            frozen_pre = sae_in @ sae.W_enc + sae.b_enc
        selected_pre = sae_in @ self.slices.W_enc + self.slices.b_enc
        hidden_pre = frozen_pre.index_copy(1, self.selected, selected_pre)
        z = sae.activation_fn(hidden_pre)
        z_selected = z[:, self.selected]
        # The frozen latents' activations depend on frozen parameters only, so their part of
        # the reconstruction is computed without gradient through the full decoder.
        with torch.no_grad():
            frozen_part = z.detach().index_fill(1, self.selected, 0.0) @ sae.W_dec
        reconstruction = frozen_part + z_selected @ self.slices.W_dec + sae.b_dec.detach()
        readout = torch.sigmoid(self.slices.readout(z_selected))
        return reconstruction, z_selected, readout

    def losses(self, x: torch.Tensor, targets: _RowTargets) -> dict[str, torch.Tensor]:
        """Return every loss term (0 for a term whose weight is 0) and their weighted ``total``."""
        reconstruction, z_selected, readout = self.forward(x)
        zero = x.new_zeros(())
        terms: dict[str, torch.Tensor] = {}
        for term in LOSS_TERMS:
            if self.config.weight(term) == 0.0:
                terms[term] = zero
                continue
            if term == "reconstruction":
                terms[term] = ((reconstruction - x) ** 2).mean()
            elif term == "sparsity":
                terms[term] = z_selected.abs().mean()
            elif term == "alignment":
                terms[term] = _alignment_loss(readout, targets)
            elif term == "polarity":
                terms[term] = _polarity_loss(readout, targets, self.config.polarity_margin)
            elif term == "typicality":
                terms[term] = _typicality_loss(readout, targets, self.config.typicality_margin)
            else:
                terms[term] = _mono_loss(z_selected, targets, self.mono_positions, self.mono_slots)
        terms["total"] = sum((self.config.weight(t) * terms[t] for t in LOSS_TERMS), zero)
        return terms


def _alignment_loss(readout: torch.Tensor, targets: _RowTargets) -> torch.Tensor:
    mask = targets.vectors != 0
    if not mask.any():
        return readout.new_zeros(())
    return ((readout - targets.vectors)[mask] ** 2).mean()


def _polarity_loss(readout: torch.Tensor, targets: _RowTargets, margin: float) -> torch.Tensor:
    rows = torch.nonzero(targets.own_slot >= 0).squeeze(1)
    if rows.numel() == 0:
        return readout.new_zeros(())
    own = readout[rows, targets.own_slot[rows]]
    opposite = readout[rows, targets.opposite_slot[rows]]
    return torch.relu(margin - (own - opposite)).mean()


def _typicality_loss(readout: torch.Tensor, targets: _RowTargets, margin: float) -> torch.Tensor:
    hinges = []
    for slot_index in range(len(SLOTS)):
        rows = targets.foundation == slot_index // 2
        if int(rows.sum()) < 2:
            continue
        value = targets.vectors[rows, slot_index]
        predicted = readout[rows, slot_index]
        # Pair (i, j) counts when row i is more typical than row j on this slot.
        ordered = value[:, None] > value[None, :]
        if not ordered.any():
            continue
        gap = predicted[:, None] - predicted[None, :]
        hinges.append(torch.relu(margin - gap)[ordered])
    if not hinges:
        return readout.new_zeros(())
    return torch.cat(hinges).mean()


def _mono_loss(
    z_selected: torch.Tensor,
    targets: _RowTargets,
    mono_positions: torch.Tensor,
    mono_slots: torch.Tensor,
) -> torch.Tensor:
    if mono_positions.numel() == 0:
        return z_selected.new_zeros(())
    own = targets.own_slot[:, None]
    off_slot = (own >= 0) & (own != mono_slots[None, :])
    if not off_slot.any():
        return z_selected.new_zeros(())
    return z_selected[:, mono_positions][off_slot].mean()


def _mono_latents(
    selected: tuple[int, ...], feature_table: pd.DataFrame
) -> tuple[torch.Tensor, torch.Tensor]:
    missing = [column for column in ("latent", "class", "dominant_slot") if column not in feature_table]
    if missing:
        raise KeyError(f"feature table lacks columns {missing}; build it with features.analyse_features")
    table = feature_table.set_index("latent")
    positions, slots = [], []
    for position, latent in enumerate(selected):
        if latent in table.index and table.at[latent, "class"] == "mono":
            positions.append(position)
            slots.append(SLOTS.index(table.at[latent, "dominant_slot"]))
    return torch.tensor(positions, dtype=torch.long), torch.tensor(slots, dtype=torch.long)


def _evaluate(
    realigner: _Realigner, x: torch.Tensor, targets: _RowTargets, batch_size: int
) -> dict[str, float]:
    sums: dict[str, float] = {}
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            index = torch.arange(start, min(start + batch_size, x.shape[0]))
            terms = realigner.losses(x[index], targets.take(index))
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value) * len(index)
    return {name: value / max(x.shape[0], 1) for name, value in sums.items()}


def _centred(acts: np.ndarray, centre: np.ndarray | torch.Tensor, rows: pd.DataFrame, name: str, device: str) -> torch.Tensor:
    acts = np.asarray(acts, dtype=np.float32)
    if acts.ndim != 2 or acts.shape[0] != len(rows):
        raise ValueError(
            f"{name} acts have shape {acts.shape} but {name} rows has {len(rows)} rows; "
            "the activations must be row-aligned with the rows"
        )
    centre_array = centre.detach().cpu().numpy() if isinstance(centre, torch.Tensor) else np.asarray(centre)
    return torch.from_numpy(acts - centre_array.astype(np.float32)).to(device)


def realign(
    sae: SAE[Any],
    centre: np.ndarray | torch.Tensor,
    train_acts: np.ndarray,
    train_rows: pd.DataFrame,
    val_acts: np.ndarray,
    val_rows: pd.DataFrame,
    selected: SelectedLatents | tuple[int, ...],
    feature_table: pd.DataFrame,
    config: RealignmentConfig | None = None,
) -> RealignmentResult:
    """Fine-tune the selected latents of ``sae`` on moral rows; return a new realigned SAE.

    ``train_acts``/``val_acts`` are raw pooled representations, row-aligned with the
    moral-vector rows ``train_rows``/``val_rows``; ``centre`` is the SAE's training mean.
    ``feature_table`` (from :func:`features.analyse_features`) names the mono-semantic
    latents and their dominant slots for the mono penalty. ``sae`` is not modified.
    """
    config = config or RealignmentConfig()
    _check_sae(sae)
    indices = tuple(selected.indices) if isinstance(selected, SelectedLatents) else tuple(selected)
    if not indices:
        raise ValueError("no latents selected; realignment needs at least one selected latent")
    if min(indices) < 0 or max(indices) >= sae.cfg.d_sae:
        raise ValueError(f"selected latents must lie in [0, {sae.cfg.d_sae}), got {min(indices)}..{max(indices)}")

    device = config.device
    frozen = copy.deepcopy(sae).to(device)
    frozen.eval()
    for parameter in frozen.parameters():
        parameter.requires_grad_(False)
    selected_tensor = torch.tensor(indices, dtype=torch.long, device=device)
    mono_positions, mono_slots = _mono_latents(indices, feature_table)
    realigner = _Realigner(frozen, selected_tensor, mono_positions, mono_slots, config)
    realigner.slices.to(device)

    x_train = _centred(train_acts, centre, train_rows, "train", device)
    x_val = _centred(val_acts, centre, val_rows, "val", device)
    train_targets = _row_targets(train_rows, "train rows")
    val_targets = _row_targets(val_rows, "val rows")
    weights = torch.tensor(sampler_weights(train_rows, config), dtype=torch.float64)

    optimizer = torch.optim.AdamW(realigner.slices.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(math.ceil(len(train_rows) / config.batch_size), 1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=steps_per_epoch * config.epochs
    )
    generator = torch.Generator().manual_seed(config.seed)

    history: list[dict[str, Any]] = []
    best_loss = math.inf
    best_state = copy.deepcopy(realigner.slices.state_dict())
    epochs_without_improvement = 0
    for epoch in range(config.epochs):
        order = torch.multinomial(weights, len(train_rows), replacement=True, generator=generator)
        sums = {name: 0.0 for name in (*LOSS_TERMS, "total")}
        for start in range(0, len(order), config.batch_size):
            index = order[start : start + config.batch_size]
            terms = realigner.losses(x_train[index.to(device)], train_targets.take(index))
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            optimizer.step()
            scheduler.step()
            if config.unit_norm_decoder:
                normalise_decoder_rows(realigner.slices)
            for name, value in terms.items():
                sums[name] += float(value.detach()) * len(index)

        validation = _evaluate(realigner, x_val, val_targets, config.batch_size)
        record: dict[str, Any] = {"epoch": epoch, "lr": scheduler.get_last_lr()[0]}
        record.update({f"train_{name}": value / len(order) for name, value in sums.items()})
        record.update({f"val_{name}": value for name, value in validation.items()})
        history.append(record)
        logger.info("realignment epoch %d: train loss %.5g, val loss %.5g", epoch, record["train_total"], record["val_total"])

        if validation["total"] < best_loss:
            best_loss = validation["total"]
            best_state = copy.deepcopy(realigner.slices.state_dict())
            epochs_without_improvement = 0
        else:
            epochs_without_improvement += 1
            if epochs_without_improvement >= config.patience:
                logger.info("early stop after epoch %d: no val improvement for %d epochs", epoch, config.patience)
                break

    realigner.slices.load_state_dict(best_state)
    realigned = copy.deepcopy(sae)
    with torch.no_grad():
        selected_cpu = selected_tensor.to(realigned.W_enc.device)
        realigned.W_enc[:, selected_cpu] = realigner.slices.W_enc.detach().to(realigned.W_enc.device)
        realigned.b_enc[selected_cpu] = realigner.slices.b_enc.detach().to(realigned.b_enc.device)
        realigned.W_dec[selected_cpu] = realigner.slices.W_dec.detach().to(realigned.W_dec.device)
    readout = copy.deepcopy(realigner.slices.readout).cpu()
    return RealignmentResult(
        sae=realigned, readout=readout, history=history, selected=indices, config=asdict(config)
    )


def save_realignment(result: RealignmentResult, centre: np.ndarray | torch.Tensor, folder: str | Path) -> Path:
    """Write the realigned SAE in the SAE folder format (see :func:`sae.save_sae`)."""
    centre_array = centre.detach().cpu().numpy() if isinstance(centre, torch.Tensor) else np.asarray(centre)
    trained = TrainedSAE(
        sae=result.sae,
        centre=centre_array.astype(np.float32),
        history=result.history,
        config={**result.config, "selected": list(result.selected)},
    )
    folder = save_sae(trained, folder)
    torch.save(result.readout.state_dict(), Path(folder) / "readout.pt")
    return folder


def _feature_records(summary: dict[str, Any]) -> list[dict[str, Any]]:
    records = []
    for key in ("n_mono", "n_poly", "n_weak"):
        records.append(
            {"measure": "features", "statistic": key, "category": "", "value": float(summary[key]), "n": summary["n_latents"]}
        )
    for group in ("all", "mono", "poly", "weak"):
        stats = summary[group]
        for key, value in stats.items():
            if key == "n":
                continue
            records.append(
                {"measure": "features", "statistic": key, "category": group, "value": float(value), "n": stats["n"]}
            )
    return records


def before_after(
    sae_before: SAE[Any],
    sae_after: SAE[Any],
    centre: np.ndarray | torch.Tensor,
    val_acts: np.ndarray,
    val_rows: pd.DataFrame,
    diagnosis_acts: np.ndarray,
    diagnosis_index: pd.DataFrame,
    diagnosis_rows: pd.DataFrame,
    vectors: pd.DataFrame | None = None,
    indifference_config: Any = None,
    feature_config: FeatureConfig | None = None,
    measures: tuple[str, ...] = ("categorical", "gradient"),
) -> pd.DataFrame:
    """Compare feature diagnostics and indifference measures before and after realignment.

    Feature diagnostics run on the latents of ``val_acts`` (row-aligned with ``val_rows``).
    The indifference measures run on each SAE's reconstructions of ``diagnosis_acts``,
    whose rows are named by ``diagnosis_index`` (column ``id``, as in an activations
    index.parquet); ``diagnosis_rows`` is the diagnosis sample. Returns a long table with
    columns ``stage`` ("before" | "after"), ``measure``, ``statistic``, ``category``,
    ``value`` and ``n``.
    """
    from moral_indifference.indifference import IndifferenceConfig, compute_layer

    indifference_config = indifference_config or IndifferenceConfig()
    # compute_layer runs every configured pooling; here the only "pooling" is the reconstruction.
    indifference_config = replace(indifference_config, poolings=("reconstruction",), measures=tuple(measures))
    records: list[dict[str, Any]] = []
    for stage, sae in (("before", sae_before), ("after", sae_after)):
        z = encode(sae, centre, val_acts).numpy()
        summary = summarise_features(analyse_features(z, val_rows, feature_config))
        records.extend({"stage": stage, **record} for record in _feature_records(summary))

        recon = reconstruct(sae, centre, diagnosis_acts).numpy()
        result = compute_layer(
            {"reconstruction": recon}, diagnosis_index, diagnosis_rows, vectors, indifference_config, measures
        )
        layer_records = result.records.drop(columns="pooling")
        layer_records.insert(0, "stage", stage)
        records.extend(layer_records.to_dict("records"))
    table = pd.DataFrame.from_records(records, columns=list(OUTPUT_COLUMNS))
    table["value"] = table["value"].astype(np.float64)
    table["n"] = table["n"].astype(np.int64)
    return table
