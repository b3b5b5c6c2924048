"""Moral feature isolation: which SAE latents track which moral-vector slot.

Each SAE latent is compared with the ten slots of the moral vector (the typicality of a
row for each virtue and vice pole) on validation rows. The Pearson r between a latent's
activation and every slot gives its *correlation profile*; from that profile:

- **class**: "mono" (mono-semantic) when exactly one slot has ``|r| > mono_threshold``, or
  exactly two that are the two poles of one foundation. "weak" when ``max |r| <
  weak_threshold``, and "poly" (poly-semantic) otherwise. A latent whose largest ``|r|``
  lies between the two thresholds is therefore "poly".
- **dominant slot**: the slot with the largest ``|r|``.
- **prototypicality**: Spearman rho between the activation and human typicality. Rows used:
  rows whose target foundation is the dominant slot's foundation and whose polarity is the
  dominant slot's pole (value = the row's typicality) or neutral (value 0). Rows of the
  opposite pole are left out because their typicality grades membership of the other
  category. This mirrors the gradient measure of the indifference analysis.
- **virtue-vice collapse**: cosine between the profile over the five virtue slots and the
  profile over the five vice slots, both in foundation order. Near 1 means the latent
  responds to both poles of each foundation alike; NaN when either profile is all zero.
- **polarity discrimination**: point-biserial r between the activation and virtue (1)
  versus vice (0) on non-neutral rows, with its two-sided p-value. The point-biserial r
  is the Pearson r with a binary variable, so it is computed with the same matrix
  products (``scipy.stats.pointbiserialr`` gives the same values).

A latent or slot that is constant on the rows used has no defined correlation; its r is
set to 0 so that it never counts as correlated.

Correlations are computed for all latents at once with matrix products over column blocks,
so a 65,536-latent SAE needs no per-latent loop. :func:`select_moral_latents` then picks
the latents the realignment stage trains.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from moral_indifference.foundations import (
    FOUNDATIONS,
    SLOTS,
    VIRTUE_SLOTS,
    foundation_slots,
    slot_foundation,
)

logger = logging.getLogger(__name__)

CLASSES = ("mono", "poly", "weak")
R_COLUMNS = tuple(f"r_{slot}" for slot in SLOTS)
REQUIRED_ROW_COLUMNS = (*SLOTS, "typicality", "polarity", "target_dimension")


@dataclass(frozen=True)
class FeatureConfig:
    """Thresholds for latent classification and the sizes of the moral latent selection.

    ``strict_ratio``: a strictly mono-semantic latent has a top ``|r|`` above
    ``mono_threshold`` and above ``strict_ratio`` times its second largest ``|r|``.
    ``top_per_slot``: latents taken per slot among those with ``r > mono_threshold``.
    ``top_per_pole``: latents taken per pole of each foundation, ranked by r on that pole,
    among those with ``r > pole_min_r``. ``block_size``: latents per matrix-product block.
    """

    mono_threshold: float = 0.1
    weak_threshold: float = 0.05
    strict_ratio: float = 1.5
    top_per_slot: int = 50
    top_per_pole: int = 20
    pole_min_r: float = 0.0
    block_size: int = 4096


def _check_rows(z: np.ndarray, rows: pd.DataFrame) -> None:
    missing = [column for column in REQUIRED_ROW_COLUMNS if column not in rows.columns]
    if missing:
        raise KeyError(
            f"rows lack columns {missing}; pass rows of the moral-vector table "
            "(results/ground_truth/moral_vectors.parquet)"
        )
    if z.ndim != 2 or z.shape[0] != len(rows):
        raise ValueError(
            f"z has shape {z.shape} but rows has {len(rows)} rows; "
            "z must be [n_rows, n_latents] and row-aligned with rows"
        )


def _standardise(values: np.ndarray) -> np.ndarray:
    """Centre and scale columns to unit population std; constant columns become all zero."""
    values = values.astype(np.float64, copy=False)
    centred = values - values.mean(axis=0)
    std = centred.std(axis=0)
    scale = np.divide(1.0, std, out=np.zeros_like(std), where=std > 1e-12)
    return centred * scale


def correlate(z: np.ndarray, y: np.ndarray, block_size: int = 4096) -> np.ndarray:
    """Return Pearson r ``[n_latents, n_targets]`` between columns of ``z`` and ``y``.

    Constant columns on either side get r = 0. Latents are processed in blocks of
    ``block_size`` columns to bound memory.
    """
    n = z.shape[0]
    if n < 2:
        return np.zeros((z.shape[1], y.shape[1]))
    y_standard = _standardise(y)
    out = np.empty((z.shape[1], y.shape[1]))
    for start in range(0, z.shape[1], block_size):
        block = _standardise(z[:, start : start + block_size])
        out[start : start + block_size] = block.T @ y_standard / n
    return np.clip(out, -1.0, 1.0)


def _rank_columns(values: np.ndarray) -> np.ndarray:
    return stats.rankdata(values, axis=0)


def _classify(r: np.ndarray, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    abs_r = np.abs(r)
    above = abs_r > config.mono_threshold
    n_above = above.sum(axis=1)
    # Two slots above threshold are still mono-semantic when they are the two poles of one
    # foundation: slots 2f and 2f+1 in SLOTS order.
    pair_above = above[:, 0::2] & above[:, 1::2]
    same_foundation_pair = (n_above == 2) & pair_above.any(axis=1)
    mono = (n_above == 1) | same_foundation_pair
    weak = abs_r.max(axis=1) < config.weak_threshold
    labels = np.where(mono, "mono", np.where(weak, "weak", "poly"))
    return labels, n_above


def _prototypicality(
    z: np.ndarray, rows: pd.DataFrame, dominant: np.ndarray, block_size: int
) -> tuple[np.ndarray, np.ndarray]:
    n_latents = z.shape[1]
    rho = np.full(n_latents, np.nan)
    counts = np.zeros(n_latents, dtype=np.int64)
    target = rows["target_dimension"].to_numpy()
    polarity = rows["polarity"].to_numpy()
    typicality = rows["typicality"].to_numpy(dtype=np.float64)
    for slot_index, slot in enumerate(SLOTS):
        latents = np.flatnonzero(dominant == slot_index)
        if latents.size == 0:
            continue
        pole = "virtue" if slot in VIRTUE_SLOTS else "vice"
        mask = (target == slot_foundation(slot)) & np.isin(polarity, (pole, "neutral"))
        counts[latents] = int(mask.sum())
        if mask.sum() < 3:
            continue
        value = np.where(polarity[mask] == pole, typicality[mask], 0.0)
        value_ranks = _rank_columns(value[:, None])
        for start in range(0, latents.size, block_size):
            chunk = latents[start : start + block_size]
            ranks = _rank_columns(z[np.ix_(mask, chunk)])
            rho[chunk] = correlate(ranks, value_ranks)[:, 0]
    return rho, counts


def _polarity_discrimination(
    z: np.ndarray, rows: pd.DataFrame, block_size: int
) -> tuple[np.ndarray, np.ndarray, int]:
    polarity = rows["polarity"].to_numpy()
    mask = polarity != "neutral"
    n = int(mask.sum())
    if n < 3:
        return np.full(z.shape[1], np.nan), np.full(z.shape[1], np.nan), n
    is_virtue = (polarity[mask] == "virtue").astype(np.float64)[:, None]
    r = correlate(z[mask], is_virtue, block_size)[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt((n - 2) / np.maximum(1.0 - r**2, 1e-300))
    p = 2.0 * stats.t.sf(np.abs(t), n - 2)
    return r, p, n


def _collapse(r: np.ndarray) -> np.ndarray:
    virtue = r[:, 0::2]
    vice = r[:, 1::2]
    norms = np.linalg.norm(virtue, axis=1) * np.linalg.norm(vice, axis=1)
    dot = (virtue * vice).sum(axis=1)
    return np.divide(dot, norms, out=np.full(r.shape[0], np.nan), where=norms > 1e-12)


def analyse_features(
    z: np.ndarray, rows: pd.DataFrame, config: FeatureConfig | None = None
) -> pd.DataFrame:
    """Compute the feature diagnostics of every latent; return one table row per latent.

    ``z`` is ``[n_rows, n_latents]`` latent activations, row-aligned with ``rows`` (moral
    vector rows with the ten slot columns, ``typicality``, ``polarity`` and
    ``target_dimension``). Columns: ``latent``, ``class``, ``dominant_slot``, ``r_<slot>``
    for the ten slots, ``max_abs_r``, ``second_abs_r``, ``n_slots_above``,
    ``prototypicality``, ``prototypicality_n``, ``collapse``, ``polarity_r``,
    ``polarity_p``, ``polarity_n``, ``active_fraction``, ``mean_activation``.
    """
    config = config or FeatureConfig()
    z = np.asarray(z)
    _check_rows(z, rows)
    vectors = rows[list(SLOTS)].to_numpy(dtype=np.float64)

    r = correlate(z, vectors, config.block_size)
    abs_r = np.abs(r)
    order = np.argsort(-abs_r, axis=1, kind="stable")
    dominant = order[:, 0]
    labels, n_above = _classify(r, config)
    rho, rho_n = _prototypicality(z, rows, dominant, config.block_size)
    polarity_r, polarity_p, polarity_n = _polarity_discrimination(z, rows, config.block_size)

    table = pd.DataFrame({"latent": np.arange(z.shape[1], dtype=np.int64)})
    table["class"] = labels
    table["dominant_slot"] = np.asarray(SLOTS)[dominant]
    for index, column in enumerate(R_COLUMNS):
        table[column] = r[:, index]
    table["max_abs_r"] = np.take_along_axis(abs_r, order[:, :1], axis=1)[:, 0]
    table["second_abs_r"] = np.take_along_axis(abs_r, order[:, 1:2], axis=1)[:, 0]
    table["n_slots_above"] = n_above.astype(np.int64)
    table["prototypicality"] = rho
    table["prototypicality_n"] = rho_n
    table["collapse"] = _collapse(r)
    table["polarity_r"] = polarity_r
    table["polarity_p"] = polarity_p
    table["polarity_n"] = polarity_n
    table["active_fraction"] = (z > 0).mean(axis=0) if len(z) else np.nan
    table["mean_activation"] = z.mean(axis=0) if len(z) else np.nan
    logger.info(
        "analysed %d latents on %d rows: %s",
        z.shape[1],
        z.shape[0],
        table["class"].value_counts().to_dict(),
    )
    return table


def summarise_features(table: pd.DataFrame) -> dict[str, Any]:
    """Count latents per class and average the diagnostics, overall and per class.

    Means skip NaN. ``mean_abs_*`` keys average absolute values, because a latent's sign
    is arbitrary for the strength of a correlation.
    """
    summary: dict[str, Any] = {"n_latents": int(len(table))}
    for name in CLASSES:
        summary[f"n_{name}"] = int((table["class"] == name).sum())
    groups: dict[str, pd.DataFrame] = {"all": table}
    groups.update({name: table[table["class"] == name] for name in CLASSES})
    for group_name, group in groups.items():
        summary[group_name] = {
            "n": int(len(group)),
            "mean_max_abs_r": _nanmean(group["max_abs_r"]),
            "mean_prototypicality": _nanmean(group["prototypicality"]),
            "mean_collapse": _nanmean(group["collapse"]),
            "mean_abs_polarity_r": _nanmean(group["polarity_r"].abs()),
        }
    return summary


def _nanmean(values: pd.Series) -> float:
    finite = values.to_numpy(dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else float("nan")


@dataclass(frozen=True)
class SelectedLatents:
    """The moral latents chosen for realignment and the rule that chose each of them.

    ``indices``: the sorted union. ``strict_mono``: strictly mono-semantic latents.
    ``per_slot``: per slot, the top latents by r among those with r above the threshold.
    ``per_pole``: per slot (each pole of each foundation), the top latents by r.
    """

    indices: tuple[int, ...]
    strict_mono: tuple[int, ...]
    per_slot: dict[str, tuple[int, ...]]
    per_pole: dict[str, tuple[int, ...]]
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the selection."""
        return {
            "indices": list(self.indices),
            "strict_mono": list(self.strict_mono),
            "per_slot": {slot: list(values) for slot, values in self.per_slot.items()},
            "per_pole": {slot: list(values) for slot, values in self.per_pole.items()},
            "config": dict(self.config),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelectedLatents:
        """Rebuild a selection from :meth:`to_dict` output."""
        return cls(
            indices=tuple(int(i) for i in data["indices"]),
            strict_mono=tuple(int(i) for i in data["strict_mono"]),
            per_slot={slot: tuple(int(i) for i in v) for slot, v in data["per_slot"].items()},
            per_pole={slot: tuple(int(i) for i in v) for slot, v in data["per_pole"].items()},
            config=dict(data.get("config", {})),
        )

    def save(self, path: str | Path) -> Path:
        """Write the selection to ``path`` as UTF-8 JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> SelectedLatents:
        """Read a selection written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _top_latents(values: pd.Series, count: int, minimum: float) -> tuple[int, ...]:
    eligible = values[values > minimum]
    # Sort by value descending, ties by latent index, so the selection is deterministic.
    ranked = eligible.sort_values(ascending=False, kind="stable")
    return tuple(int(i) for i in ranked.index[:count])


def select_moral_latents(table: pd.DataFrame, config: FeatureConfig | None = None) -> SelectedLatents:
    """Select the moral latents of an :func:`analyse_features` table.

    The union of: strictly mono-semantic latents (top ``|r| > mono_threshold`` and
    ``> strict_ratio`` times the second ``|r|``); for each slot the ``top_per_slot``
    latents with the largest ``r > mono_threshold``; for each pole of each foundation the
    ``top_per_pole`` latents with the largest ``r > pole_min_r`` on that pole.
    """
    config = config or FeatureConfig()
    missing = [column for column in ("latent", "max_abs_r", "second_abs_r", *R_COLUMNS) if column not in table]
    if missing:
        raise KeyError(f"feature table lacks columns {missing}; build it with analyse_features")
    indexed = table.set_index("latent")

    strict = indexed[
        (indexed["max_abs_r"] > config.mono_threshold)
        & (indexed["max_abs_r"] > config.strict_ratio * indexed["second_abs_r"])
    ]
    strict_mono = tuple(int(i) for i in strict.index)
    per_slot = {
        slot: _top_latents(indexed[f"r_{slot}"], config.top_per_slot, config.mono_threshold)
        for slot in SLOTS
    }
    per_pole: dict[str, tuple[int, ...]] = {}
    for foundation in FOUNDATIONS:
        for slot in foundation_slots(foundation):
            per_pole[slot] = _top_latents(indexed[f"r_{slot}"], config.top_per_pole, config.pole_min_r)

    union = set(strict_mono)
    for values in (*per_slot.values(), *per_pole.values()):
        union.update(values)
    selected = SelectedLatents(
        indices=tuple(sorted(union)),
        strict_mono=tuple(sorted(strict_mono)),
        per_slot=per_slot,
        per_pole=per_pole,
        config=asdict(config),
    )
    logger.info(
        "selected %d moral latents of %d (%d strictly mono-semantic)",
        len(selected.indices),
        len(table),
        len(strict_mono),
    )
    return selected


__all__ = [
    "CLASSES",
    "FeatureConfig",
    "SelectedLatents",
    "analyse_features",
    "correlate",
    "select_moral_latents",
    "summarise_features",
]
