"""Dimensional indifference: can a linear map read the moral vector off the activations?

A *linear probe* maps a raw pooled activation (d_model values) to the 10-slot moral vector
of its annotation. If moral content is linearly encoded, the probe explains much of the
variance of held-out moral vectors (high R²). The probe is one ``torch.nn.Linear`` trained
with MSE loss and AdamW (lr 1e-3, weight decay 1e-4) on batches of 512 for up to 100 epochs.
Training stops early after 10 epochs without a lower validation loss, and
``ReduceLROnPlateau`` halves the learning rate when the validation loss plateaus.

The probe uses raw (uncentred) activations, standardised per feature with the mean and
standard deviation of the *training* rows (features with zero training variance are only
shifted). Train, validation and test rows come from the ``split`` column of the moral-vectors
table, which is assigned per annotation id, so one annotation never appears in two splits.
The table has one row per (annotation, foundation), all with the same moral vector, so the
rows are first reduced to one per annotation id.

Reported on the test split:

- ``r2``: plain R² (``sklearn.metrics.r2_score``, ``multioutput="uniform_average"``) over the
  slots whose test values vary. A slot that is constant on the test rows has no defined R²:
  it is NaN in ``r2_per_slot`` and left out of the average.
- ``r2_variance_weighted``: the same slots averaged with weights proportional to each slot's
  test variance (``multioutput="variance_weighted"``). Rare slots, whose few non-zero test
  rows make their R² large and negative, then weigh less than in the plain average.
- ``adjusted_r2``: ``1 - (1 - r2) * (n - 1) / (n - p - 1)`` with ``n`` the number of test rows
  and ``p`` = d_model, the number of probe inputs. It is NaN when ``n - p - 1 <= 0``.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import r2_score

from moral_indifference.foundations import SLOTS

logger = logging.getLogger(__name__)

__all__ = ["ProbeConfig", "ProbeResult", "adjusted_r2", "annotation_rows", "dimensional_indifference", "train_probe"]

SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class ProbeConfig:
    """Training settings of the linear probe."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 512
    max_epochs: int = 100
    patience: int = 10
    """Epochs without a lower validation loss before training stops; the best epoch's weights are kept."""
    lr_factor: float = 0.5
    lr_patience: int = 5
    """Epochs without improvement before ``ReduceLROnPlateau`` halves the learning rate.
    NOTE: the method text fixes only the factor; 5 is our choice, so that the rate can drop
    before early stopping (patience 10) ends training."""
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1:
            raise ValueError(
                f"batch_size, max_epochs and patience must be positive, got "
                f"{self.batch_size}, {self.max_epochs}, {self.patience}"
            )


@dataclass
class ProbeResult:
    """Test-split scores of the linear probe for one model, layer and pooling."""

    r2: float
    adjusted_r2: float
    r2_per_slot: dict[str, float]
    """R² of each slot on the test split; NaN for a slot constant on the test rows."""
    n_train: int
    n_val: int
    n_test: int
    n_features: int
    epochs: int
    """Epochs trained before early stopping or ``max_epochs``."""
    best_val_loss: float
    r2_variance_weighted: float = float("nan")
    """R² averaged over the varying slots with weights proportional to their test variance."""


def annotation_rows(vectors: pd.DataFrame) -> pd.DataFrame:
    """Reduce the expanded moral-vectors table to one row per annotation id (the first).

    Raises ``ValueError`` if one id carries two different splits, which would leak an
    annotation across splits.
    """
    for column in ("id", "split", *SLOTS):
        if column not in vectors.columns:
            raise KeyError(f"moral-vectors table has no column {column!r}")
    splits_per_id = vectors.groupby("id")["split"].nunique()
    leaking = splits_per_id[splits_per_id > 1]
    if len(leaking):
        raise ValueError(
            f"annotation id {leaking.index[0]!r} appears in more than one split of the moral-vectors "
            "table; the split must be assigned per annotation id"
        )
    invalid = set(vectors["split"].astype(str)) - set(SPLITS)
    if invalid:
        raise ValueError(f"moral-vectors table has invalid split values {sorted(invalid)}; valid values: {', '.join(SPLITS)}")
    return vectors.drop_duplicates(subset="id", keep="first").reset_index(drop=True)


def adjusted_r2(r2: float, n: int, p: int) -> float:
    """Return ``1 - (1 - r2) * (n - 1) / (n - p - 1)``, or NaN when ``n - p - 1 <= 0`` or r2 is NaN."""
    if n - p - 1 <= 0 or not np.isfinite(r2):
        return float("nan")
    return float(1.0 - (1.0 - r2) * (n - 1) / (n - p - 1))


