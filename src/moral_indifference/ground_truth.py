"""Ground-truth moral vectors from Social-Chemistry-101 annotations.

A *moral vector* places one annotated action (for example "comforting a grieving friend") in
the ten slots of Moral Foundations Theory: the virtue pole then the vice pole of care-harm,
fairness-cheating, loyalty-betrayal, authority-subversion and sanctity-degradation (see
``foundations.SLOTS``). A slot contains the action's *typicality* for that pole (Prototype
Theory: membership is graded, and the most typical member, value 1.0, is a *prototype*).

Typicality comes from two crowd answers in Social-Chem-101 (Forbes et al., EMNLP 2020):
``action-moral-judgment`` j in {-2, ..., 2} (very bad ... very good) and ``action-agree``
a in {0, ..., 4} (how many people agree, < 1% ... > 99%). With ``v = j / 2`` and ``w = a / 4``,
``m_virtue = max(v, 0) * w`` and ``m_vice = max(-v, 0) * w``, so the non-zero values are
0.125, 0.25, 0.375, 0.5, 0.75 and 1.0. Each foundation listed in ``rot-moral-foundations``
switches on both of its slots: the virtue slot gets ``m_virtue`` and the vice slot
``m_vice``. Every other slot is 0. Judgment 0 or agreement 0 gives a *neutral* (all-zero)
vector.

*Expansion* turns one annotation into one table row per listed foundation (its
``target_dimension``). All rows of one annotation share the id, action and vector. The
*split* into train/val/test (80/10/10 by default) is drawn per annotation id with a fixed
seed before expansion, so an annotation never crosses splits. The *diagnosis sample* is a
stratified subset used by the indifference measures: per foundation and pole, up to a quota of
rows at each typicality level (a smaller quota for prototypes) plus up to a quota of neutral
rows. It is drawn from all splits, because the measures are not trained.

Three input formats are registered in ``READERS``:

- ``social_chem_tsv``: the raw 25-column ``social-chem-101.v1.0.tsv``. The annotation id is
  ``socialchem_{i:06d}``, where ``i`` is the 0-based index of the data row in the raw file
  (the header is not counted, and rows dropped by the filters still count).
- ``expanded_csv``: an already expanded table with the columns ``row_id, id, action,
  rot-moral-foundations, moral_vector, m_virtue, m_vice, target_dimension, split``, the
  format of the reference release's ``social_chem_val_expanded.csv``.
- ``diagnosis_jsonl``: an already drawn diagnosis sample, one JSON object per line. The file
  itself becomes the diagnosis sample, and its rows are the moral vectors.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from tqdm import tqdm

from moral_indifference.foundations import (
    FOUNDATIONS,
    POLARITIES,
    PROTOTYPE,
    SLOTS,
    TYPICALITY_LEVELS,
    foundation_slots,
)
from moral_indifference.jsonl import iter_json_objects

logger = logging.getLogger(__name__)

SPLITS: Final[tuple[str, ...]] = ("train", "val", "test")

SOCIAL_CHEM_COLUMNS: Final[tuple[str, ...]] = (
    "area",
    "m",
    "split",
    "rot-agree",
    "rot-categorization",
    "rot-moral-foundations",
    "rot-char-targeting",
    "rot-bad",
    "rot-judgment",
    "action",
    "action-agency",
    "action-moral-judgment",
    "action-agree",
    "action-legal",
    "action-pressure",
    "action-char-involved",
    "action-hypothetical",
    "situation",
    "situation-short-id",
    "rot",
    "rot-id",
    "rot-worker-id",
    "breakdown-worker-id",
    "n-characters",
    "characters",
)
"""The 25 columns of ``social-chem-101.v1.0.tsv``, in file order."""

EXPANDED_COLUMNS: Final[tuple[str, ...]] = (
    "row_id",
    "id",
    "action",
    "rot-moral-foundations",
    "moral_vector",
    "m_virtue",
    "m_vice",
    "target_dimension",
    "split",
)
"""Columns of the expanded CSV format, in file order."""

DIAGNOSIS_KEYS: Final[tuple[str, ...]] = (
    "id",
    "action",
    "rot-moral-foundations",
    "moral_vector",
    "m_virtue",
    "m_vice",
    "sampled_dimension",
    "sample_type",
    "score_stratum",
)
"""Keys that every line of a diagnosis JSONL file must contain."""

VECTOR_COLUMNS: Final[tuple[str, ...]] = (
    "row_id",
    "id",
    "action",
    "rot_moral_foundations",
    "target_dimension",
    "m_virtue",
    "m_vice",
    *SLOTS,
    "typicality",
    "polarity",
    "split",
)
"""Columns of the moral-vectors table, in order."""

DIAGNOSIS_COLUMNS: Final[tuple[str, ...]] = (
    *VECTOR_COLUMNS,
    "sampled_dimension",
    "sample_type",
    "score_stratum",
)
"""Columns of the diagnosis-sample table, in order."""

SAMPLE_TYPES: Final[tuple[str, ...]] = POLARITIES
"""Values of the diagnosis sample's ``sample_type``: the row polarities."""

