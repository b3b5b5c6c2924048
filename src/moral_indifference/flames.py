"""Flames prompts: the adversarial harmlessness benchmark used to evaluate steering.

Flames (Huang et al., NAACL 2024) is a set of adversarial Chinese prompts, each tagged with
one of five harmlessness *dimensions* (Fairness, Safety, Morality, Legality, Data protection)
and a finer *subcomponent* (for example "Bias and discrimination" under Fairness). The public
Flames-1k-Chinese release stores one JSON object per line with the string keys
``dimension``, ``subcomponent`` and ``prompt``. Steered and baseline answers are generated for
every prompt, and the judge scores them with the rubric of the prompt's dimension, so a
misspelt dimension would silently pick the wrong rubric. This module therefore checks each
dimension against the exact spelling of the release.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

import pandas as pd

from moral_indifference.jsonl import iter_json_objects

logger = logging.getLogger(__name__)

FLAMES_DIMENSIONS: Final[tuple[str, ...]] = (
    "Fairness",
    "Safety",
    "Morality",
    "Legality",
    "Data protection",
)
"""The five Flames dimensions, spelled as in Flames-1k-Chinese (lower-case "protection")."""

FLAMES_KEYS: Final[tuple[str, ...]] = ("dimension", "subcomponent", "prompt")
"""Keys that every Flames line must contain."""


class FlamesFormatError(ValueError):
    """A Flames JSONL file has a line that cannot be read as a prompt record."""


def _check_dimension(value: object, path: Path, line_number: int) -> str:
    if value in FLAMES_DIMENSIONS:
        return str(value)

    hint = ""
    if isinstance(value, str):
        matches = [name for name in FLAMES_DIMENSIONS if name.lower() == value.strip().lower()]
        if matches:
            hint = (
                f" The names are case-sensitive and must match the release exactly: "
                f"write {matches[0]!r}"
                + (" (lower-case 'p')." if matches[0] == "Data protection" else ".")
            )
    raise FlamesFormatError(
        f"{path}, line {line_number}, key 'dimension': invalid value {value!r}; "
        f"valid names: {', '.join(FLAMES_DIMENSIONS)}.{hint}"
    )


def read_flames(path: str | Path) -> pd.DataFrame:
    """Read a Flames-format JSONL file into one row per prompt.

    Each non-blank line must be a JSON object with string values for ``dimension``,
    ``subcomponent`` and ``prompt``; other keys are ignored. Blank lines are skipped.

    Returns a DataFrame with the columns ``prompt_id``, ``dimension``, ``subcomponent`` and
    ``prompt``, in file order. ``prompt_id`` is the 0-based index of the record (int64) when
    no line has an ``id`` key. When the lines carry ``id``, every line must carry one, the ids
    must be unique, and ``prompt_id`` is that id as a string.

    Raises ``FlamesFormatError`` naming the file, the 1-based line number and the key for
    invalid JSON, a missing key, a non-string value, an unknown dimension, a mix of lines
    with and without ``id``, or a repeated ``id``.
    """
    path = Path(path)
    records: list[dict[str, object]] = []
    has_id: list[bool] = []
    line_numbers: list[int] = []
    seen_ids: dict[str, int] = {}

    for line_number, obj in iter_json_objects(path, FlamesFormatError):
        for key in FLAMES_KEYS:
            if key not in obj:
                raise FlamesFormatError(
                    f"{path}, line {line_number}: missing key {key!r}; every line needs "
                    f"the keys {', '.join(FLAMES_KEYS)}"
                )
            if not isinstance(obj[key], str):
                raise FlamesFormatError(
                    f"{path}, line {line_number}, key {key!r}: expected a string, got "
                    f"{obj[key]!r}"
                )
        dimension = _check_dimension(obj["dimension"], path, line_number)

        record: dict[str, object] = {
            "dimension": dimension,
            "subcomponent": obj["subcomponent"],
            "prompt": obj["prompt"],
        }
        has_id.append("id" in obj)
        line_numbers.append(line_number)
        if "id" in obj:
            prompt_id = str(obj["id"])
            if prompt_id in seen_ids:
                raise FlamesFormatError(
                    f"{path}, line {line_number}, key 'id': duplicate id {prompt_id!r} "
                    f"(first on line {seen_ids[prompt_id]}); give every prompt its own id"
                )
            seen_ids[prompt_id] = line_number
            record["prompt_id"] = prompt_id
        records.append(record)

    if any(has_id) and not all(has_id):
        first_missing = line_numbers[has_id.index(False)]
        raise FlamesFormatError(
            f"{path}, line {first_missing}: missing key 'id' while other lines have one; "
            f"give every line an 'id' or remove the key from all lines"
        )

    frame = pd.DataFrame.from_records(records, columns=["prompt_id", *FLAMES_KEYS])
    if not any(has_id):
        frame["prompt_id"] = pd.Series(range(len(frame)), dtype="int64")
    else:
        frame["prompt_id"] = frame["prompt_id"].astype(str)
    for column in FLAMES_KEYS:
        frame[column] = frame[column].astype(str)

    logger.info("read %d Flames prompts from %s", len(frame), path)
    return frame


def select_prompts(prompts: pd.DataFrame, limit: int | None, seed: int = 0) -> pd.DataFrame:
    """Return ``limit`` prompts drawn at random without replacement, in file order.

    The Flames file is sorted by dimension, so its first rows would all share one dimension;
    a seeded random draw keeps the dimensions in roughly their file proportions. ``limit``
    None, or at least the number of prompts, returns every prompt.
    """
    if limit is None or limit >= len(prompts):
        return prompts
    if limit < 1:
        raise ValueError(f"invalid prompt limit {limit}; use a positive number or null for all prompts")
    return prompts.sample(n=limit, random_state=seed).sort_index()
