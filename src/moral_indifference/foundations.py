"""Moral Foundations Theory vocabulary shared by every stage.

Moral Foundations Theory groups moral intuitions into five foundations, each with a
virtue pole and a vice pole (care vs harm, fairness vs cheating, ...). A *moral vector*
has one slot per pole, ten in all, ordered virtue then vice for each foundation. A slot
contains the *typicality* of a row for that pole: 0 for "not a member", 1.0 for a prototype
(the most typical member), graded values in between (Prototype Theory).

The names here are the column names of the ground-truth tables and the labels of every
figure, so that a slot is spelled the same way in data, code and reports.
"""

from __future__ import annotations

from typing import Final, Literal

FOUNDATIONS: Final[tuple[str, ...]] = (
    "care-harm",
    "fairness-cheating",
    "loyalty-betrayal",
    "authority-subversion",
    "sanctity-degradation",
)
"""The five foundations, spelled as in Social-Chemistry-101's ``rot-moral-foundations``."""

SLOTS: Final[tuple[str, ...]] = (
    "care",
    "harm",
    "fairness",
    "cheating",
    "loyalty",
    "betrayal",
    "authority",
    "subversion",
    "sanctity",
    "degradation",
)
"""The ten moral-vector slots: the virtue pole then the vice pole of each foundation."""

VIRTUE_SLOTS: Final[tuple[str, ...]] = SLOTS[0::2]
VICE_SLOTS: Final[tuple[str, ...]] = SLOTS[1::2]

TYPICALITY_LEVELS: Final[tuple[float, ...]] = (0.125, 0.25, 0.375, 0.5, 0.75, 1.0)
"""Non-zero typicality values that ``max(judgment / 2, 0) * agree / 4`` can take."""

PROTOTYPE: Final[float] = 1.0

Polarity = Literal["virtue", "vice", "neutral"]
POLARITIES: Final[tuple[str, ...]] = ("virtue", "vice", "neutral")


def foundation_slots(foundation: str) -> tuple[str, str]:
    """Return the (virtue, vice) slot names of ``foundation``, e.g. ``("care", "harm")``."""
    if foundation not in FOUNDATIONS:
        raise ValueError(
            f"unknown moral foundation {foundation!r}; valid names: {', '.join(FOUNDATIONS)}"
        )
    virtue, vice = foundation.split("-")
    return virtue, vice


def slot_foundation(slot: str) -> str:
    """Return the foundation that ``slot`` belongs to, e.g. ``"harm"`` -> ``"care-harm"``."""
    if slot not in SLOTS:
        raise ValueError(f"unknown moral-vector slot {slot!r}; valid names: {', '.join(SLOTS)}")
    return FOUNDATIONS[SLOTS.index(slot) // 2]


def opposite_slot(slot: str) -> str:
    """Return the other pole of the same foundation, e.g. ``"care"`` -> ``"harm"``."""
    slot_foundation(slot)  # validates the name
    return SLOTS[SLOTS.index(slot) ^ 1]
