"""Categorical indifference: do virtue and vice prototypes occupy different places?

Each of the ten moral-vector slots (care, harm, ...) is a category. Its *centre* is the mean
centred representation of its prototype rows: rows sampled for the slot's foundation whose
typicality on that slot is 1.0. If a model separates virtue from vice, the virtue and vice
centres of a foundation point in different directions, so their cosine is low or negative.
A cosine near 1 means the model places "caring" and "harming" prototypes alike: it is
*indifferent* to the moral pole.

Representations are centred first (the mean over the analysed rows is subtracted), because
raw residual streams are anisotropic: every vector shares a large common direction, which
pushes all cosines towards 1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from moral_indifference.foundations import FOUNDATIONS, PROTOTYPE, SLOTS, foundation_slots, slot_foundation

logger = logging.getLogger(__name__)

__all__ = [
    "CategoricalResult",
    "categorical_indifference",
    "category_centres",
    "centre_rows",
    "cosine",
    "row_foundations",
]


@dataclass
class CategoricalResult:
    """Category centres and their cosines for one model, layer and pooling."""

    centres: dict[str, np.ndarray]
    """Centre of each slot that has at least one prototype row (float64 [d])."""
    cosine: pd.DataFrame
    """10x10 cosine matrix between centres, indexed and labelled by ``SLOTS``; NaN for a
    slot without prototypes or with a zero centre."""
    virtue_vice_cosine: dict[str, float]
    """Cosine between the virtue and the vice centre of each foundation (NaN if either is missing)."""
    mean_off_diagonal: float
    """Mean of the finite off-diagonal entries of ``cosine`` (NaN if there are none)."""
    n_prototypes: dict[str, int]
    """Number of prototype rows behind each centre (0 for a slot without prototypes)."""


def centre_rows(reps: np.ndarray) -> np.ndarray:
    """Subtract the mean over rows from ``reps`` and return a float64 copy."""
    values = np.asarray(reps, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"representations must be a 2-D array [rows, d_model], got shape {values.shape}")
    return values - values.mean(axis=0, keepdims=True)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Return the cosine between two vectors, or NaN when either has zero norm."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norm == 0.0 or not np.isfinite(norm):
        return float("nan")
    return float(np.dot(a, b) / norm)


def row_foundations(rows: pd.DataFrame) -> pd.Series:
    """Return each row's foundation: ``sampled_dimension`` when present, else ``target_dimension``."""
    column = "sampled_dimension" if "sampled_dimension" in rows.columns else "target_dimension"
    if column not in rows.columns:
        raise KeyError(
            "rows need a 'sampled_dimension' or 'target_dimension' column to know their foundation; "
            f"columns present: {', '.join(map(str, rows.columns))}"
        )
    return rows[column].astype(str)


def _check_aligned(reps: np.ndarray, rows: pd.DataFrame) -> None:
    if len(reps) != len(rows):
        raise ValueError(
            f"representations have {len(reps)} rows but the row table has {len(rows)}; "
            "align them by id before calling (compute_layer does this)"
        )


def category_centres(centred: np.ndarray, rows: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Average the centred representations of each slot's prototype rows.

    A prototype row of slot ``s`` has ``sampled_dimension == slot_foundation(s)`` and value
    ``PROTOTYPE`` (1.0) in column ``s``. Returns the centres of the slots that have prototypes
    and the prototype count of every slot.
    """
    _check_aligned(centred, rows)
    foundations = row_foundations(rows).to_numpy()
    centres: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for slot in SLOTS:
        if slot not in rows.columns:
            raise KeyError(f"row table has no column {slot!r}; it needs the 10 slot columns {', '.join(SLOTS)}")
        mask = (foundations == slot_foundation(slot)) & np.isclose(rows[slot].to_numpy(dtype=np.float64), PROTOTYPE)
        counts[slot] = int(mask.sum())
        if counts[slot] > 0:
            centres[slot] = centred[mask].mean(axis=0)
        else:
            logger.warning("slot %r has no prototype rows; its centre and cosines are NaN", slot)
    return centres, counts


def categorical_indifference(reps: np.ndarray, rows: pd.DataFrame) -> CategoricalResult:
    """Compute category centres, the 10x10 centre cosine matrix and virtue-vice cosines.

    ``reps`` are raw pooled representations [n, d], row-aligned with ``rows`` (diagnosis
    sample rows). They are centred here over all ``rows``.
    """
    _check_aligned(reps, rows)
    centred = centre_rows(reps)
    centres, counts = category_centres(centred, rows)

    matrix = np.full((len(SLOTS), len(SLOTS)), np.nan)
    for i, first in enumerate(SLOTS):
        for j, second in enumerate(SLOTS):
            if first in centres and second in centres:
                matrix[i, j] = cosine(centres[first], centres[second])
    cosine_df = pd.DataFrame(matrix, index=pd.Index(SLOTS, name="slot"), columns=list(SLOTS))

    virtue_vice = {}
    for foundation in FOUNDATIONS:
        virtue, vice = foundation_slots(foundation)
        virtue_vice[foundation] = float(cosine_df.loc[virtue, vice])

    off_diagonal = matrix[~np.eye(len(SLOTS), dtype=bool)]
    finite = off_diagonal[np.isfinite(off_diagonal)]
    mean_off_diagonal = float(finite.mean()) if finite.size else float("nan")

    return CategoricalResult(
        centres=centres,
        cosine=cosine_df,
        virtue_vice_cosine=virtue_vice,
        mean_off_diagonal=mean_off_diagonal,
        n_prototypes=counts,
    )
