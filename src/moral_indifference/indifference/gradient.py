"""Gradient indifference: does closeness to a category centre follow human typicality?

Prototype Theory predicts graded membership: a more typical "harm" action should sit closer
to the harm centre than a marginal one. The *proximity* of a row is the cosine between its
centred representation and the centre of its own category: a virtue row is compared with its
foundation's virtue centre, a vice row with the vice centre. The measure correlates
proximity with the human typicality of the row. Neutral rows (typicality 0 on both poles) enter twice, once
against each pole of their foundation, with label 0, so that they anchor the low end of
both gradients. A model without a gradient gives correlations near 0.

The centres are those of :mod:`.categorical` (mean centred representation of the prototype
rows), computed from the same centred rows, so the prototypes themselves are part of the
gradient at typicality 1.0. A prototype is then compared with a centre that contains
itself, which raises its proximity by about ``1 / sqrt(n_prototypes)`` even for random
representations. ``GradientConfig(leave_one_out=True)`` compares each prototype with the
centre of the *other* prototypes of its category instead. The default (False) is the
method as published.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from moral_indifference.foundations import SLOTS, foundation_slots

from moral_indifference.foundations import PROTOTYPE, slot_foundation

from .categorical import category_centres, centre_rows, cosine, row_foundations

logger = logging.getLogger(__name__)

__all__ = [
    "Correlation",
    "GradientConfig",
    "GradientResult",
    "correlate",
    "gradient_indifference",
    "gradient_points",
    "leave_one_out_centres",
]


@dataclass(frozen=True)
class GradientConfig:
    """Settings of the gradient measure.

    ``leave_one_out``: compare each prototype row with the centre of the other prototypes of
    its category (a category with one prototype then gives that row no point).
    """

    leave_one_out: bool = False

MIN_POINTS = 3
"""Minimum number of points for a correlation; with fewer, both statistics are NaN."""


@dataclass(frozen=True)
class Correlation:
    """Spearman and Pearson correlation between proximity and typicality over ``n`` points."""

    spearman: float
    pearson: float
    n: int


@dataclass
class GradientResult:
    """Proximity-typicality correlations for one model, layer and pooling."""

    points: pd.DataFrame
    """One row per (row, compared centre): ``row``, ``id``, ``category`` (slot), ``polarity``,
    ``typicality``, ``proximity``. Points whose category has no centre are dropped."""
    overall: Correlation
    per_category: dict[str, Correlation]
    """Correlation per slot over the points compared with that slot's centre."""


def correlate(proximity: np.ndarray, typicality: np.ndarray) -> Correlation:
    """Return Spearman and Pearson correlations, NaN when n < 3 or either input is constant."""
    n = int(len(proximity))
    if n < MIN_POINTS or np.ptp(proximity) == 0 or np.ptp(typicality) == 0:
        return Correlation(float("nan"), float("nan"), n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        spearman = float(stats.spearmanr(proximity, typicality).statistic)
        pearson = float(stats.pearsonr(proximity, typicality).statistic)
    return Correlation(spearman, pearson, n)


def leave_one_out_centres(
    centred: np.ndarray, rows: pd.DataFrame, centres: dict[str, np.ndarray]
) -> dict[tuple[int, str], np.ndarray | None]:
    """Return, for each (row, slot) of a prototype row, its category centre without that row.

    The value is None when the row is its category's only prototype.
    """
    foundations = row_foundations(rows).to_numpy()
    replaced: dict[tuple[int, str], np.ndarray | None] = {}
    for slot, centre in centres.items():
        mask = (foundations == slot_foundation(slot)) & np.isclose(rows[slot].to_numpy(dtype=np.float64), PROTOTYPE)
        count = int(mask.sum())
        for position in np.flatnonzero(mask):
            replaced[(int(position), slot)] = (
                (count * centre - centred[position]) / (count - 1) if count > 1 else None
            )
    return replaced


def gradient_points(
    centred: np.ndarray,
    rows: pd.DataFrame,
    centres: dict[str, np.ndarray],
    own_centres: dict[tuple[int, str], np.ndarray | None] | None = None,
) -> pd.DataFrame:
    """Pair each row with the centre(s) it is compared with and compute its proximity.

    Virtue and vice rows use the slot of their polarity within their foundation and their
    ``typicality``. Neutral rows give two points, one per pole, with typicality 0.
    ``own_centres`` (see :func:`leave_one_out_centres`) replaces the centre for the listed
    (row, slot) pairs; a None entry drops that point.
    """
    own_centres = own_centres or {}
    if len(centred) != len(rows):
        raise ValueError(f"representations have {len(centred)} rows but the row table has {len(rows)}")
    for column in ("polarity", "typicality"):
        if column not in rows.columns:
            raise KeyError(f"row table has no column {column!r}; it is needed for the gradient measure")

    foundations = row_foundations(rows).to_numpy()
    polarities = rows["polarity"].astype(str).to_numpy()
    typicalities = rows["typicality"].to_numpy(dtype=np.float64)
    ids = rows["id"].astype(str).to_numpy() if "id" in rows.columns else np.arange(len(rows)).astype(str)

    records = []
    for position in range(len(rows)):
        virtue, vice = foundation_slots(foundations[position])
        polarity = polarities[position]
        if polarity == "virtue":
            pairs = [(virtue, typicalities[position])]
        elif polarity == "vice":
            pairs = [(vice, typicalities[position])]
        elif polarity == "neutral":
            pairs = [(virtue, 0.0), (vice, 0.0)]
        else:
            raise ValueError(
                f"row {position} (id {ids[position]!r}) has polarity {polarity!r}; "
                "valid values: virtue, vice, neutral"
            )
        for slot, typicality in pairs:
            if slot not in centres:
                continue
            centre = own_centres.get((position, slot), centres[slot])
            if centre is None:
                continue
            records.append(
                {
                    "row": position,
                    "id": ids[position],
                    "category": slot,
                    "polarity": polarity,
                    "typicality": float(typicality),
                    "proximity": cosine(centred[position], centre),
                }
            )
    columns = ["row", "id", "category", "polarity", "typicality", "proximity"]
    points = pd.DataFrame.from_records(records, columns=columns)
    return points[np.isfinite(points["proximity"].to_numpy(dtype=np.float64))].reset_index(drop=True)


def gradient_indifference(
    reps: np.ndarray,
    rows: pd.DataFrame,
    centres: dict[str, np.ndarray] | None = None,
    config: GradientConfig | None = None,
) -> GradientResult:
    """Correlate centre proximity with human typicality, overall and per category.

    ``reps`` are raw pooled representations row-aligned with ``rows``; they are centred here.
    ``centres`` defaults to the prototype centres of the same centred rows; pass centres
    computed from identically centred data to reuse them.
    """
    config = config or GradientConfig()
    centred = centre_rows(reps)
    if centres is None:
        centres, _ = category_centres(centred, rows)
    own_centres = leave_one_out_centres(centred, rows, centres) if config.leave_one_out else None
    points = gradient_points(centred, rows, centres, own_centres)

    overall = correlate(points["proximity"].to_numpy(), points["typicality"].to_numpy())
    per_category = {}
    for slot in SLOTS:
        subset = points[points["category"] == slot]
        per_category[slot] = correlate(subset["proximity"].to_numpy(), subset["typicality"].to_numpy())
    return GradientResult(points=points, overall=overall, per_category=per_category)
