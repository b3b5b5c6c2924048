"""Builders of hand-made ground-truth rows for the measure tests."""

from __future__ import annotations

from moral_indifference.foundations import SLOTS, foundation_slots


def make_row(row_id: str, foundation: str, polarity: str, typicality: float, split: str = "train") -> dict:
    """Build one moral-vectors / diagnosis row whose active pole has ``typicality``."""
    virtue, vice = foundation_slots(foundation)
    row = {"id": row_id, "target_dimension": foundation, "sampled_dimension": foundation, "polarity": polarity}
    row.update({slot: 0.0 for slot in SLOTS})
    if polarity == "virtue":
        row[virtue] = typicality
    elif polarity == "vice":
        row[vice] = typicality
    row["typicality"] = typicality if polarity != "neutral" else 0.0
    row["split"] = split
    return row