def _r2_scores(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float, dict[str, float]]:
    """Return the plain and variance-weighted R² over varying slots, and the R² per slot."""
    varying = np.ptp(y_true, axis=0) > 0
    per_slot = {slot: float("nan") for slot in SLOTS}
    if len(y_true) < 2 or not varying.any():
        return float("nan"), float("nan"), per_slot
    raw = r2_score(y_true[:, varying], y_pred[:, varying], multioutput="raw_values")
    for slot, value in zip(np.asarray(SLOTS)[varying], raw, strict=True):
        per_slot[str(slot)] = float(value)
    mean = float(r2_score(y_true[:, varying], y_pred[:, varying], multioutput="uniform_average"))
    weighted = float(r2_score(y_true[:, varying], y_pred[:, varying], multioutput="variance_weighted"))
    return mean, weighted, per_slot


def train_probe(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, config: ProbeConfig
) -> tuple[torch.nn.Linear, int, float]:
    """Train a linear map on standardised inputs; return the best-validation model, epochs and loss."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = torch.device(config.device)

    inputs = torch.as_tensor(x_train, dtype=torch.float32, device=device)
    targets = torch.as_tensor(y_train, dtype=torch.float32, device=device)
    val_inputs = torch.as_tensor(x_val, dtype=torch.float32, device=device)
    val_targets = torch.as_tensor(y_val, dtype=torch.float32, device=device)

    model = torch.nn.Linear(inputs.shape[1], targets.shape[1]).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.lr_factor, patience=config.lr_patience
    )
    loss_fn = torch.nn.MSELoss()

    best_loss = float("inf")
    best_state = copy.deepcopy(model.state_dict())
    stale_epochs = 0
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        order = torch.randperm(len(inputs), generator=generator).to(device)
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(inputs[batch]), targets[batch])
            loss.backward()
            optimizer.step()

        model.eval()
        with torch.inference_mode():
            val_loss = float(loss_fn(model(val_inputs), val_targets))
        scheduler.step(val_loss)
        logger.debug("probe epoch %d: validation MSE %.6f", epoch, val_loss)

        if val_loss < best_loss:
            best_loss = val_loss
            best_state = copy.deepcopy(model.state_dict())
            stale_epochs = 0
        else:
            stale_epochs += 1
            if stale_epochs >= config.patience:
                break

    model.load_state_dict(best_state)
    model.eval()
    return model, epoch, best_loss


def dimensional_indifference(reps: np.ndarray, rows: pd.DataFrame, config: ProbeConfig | None = None) -> ProbeResult:
    """Fit the linear probe on the train split and score it on the test split.

    ``reps`` are raw pooled activations row-aligned with ``rows``, which must already have one
    row per annotation id (see :func:`annotation_rows`) and the ``split`` and slot columns.
    """
    config = config or ProbeConfig()
    if len(reps) != len(rows):
        raise ValueError(f"representations have {len(reps)} rows but the row table has {len(rows)}")
    if rows["id"].duplicated().any():
        raise ValueError("probe rows must have one row per annotation id; reduce them with annotation_rows()")

    features = np.asarray(reps, dtype=np.float64)
    targets = rows[list(SLOTS)].to_numpy(dtype=np.float64)
    split = rows["split"].astype(str).to_numpy()
    masks = {name: split == name for name in SPLITS}
    for name, mask in masks.items():
        if not mask.any():
            raise ValueError(f"the moral-vectors rows have no {name!r} split rows; the probe needs train, val and test rows")

    mean = features[masks["train"]].mean(axis=0)
    std = features[masks["train"]].std(axis=0)
    std[std == 0] = 1.0
    standardised = (features - mean) / std

    model, epochs, best_loss = train_probe(
        standardised[masks["train"]],
        targets[masks["train"]],
        standardised[masks["val"]],
        targets[masks["val"]],
        config,
    )
    with torch.inference_mode():
        test_inputs = torch.as_tensor(standardised[masks["test"]], dtype=torch.float32, device=config.device)
        predictions = model(test_inputs).cpu().numpy().astype(np.float64)

    y_test = targets[masks["test"]]
    r2, r2_weighted, per_slot = _r2_scores(y_test, predictions)
    n_test = int(masks["test"].sum())
    return ProbeResult(
        r2=r2,
        adjusted_r2=adjusted_r2(r2, n_test, features.shape[1]),
        r2_variance_weighted=r2_weighted,
        r2_per_slot=per_slot,
        n_train=int(masks["train"].sum()),
        n_val=int(masks["val"].sum()),
        n_test=n_test,
        n_features=int(features.shape[1]),
        epochs=epochs,
        best_val_loss=best_loss,
    )