FILTER_REASONS: Final[tuple[str, ...]] = (
    "rot_bad",
    "m_not_1",
    "missing_action",
    "missing_rot_moral_foundations",
    "missing_action_moral_judgment",
    "missing_action_agree",
)
"""Reasons a raw row is filtered out, checked in this order; a row counts under the first."""

_TOLERANCE: Final[float] = 1e-9


class GroundTruthError(ValueError):
    """An input file or configuration cannot be turned into ground-truth moral vectors."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class SplitConfig:
    """Fractions and seed of the train/val/test split, drawn per annotation id."""

    train: float = 0.8
    val: float = 0.1
    test: float = 0.1
    seed: int = 42

    def __post_init__(self) -> None:
        fractions = {"train": self.train, "val": self.val, "test": self.test}
        for name, value in fractions.items():
            if not 0.0 <= value <= 1.0:
                raise GroundTruthError(
                    f"split.{name} = {value!r} is outside [0, 1]; give a fraction"
                )
        total = self.train + self.val + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise GroundTruthError(
                f"split fractions train={self.train}, val={self.val}, test={self.test} sum to "
                f"{total}; make them sum to 1"
            )
        if self.seed < 0:
            raise GroundTruthError(f"split.seed = {self.seed} is negative; use a seed >= 0")


@dataclass(frozen=True)
class DiagnosisConfig:
    """Quotas and seed of the diagnosis sample.

    Per foundation and pole, the sample takes up to ``per_level`` rows at each typicality
    level below 1.0 and up to ``prototypes`` rows at 1.0. Per foundation it also takes up to
    ``neutral`` neutral rows. A stratum with fewer rows than its quota is taken whole.
    """

    per_level: int = 300
    prototypes: int = 150
    neutral: int = 300
    seed: int = 42

    def __post_init__(self) -> None:
        for name in ("per_level", "prototypes", "neutral", "seed"):
            value = getattr(self, name)
            if value < 0:
                raise GroundTruthError(f"diagnosis.{name} = {value} is negative; use a value >= 0")


@dataclass(frozen=True)
class GroundTruthConfig:
    """Input file, reader and sampling settings of the ground-truth stage.

    ``format`` names a reader in ``READERS``. ``resplit`` applies to ``expanded_csv`` only:
    when true, the file's ``split`` column is replaced by a new split drawn with ``split``.
    ``max_rows`` keeps only the first N annotations (in file order, after the filters) for
    quick runs, and the split is drawn over those N.
    """

    format: str
    path: str
    split: SplitConfig = field(default_factory=SplitConfig)
    diagnosis: DiagnosisConfig = field(default_factory=DiagnosisConfig)
    resplit: bool = False
    max_rows: int | None = None

    def __post_init__(self) -> None:
        if self.max_rows is not None and self.max_rows < 1:
            raise GroundTruthError(
                f"max_rows = {self.max_rows} is not positive; give N >= 1 or null for all rows"
            )

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> GroundTruthConfig:
        """Build a config, with its nested split and diagnosis configs, from a YAML dict."""
        config = dict(config)
        _check_keys(config, cls, "ground_truth")
        split = config.pop("split", None) or {}
        diagnosis = config.pop("diagnosis", None) or {}
        _check_keys(split, SplitConfig, "ground_truth.split")
        _check_keys(diagnosis, DiagnosisConfig, "ground_truth.diagnosis")
        if "path" in config:
            config["path"] = str(config["path"])
        return cls(split=SplitConfig(**split), diagnosis=DiagnosisConfig(**diagnosis), **config)


def _check_keys(config: Mapping[str, Any], cls: type, where: str) -> None:
    valid = [item.name for item in fields(cls)]
    unknown = sorted(set(config) - set(valid))
    if unknown:
        raise GroundTruthError(
            f"unknown key(s) {', '.join(unknown)} in {where}; valid keys: {', '.join(valid)}"
        )


# --------------------------------------------------------------------------- shared rules


def typicality(judgment: int, agree: int) -> tuple[float, float]:
    """Return ``(m_virtue, m_vice)`` for a moral judgment in -2..2 and an agreement in 0..4."""
    v = judgment / 2
    w = agree / 4
    # Written out rather than max(v, 0) * w, which gives -0.0 for judgment 0.
    m_virtue = v * w if v > 0 else 0.0
    m_vice = -v * w if v < 0 else 0.0
    return m_virtue, m_vice


def moral_vector(foundations: Iterable[str], m_virtue: float, m_vice: float) -> np.ndarray:
    """Return the 10-slot vector with ``m_virtue``/``m_vice`` in the listed foundations' slots."""
    vector = np.zeros(len(SLOTS), dtype=np.float64)
    for foundation in foundations:
        virtue, vice = foundation_slots(foundation)
        vector[SLOTS.index(virtue)] = m_virtue
        vector[SLOTS.index(vice)] = m_vice
    return vector


def assign_splits(ids: Iterable[str], config: SplitConfig) -> dict[str, str]:
    """Map each distinct annotation id to "train", "val" or "test".

    The sorted distinct ids are permuted with ``numpy.random.default_rng(config.seed)``; the
    first ``round(train * n)`` go to train, the next ``round(val * n)`` to val and the rest
    to test. The result depends only on the set of ids and the config.
    """
    unique = sorted(set(ids))
    n = len(unique)
    order = np.random.default_rng(config.seed).permutation(n)
    n_train = int(round(config.train * n))
    n_val = min(int(round(config.val * n)), n - n_train)
    labels = np.empty(n, dtype=object)
    labels[order[:n_train]] = "train"
    labels[order[n_train : n_train + n_val]] = "val"
    labels[order[n_train + n_val :]] = "test"
    return dict(zip(unique, labels.tolist(), strict=True))


def _location(path: Path, line: int, column: str) -> str:
    return f"{path}, line {line}, column {column!r}"


def _parse_foundations(text: str, path: Path, line: int, column: str) -> tuple[str, ...]:
    """Split a "|"-list of foundations, drop repeats and reject unknown names."""
    listed: list[str] = []
    for name in text.split("|"):
        name = name.strip()
        if name not in FOUNDATIONS:
            raise GroundTruthError(
                f"{_location(path, line, column)}: unknown moral foundation {name!r} in "
                f"{text!r}; valid names: {', '.join(FOUNDATIONS)}. Fix the value or drop the row."
            )
        if name not in listed:
            listed.append(name)
    return tuple(listed)


def _parse_integer(
    text: str, low: int, high: int, path: Path, line: int, column: str
) -> int:
    """Parse an integer score such as "2" or "2.0" and check that it lies in [low, high]."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value != int(value):
        raise GroundTruthError(
            f"{_location(path, line, column)}: invalid value {text!r}, expected an integer "
            f"from {low} to {high}; correct the value or leave it empty to drop the row"
        )
    if not low <= value <= high:
        raise GroundTruthError(
            f"{_location(path, line, column)}: value {text!r} is outside {low}..{high}; "
            f"correct the value or leave it empty to drop the row"
        )
    return int(value)


def _parse_float(value: object, path: Path, line: int, column: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise GroundTruthError(
            f"{_location(path, line, column)}: invalid value {value!r}, expected a finite "
            f"number; correct the value"
        )
    return number


def _parse_vector(value: object, path: Path, line: int, column: str) -> np.ndarray:
    """Parse a moral vector given as a JSON list or as the text of one ("[0.0, 1.0, ...]")."""
    items = value
    if isinstance(value, str):
        try:
            items = json.loads(value)
        except json.JSONDecodeError:
            items = None
    if not isinstance(items, list) or len(items) != len(SLOTS):
        raise GroundTruthError(
            f"{_location(path, line, column)}: invalid value {value!r}, expected a list of "
            f"{len(SLOTS)} numbers in the order {', '.join(SLOTS)}"
        )
    return np.array([_parse_float(item, path, line, column) for item in items], dtype=np.float64)


def _check_scores(
    m_virtue: float, m_vice: float, path: Path, line: int
) -> None:
    for column, number in (("m_virtue", m_virtue), ("m_vice", m_vice)):
        if not 0.0 <= number <= 1.0:
            raise GroundTruthError(
                f"{_location(path, line, column)}: value {number!r} is outside [0, 1]; "
                f"typicality is max(+-judgment/2, 0) * agree/4"
            )
    if m_virtue > 0 and m_vice > 0:
        raise GroundTruthError(
            f"{path}, line {line}: both m_virtue ({m_virtue}) and m_vice ({m_vice}) are above "
            f"zero, but a judgment has one sign; set one of them to 0"
        )


def _check_vector_rule(
    vector: np.ndarray,
    foundations: tuple[str, ...],
    m_virtue: float,
    m_vice: float,
    path: Path,
    line: int,
    column: str,
) -> None:
    expected = moral_vector(foundations, m_virtue, m_vice)
    if np.allclose(vector, expected, rtol=0.0, atol=_TOLERANCE):
        return
    wrong = [
        f"{slot}={vector[i]:g} (expected {expected[i]:g})"
        for i, slot in enumerate(SLOTS)
        if not math.isclose(vector[i], expected[i], abs_tol=_TOLERANCE)
    ]
    raise GroundTruthError(
        f"{_location(path, line, column)}: the vector does not follow the rule (m_virtue in "
        f"the virtue slots and m_vice in the vice slots of the listed foundations "
        f"{'|'.join(foundations)}, zero elsewhere): {', '.join(wrong)}. Rebuild the vector "
        f"from m_virtue, m_vice and rot-moral-foundations."
    )


# --------------------------------------------------------------------------- table building


@dataclass(frozen=True)
class _Annotation:
    id: str
    action: str
    rot_moral_foundations: str
    foundations: tuple[str, ...]
    m_virtue: float
    m_vice: float


@dataclass
class ReaderOutput:
    """Reader result: moral vectors, filter counts and, for a sample file, the diagnosis sample."""

    vectors: pd.DataFrame
    filtered_out: dict[str, int] = field(default_factory=dict)
    diagnosis: pd.DataFrame | None = None


def _vectors_frame(
    rows: list[tuple[_Annotation, str]], splits: Mapping[str, str]
) -> pd.DataFrame:
    """Build the moral-vectors table from (annotation, target_dimension) pairs in row order."""
    n = len(rows)
    slot_values = np.zeros((n, len(SLOTS)), dtype=np.float64)
    m_virtue = np.zeros(n, dtype=np.float64)
    m_vice = np.zeros(n, dtype=np.float64)
    for i, (annotation, _) in enumerate(rows):
        slot_values[i] = moral_vector(
            annotation.foundations, annotation.m_virtue, annotation.m_vice
        )
        m_virtue[i] = annotation.m_virtue
        m_vice[i] = annotation.m_vice

    polarity = np.where(m_virtue > 0, "virtue", np.where(m_vice > 0, "vice", "neutral"))
    frame = pd.DataFrame(
        {
            "row_id": np.arange(n, dtype=np.int64),
            "id": [annotation.id for annotation, _ in rows],
            "action": [annotation.action for annotation, _ in rows],
            "rot_moral_foundations": [annotation.rot_moral_foundations for annotation, _ in rows],
            "target_dimension": [target for _, target in rows],
            "m_virtue": m_virtue,
            "m_vice": m_vice,
            **{slot: slot_values[:, i] for i, slot in enumerate(SLOTS)},
            "typicality": np.maximum(m_virtue, m_vice),
            "polarity": polarity.astype(object),
            "split": [splits[annotation.id] for annotation, _ in rows],
        }
    )
    text_columns = ("id", "action", "rot_moral_foundations", "target_dimension", "polarity")
    for column in (*text_columns, "split"):
        frame[column] = frame[column].astype(str)
    return frame[list(VECTOR_COLUMNS)]


def _expand(annotations: list[_Annotation], config: SplitConfig) -> pd.DataFrame:
    """Expand annotations to one row per listed foundation, with a split drawn per id."""
    splits = assign_splits((annotation.id for annotation in annotations), config)
    rows = [(annotation, target) for annotation in annotations for target in annotation.foundations]
    return _vectors_frame(rows, splits)


# --------------------------------------------------------------------------- readers


def read_social_chem_tsv(config: GroundTruthConfig) -> ReaderOutput:
    """Read raw ``social-chem-101.v1.0.tsv``, filter, score, split and expand it.

    Keeps rows with ``rot-bad == 0`` and ``m == 1`` whose ``action``,
    ``rot-moral-foundations``, ``action-moral-judgment`` and ``action-agree`` are all
    non-empty. An empty ``rot-bad`` or ``m`` counts as "not 0"/"not 1", so the row is
    dropped. Dropped rows are counted per reason in ``FILTER_REASONS`` and logged. Raises
    ``GroundTruthError`` for a wrong header, a line with a wrong number of fields, or an
    invalid value in a kept row. With ``max_rows``, reading stops after that many kept
    annotations, so the filter counts cover only the lines read.
    """
    path = Path(config.path)
    filtered = Counter({reason: 0 for reason in FILTER_REASONS})
    annotations: list[_Annotation] = []
    index = {name: i for i, name in enumerate(SOCIAL_CHEM_COLUMNS)}

    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise GroundTruthError(f"{path} is empty; expected the Social-Chem-101 header line")
        _check_header(header, SOCIAL_CHEM_COLUMNS, path, "tab-separated")

        # With QUOTE_NONE a record never spans lines, so the record number gives the line.
        for data_index, fields_ in enumerate(
            tqdm(reader, desc="social-chem rows", unit=" rows", disable=None, mininterval=5)
        ):
            line = data_index + 2
            if len(fields_) != len(SOCIAL_CHEM_COLUMNS):
                raise GroundTruthError(
                    f"{_location(path, line, '(column count)')}: found {len(fields_)} "
                    f"tab-separated fields, expected {len(SOCIAL_CHEM_COLUMNS)}; remove stray "
                    f"tabs or line breaks inside the fields of this line"
                )

            reason = _filter_reason(fields_, index, path, line)
            if reason is not None:
                filtered[reason] += 1
                continue

            judgment = _parse_integer(
                fields_[index["action-moral-judgment"]], -2, 2, path, line, "action-moral-judgment"
            )
            agree = _parse_integer(
                fields_[index["action-agree"]], 0, 4, path, line, "action-agree"
            )
            listed = fields_[index["rot-moral-foundations"]]
            foundations = _parse_foundations(listed, path, line, "rot-moral-foundations")
            m_virtue, m_vice = typicality(judgment, agree)
            annotations.append(
                _Annotation(
                    id=f"socialchem_{data_index:06d}",
                    action=fields_[index["action"]],
                    rot_moral_foundations=listed,
                    foundations=foundations,
                    m_virtue=m_virtue,
                    m_vice=m_vice,
                )
            )
            if config.max_rows is not None and len(annotations) >= config.max_rows:
                logger.info(
                    "stopped after max_rows=%d annotations at line %d", config.max_rows, line
                )
                break

    filtered_out = dict(filtered)
    filtered_out["total"] = sum(filtered.values())
    logger.info(
        "%s: kept %d annotations, filtered out %d rows (%s)",
        path,
        len(annotations),
        filtered_out["total"],
        ", ".join(f"{reason} {count}" for reason, count in filtered.items()),
    )
    return ReaderOutput(vectors=_expand(annotations, config.split), filtered_out=filtered_out)


def _check_header(
    header: list[str], expected: tuple[str, ...], path: Path, kind: str
) -> None:
    missing = [name for name in expected if name not in header]
    extra = [name for name in header if name not in expected]
    if missing or extra or len(header) != len(expected):
        raise GroundTruthError(
            f"{path}, line 1: wrong header. Missing columns: {', '.join(missing) or 'none'}; "
            f"extra columns: {', '.join(extra) or 'none'}. Expected these {len(expected)} "
            f"{kind} columns: {', '.join(expected)}"
        )


def _filter_reason(
    fields_: list[str], index: Mapping[str, int], path: Path, line: int
) -> str | None:
    """Return why a raw row is dropped, or None when it is kept."""
    rot_bad = fields_[index["rot-bad"]].strip()
    if rot_bad == "" or _parse_integer(rot_bad, 0, 1, path, line, "rot-bad") != 0:
        return "rot_bad"
    m = fields_[index["m"]].strip()
    if m == "" or _parse_float(m, path, line, "m") != 1:
        return "m_not_1"
    for column, reason in (
        ("action", "missing_action"),
        ("rot-moral-foundations", "missing_rot_moral_foundations"),
        ("action-moral-judgment", "missing_action_moral_judgment"),
        ("action-agree", "missing_action_agree"),
    ):
        if fields_[index[column]].strip() == "":
            return reason
    return None


def read_expanded_csv(config: GroundTruthConfig) -> ReaderOutput:
    """Read and validate an expanded CSV (one row per annotation and listed foundation).

    Checks every vector against the rule, that ``target_dimension`` is one of the listed
    foundations, and that all rows of one id agree on scores, foundations and split. Keeps
    the file's split unless ``config.resplit`` is true; then a new split is drawn per id.
    """
    path = Path(config.path)
    rows: list[tuple[_Annotation, str]] = []
    file_splits: dict[str, str] = {}
    seen: dict[str, tuple[_Annotation, int]] = {}

    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise GroundTruthError(
                f"{path} is empty; expected the header {','.join(EXPANDED_COLUMNS)}"
            )
        _check_header(header, EXPANDED_COLUMNS, path, "comma-separated")
        index = {name: i for i, name in enumerate(header)}

        progress = tqdm(reader, desc="expanded rows", unit=" rows", disable=None, mininterval=5)
        for fields_ in progress:
            line = reader.line_num
            if len(fields_) != len(EXPANDED_COLUMNS):
                raise GroundTruthError(
                    f"{_location(path, line, '(column count)')}: found {len(fields_)} fields, "
                    f"expected {len(EXPANDED_COLUMNS)}; quote fields that contain commas"
                )
            record = {name: fields_[i] for name, i in index.items()}
            annotation_id = record["id"]
            if _past_max_rows(annotation_id, seen, config.max_rows):
                break

            annotation, target = _annotation_from_record(record, path, line, "target_dimension")
            split = record["split"]
            if not config.resplit and split not in SPLITS:
                raise GroundTruthError(
                    f"{_location(path, line, 'split')}: invalid value {split!r}; valid names: "
                    f"{', '.join(SPLITS)}. Fix the value or set resplit: true"
                )
            _check_same_annotation(annotation, seen, path, line)
            if not config.resplit:
                first_split = file_splits.setdefault(annotation_id, split)
                if first_split != split:
                    raise GroundTruthError(
                        f"{_location(path, line, 'split')}: annotation {annotation_id} is in "
                        f"{split!r} here but in {first_split!r} on line {seen[annotation_id][1]}; "
                        f"one annotation must stay in one split. Fix the file or set resplit: true"
                    )
            rows.append((annotation, target))

    if config.resplit:
        splits = assign_splits((annotation.id for annotation, _ in rows), config.split)
    else:
        splits = file_splits
    vectors = _vectors_frame(rows, splits)
    _warn_duplicates(vectors, path)
    logger.info("%s: read %d rows from %d annotations", path, len(vectors), len(seen))
    return ReaderOutput(vectors=vectors)


def _annotation_from_record(
    record: Mapping[str, Any], path: Path, line: int, target_column: str
) -> tuple[_Annotation, str]:
    """Validate one expanded record and return its annotation and target foundation."""
    listed = record["rot-moral-foundations"]
    if not isinstance(listed, str) or not isinstance(record["action"], str):
        raise GroundTruthError(
            f"{path}, line {line}: 'action' and 'rot-moral-foundations' must be strings"
        )
    foundations = _parse_foundations(listed, path, line, "rot-moral-foundations")
    m_virtue = _parse_float(record["m_virtue"], path, line, "m_virtue")
    m_vice = _parse_float(record["m_vice"], path, line, "m_vice")
    _check_scores(m_virtue, m_vice, path, line)
    vector = _parse_vector(record["moral_vector"], path, line, "moral_vector")
    _check_vector_rule(vector, foundations, m_virtue, m_vice, path, line, "moral_vector")

    target = record[target_column]
    if target not in foundations:
        raise GroundTruthError(
            f"{_location(path, line, target_column)}: value {target!r} is not among the listed "
            f"foundations {listed!r}; use one of {', '.join(foundations)}"
        )
    annotation = _Annotation(
        id=str(record["id"]),
        action=record["action"],
        rot_moral_foundations=listed,
        foundations=foundations,
        m_virtue=m_virtue,
        m_vice=m_vice,
    )
    return annotation, str(target)


def _check_same_annotation(
    annotation: _Annotation, seen: dict[str, tuple[_Annotation, int]], path: Path, line: int
) -> None:
    """Require that every row of one id carries the same action, foundations and scores."""
    first = seen.setdefault(annotation.id, (annotation, line))
    if first[0] != annotation:
        raise GroundTruthError(
            f"{path}, line {line}: annotation {annotation.id} differs from its row on line "
            f"{first[1]} (action, rot-moral-foundations, m_virtue or m_vice); all rows of one "
            f"annotation must share them"
        )


def _past_max_rows(annotation_id: str, seen: Mapping[str, object], max_rows: int | None) -> bool:
    """Return True when ``annotation_id`` is new and ``max_rows`` annotations are already read."""
    return annotation_id not in seen and max_rows is not None and len(seen) >= max_rows


def _warn_duplicates(vectors: pd.DataFrame, path: Path) -> None:
    duplicates = int(vectors.duplicated(["id", "target_dimension"]).sum())
    if duplicates:
        logger.warning(
            "%s: %d rows repeat an (id, target_dimension) pair; the diagnosis sample uses the "
            "first of each",
            path,
            duplicates,
        )


def read_diagnosis_jsonl(config: GroundTruthConfig) -> ReaderOutput:
    """Read a diagnosis sample in JSONL form; its rows are both the vectors and the sample.

    ``sampled_dimension`` becomes ``target_dimension`` and must be a listed foundation. The
    split is drawn per id with ``config.split``. A ``sample_type`` or ``score_stratum`` that
    disagrees with the row's own polarity or typicality is kept and counted in a warning.
    """
    path = Path(config.path)
    rows: list[tuple[_Annotation, str]] = []
    extras: list[tuple[str, float]] = []
    seen: dict[str, tuple[_Annotation, int]] = {}

    for line, record in iter_json_objects(path, GroundTruthError):
        missing = [key for key in DIAGNOSIS_KEYS if key not in record]
        if missing:
            raise GroundTruthError(
                f"{path}, line {line}: missing key(s) {', '.join(missing)}; every line needs "
                f"{', '.join(DIAGNOSIS_KEYS)}"
            )
        annotation_id = str(record["id"])
        if _past_max_rows(annotation_id, seen, config.max_rows):
            break

        annotation, target = _annotation_from_record(record, path, line, "sampled_dimension")
        _check_same_annotation(annotation, seen, path, line)
        sample_type = record["sample_type"]
        if sample_type not in SAMPLE_TYPES:
            raise GroundTruthError(
                f"{_location(path, line, 'sample_type')}: invalid value {sample_type!r}; "
                f"valid names: {', '.join(SAMPLE_TYPES)}"
            )
        stratum = _parse_float(record["score_stratum"], path, line, "score_stratum")
        rows.append((annotation, target))
        extras.append((sample_type, stratum))

    splits = assign_splits((annotation.id for annotation, _ in rows), config.split)
    vectors = _vectors_frame(rows, splits)
    diagnosis = vectors.copy()
    diagnosis["sampled_dimension"] = vectors["target_dimension"]
    diagnosis["sample_type"] = pd.Series([kind for kind, _ in extras], dtype=str)
    diagnosis["score_stratum"] = np.array([stratum for _, stratum in extras], dtype=np.float64)

    mismatched = int(
        (
            (diagnosis["sample_type"] != diagnosis["polarity"])
            | ~np.isclose(diagnosis["score_stratum"], diagnosis["typicality"])
        ).sum()
    )
    if mismatched:
        logger.warning(
            "%s: %d rows have a sample_type or score_stratum that differs from their own "
            "polarity or typicality; kept as given",
            path,
            mismatched,
        )
    logger.info("%s: read %d diagnosis rows from %d annotations", path, len(vectors), len(seen))
    return ReaderOutput(vectors=vectors, diagnosis=diagnosis[list(DIAGNOSIS_COLUMNS)])


READERS: Final[dict[str, Callable[[GroundTruthConfig], ReaderOutput]]] = {
    "social_chem_tsv": read_social_chem_tsv,
    "expanded_csv": read_expanded_csv,
    "diagnosis_jsonl": read_diagnosis_jsonl,
}
"""Input formats by name; each reader takes the config and returns a ``ReaderOutput``."""


def get_reader(name: str) -> Callable[[GroundTruthConfig], ReaderOutput]:
    """Return the reader registered as ``name``."""
    try:
        return READERS[name]
    except KeyError:
        raise GroundTruthError(
            f"unknown ground-truth format {name!r}; valid names: {', '.join(READERS)}"
        ) from None


# --------------------------------------------------------------------------- diagnosis sample


def draw_diagnosis_sample(vectors: pd.DataFrame, config: DiagnosisConfig) -> pd.DataFrame:
    """Draw the stratified diagnosis sample from a moral-vectors table.

    Every row in every split is eligible, after dropping repeated ``(id, target_dimension)``
    pairs (the first is kept), so an annotation enters a stratum at most once per foundation.
    Strata are, per foundation: virtue rows at each level of ``TYPICALITY_LEVELS``, the same
    for vice, and neutral rows. A row whose typicality is not one of those levels is never
    drawn. Each stratum takes up to ``per_level`` rows (``prototypes`` at level 1.0,
    ``neutral`` for neutral rows) without replacement, using its own generator seeded with
    ``[seed, foundation index, pole index, level index]``, so one stratum's draw does not
    depend on the others. Rows keep their ``row_id`` from ``vectors`` and are ordered by
    foundation, sample type (virtue, vice, neutral), level, then ``row_id``.
    """
    eligible = vectors.drop_duplicates(["id", "target_dimension"], keep="first")
    parts: list[pd.DataFrame] = []

    for foundation_index, foundation in enumerate(FOUNDATIONS):
        in_foundation = eligible[eligible["target_dimension"] == foundation]
        for pole_index, pole in enumerate(("virtue", "vice")):
            of_pole = in_foundation[in_foundation["polarity"] == pole]
            for level_index, level in enumerate(TYPICALITY_LEVELS):
                quota = config.prototypes if level == PROTOTYPE else config.per_level
                stratum = of_pole[np.isclose(of_pole["typicality"], level)]
                seed = [config.seed, foundation_index, pole_index, level_index]
                parts.append(_take(stratum, quota, seed, foundation, pole, level))
        neutral = in_foundation[in_foundation["polarity"] == "neutral"]
        seed = [config.seed, foundation_index, 2, 0]
        parts.append(_take(neutral, config.neutral, seed, foundation, "neutral", 0.0))

    sample = pd.concat(parts, ignore_index=True)
    logger.info("drew %d diagnosis rows from %d eligible rows", len(sample), len(eligible))
    return sample[list(DIAGNOSIS_COLUMNS)]


def _take(
    stratum: pd.DataFrame, quota: int, seed: list[int], foundation: str, kind: str, level: float
) -> pd.DataFrame:
    stratum = stratum.sort_values("row_id")
    if len(stratum) > quota:
        chosen = np.random.default_rng(seed).choice(len(stratum), size=quota, replace=False)
        stratum = stratum.iloc[np.sort(chosen)]
    stratum = stratum.copy()
    stratum["sampled_dimension"] = foundation
    stratum["sample_type"] = kind
    stratum["score_stratum"] = float(level)
    return stratum


# --------------------------------------------------------------------------- stage entry points


def build_ground_truth(config: GroundTruthConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build the moral-vectors table and the diagnosis sample described by ``config``.

    The reader's filter counts are attached as ``vectors.attrs["filtered_out"]`` for
    ``write_ground_truth``. For ``diagnosis_jsonl`` input the sample is the file itself.
    """
    reader = get_reader(config.format)
    if not Path(config.path).is_file():
        raise GroundTruthError(
            f"ground-truth input {config.path} not found; set ground_truth.path to the "
            f"{config.format} file"
        )
    output = reader(config)
    vectors = output.vectors
    if vectors.empty:
        raise GroundTruthError(
            f"{config.path}: no rows left after reading and filtering; check the file and format"
        )
    diagnosis = output.diagnosis
    if diagnosis is None:
        diagnosis = draw_diagnosis_sample(vectors, config.diagnosis)
    vectors.attrs["filtered_out"] = dict(output.filtered_out)
    return vectors, diagnosis


def summarize(
    vectors: pd.DataFrame, diagnosis: pd.DataFrame, filtered_out: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Count annotations, rows per split and foundation, non-zero slots and diagnosis strata."""
    strata = Counter(
        f"{foundation}/{kind}/{level:g}"
        for foundation, kind, level in zip(
            diagnosis["sampled_dimension"],
            diagnosis["sample_type"],
            diagnosis["score_stratum"],
            strict=True,
        )
    )
    return {
        "annotations": int(vectors["id"].nunique()),
        "rows": int(len(vectors)),
        "rows_per_split": {split: int((vectors["split"] == split).sum()) for split in SPLITS},
        "annotations_per_split": {
            split: int(vectors.loc[vectors["split"] == split, "id"].nunique()) for split in SPLITS
        },
        "rows_per_foundation": {
            foundation: int((vectors["target_dimension"] == foundation).sum())
            for foundation in FOUNDATIONS
        },
        "rows_per_polarity": {
            kind: int((vectors["polarity"] == kind).sum()) for kind in SAMPLE_TYPES
        },
        "nonzero_per_slot": {slot: int((vectors[slot] != 0).sum()) for slot in SLOTS},
        "diagnosis_rows": int(len(diagnosis)),
        "diagnosis_rows_per_stratum": dict(sorted(strata.items())),
        "filtered_out": {key: int(value) for key, value in (filtered_out or {}).items()},
    }


def write_ground_truth(
    vectors: pd.DataFrame,
    diagnosis: pd.DataFrame,
    out_dir: str | Path,
    filtered_out: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Write ``moral_vectors.parquet``, ``diagnosis_sample.parquet`` and ``summary.json``.

    ``filtered_out`` defaults to ``vectors.attrs["filtered_out"]`` as set by
    ``build_ground_truth``. Returns the summary that was written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if filtered_out is None:
        filtered_out = vectors.attrs.get("filtered_out", {})
    summary = summarize(vectors, diagnosis, filtered_out)

    plain_vectors = vectors[list(VECTOR_COLUMNS)].copy()
    plain_vectors.attrs = {}
    plain_diagnosis = diagnosis[list(DIAGNOSIS_COLUMNS)].copy()
    plain_diagnosis.attrs = {}
    plain_vectors.to_parquet(out_dir / "moral_vectors.parquet", index=False)
    plain_diagnosis.to_parquet(out_dir / "diagnosis_sample.parquet", index=False)
    (out_dir / "summary.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    logger.info(
        "wrote %d moral-vector rows and %d diagnosis rows to %s",
        len(vectors),
        len(diagnosis),
        out_dir,
    )
    return summary


def write_expanded_csv(vectors: pd.DataFrame, path: str | Path) -> None:
    """Write a moral-vectors table in the expanded CSV format that ``expanded_csv`` reads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(EXPANDED_COLUMNS)
        for row in vectors.itertuples(index=False):
            record = row._asdict()
            vector = [float(record[slot]) for slot in SLOTS]
            writer.writerow(
                [
                    int(record["row_id"]),
                    record["id"],
                    record["action"],
                    record["rot_moral_foundations"],
                    repr(vector),
                    repr(float(record["m_virtue"])),
                    repr(float(record["m_vice"])),
                    record["target_dimension"],
                    record["split"],
                ]
            )
