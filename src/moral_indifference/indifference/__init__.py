"""The four indifference measures, computed per model, layer and pooling.

A model is *morally indifferent* at a layer when its representations do not track moral
categories. Four measures test this from different angles (one module each):

- :mod:`.categorical`: cosine between virtue and vice prototype centres (high = indifferent);
- :mod:`.gradient`: Spearman/Pearson between centre proximity and human typicality;
- :mod:`.structural`: ARI between HDBSCAN clusters and foundation/polarity labels;
- :mod:`.dimensional`: test R² of a linear probe from raw activations to the moral vector.

:func:`compute_layer` runs the selected measures on one layer's pooled representations and
returns a long table with one row per (pooling, measure, statistic, category). The first
three measures use the diagnosis sample and the probe uses the moral-vectors table; both are
joined to the activation rows by annotation ``id``. :func:`combine_layers` stacks the saved
per-layer results of one model, and :func:`cross_model_table` summarises the peaks over layers.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from moral_indifference.foundations import FOUNDATIONS, SLOTS

from .categorical import CategoricalResult, categorical_indifference, category_centres, centre_rows
from .dimensional import ProbeConfig, ProbeResult, annotation_rows, dimensional_indifference
from .gradient import GradientConfig, GradientResult, gradient_indifference
from .structural import StructuralConfig, StructuralResult, structural_indifference

logger = logging.getLogger(__name__)

__all__ = [
    "CategoricalResult",
    "GradientConfig",
    "GradientResult",
    "IndifferenceConfig",
    "LayerResult",
    "MEASURES",
    "ProbeConfig",
    "ProbeResult",
    "RECORD_COLUMNS",
    "StructuralConfig",
    "StructuralResult",
    "best_layer",
    "categorical_indifference",
    "combine_layers",
    "compute_layer",
    "cross_model_table",
    "dimensional_indifference",
    "get_measure",
    "gradient_indifference",
    "load_layer_result",
    "save_layer_result",
    "structural_indifference",
]

RECORD_COLUMNS: tuple[str, ...] = ("pooling", "measure", "statistic", "category", "value", "n")
"""Columns of :attr:`LayerResult.records`. ``category`` is "" for a statistic that is not per
foundation or slot; ``n`` is the number of rows (or points) the value is computed from."""

RESULT_FORMAT_VERSION = 1


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class IndifferenceConfig:
    """Settings of the indifference stage: which poolings and measures, and their parameters."""

    structural: StructuralConfig = field(default_factory=StructuralConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    gradient: GradientConfig = field(default_factory=GradientConfig)
    poolings: tuple[str, ...] = ("mean", "last")
    measures: tuple[str, ...] = ("categorical", "gradient", "structural", "dimensional")

    def __post_init__(self) -> None:
        for name in self.measures:
            get_measure(name)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> IndifferenceConfig:
        """Build a config from a plain dict (e.g. parsed YAML); nested dicts become sub-configs."""
        valid = {item.name for item in fields(cls)}
        unknown = set(values) - valid
        if unknown:
            raise KeyError(
                f"unknown indifference setting(s) {', '.join(sorted(unknown))}; valid names: {', '.join(sorted(valid))}"
            )
        kwargs: dict[str, Any] = {}
        if "structural" in values:
            kwargs["structural"] = StructuralConfig(**values["structural"])
        if "probe" in values:
            kwargs["probe"] = ProbeConfig(**values["probe"])
        if "gradient" in values:
            kwargs["gradient"] = GradientConfig(**values["gradient"])
        for name in ("poolings", "measures"):
            if name in values:
                kwargs[name] = tuple(values[name])
        return cls(**kwargs)


# ----------------------------------------------------------------------------- joining rows


@dataclass
class _LayerContext:
    """Aligned inputs of one layer, shared by the measures and cached per pooling."""

    representations: Mapping[str, np.ndarray]
    diagnosis: pd.DataFrame
    diagnosis_positions: np.ndarray
    vectors: pd.DataFrame | None
    vector_positions: np.ndarray | None
    config: IndifferenceConfig
    centres: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    centre_cosine: dict[str, pd.DataFrame] = field(default_factory=dict)

    def diagnosis_reps(self, pooling: str) -> np.ndarray:
        return self.representations[pooling][self.diagnosis_positions]

    def vector_reps(self, pooling: str) -> np.ndarray:
        if self.vectors is None or self.vector_positions is None:
            raise ValueError("the dimensional measure needs the moral-vectors table; pass vectors to compute_layer")
        return self.representations[pooling][self.vector_positions]


def _position_lookup(index: pd.DataFrame) -> pd.Series:
    if "id" not in index.columns:
        raise KeyError("activations index has no 'id' column; it must be the index.parquet of the activations folder")
    duplicated = index["id"][index["id"].duplicated()]
    if len(duplicated):
        raise ValueError(f"activations index lists id {duplicated.iloc[0]!r} more than once; ids must be unique")
    positions = index["position"].to_numpy() if "position" in index.columns else np.arange(len(index))
    return pd.Series(positions, index=index["id"].astype(str).to_numpy())


def _diagnosis_positions(diagnosis: pd.DataFrame, lookup: pd.Series) -> np.ndarray:
    ids = diagnosis["id"].astype(str)
    missing = ~ids.isin(lookup.index)
    if missing.any():
        row = int(np.flatnonzero(missing.to_numpy())[0])
        raise KeyError(
            f"diagnosis sample row {row} has id {ids.iloc[row]!r}, which is missing from the activations "
            f"index (index.parquet); {int(missing.sum())} diagnosis id(s) are missing in all. "
            "Extract activations for every diagnosis-sample row."
        )
    return lookup.loc[ids.to_numpy()].to_numpy()


def _vector_rows(vectors: pd.DataFrame, lookup: pd.Series) -> tuple[pd.DataFrame, np.ndarray]:
    rows = annotation_rows(vectors)
    present = rows["id"].astype(str).isin(lookup.index)
    if not present.all():
        logger.warning(
            "%d of %d moral-vectors annotations have no activations in the index; the probe uses the other %d",
            int((~present).sum()),
            len(rows),
            int(present.sum()),
        )
        rows = rows[present.to_numpy()].reset_index(drop=True)
    if rows.empty:
        raise ValueError("no moral-vectors annotation id is in the activations index; the probe has no rows")
    return rows, lookup.loc[rows["id"].astype(str).to_numpy()].to_numpy()


# ----------------------------------------------------------------------------- measures

Record = dict[str, Any]
Measure = Callable[[str, _LayerContext], list[Record]]


def _record(statistic: str, value: float, n: int, category: str = "") -> Record:
    return {"statistic": statistic, "category": category, "value": float(value), "n": int(n)}


def _categorical_measure(pooling: str, context: _LayerContext) -> list[Record]:
    result = categorical_indifference(context.diagnosis_reps(pooling), context.diagnosis)
    context.centres[pooling] = result.centres
    context.centre_cosine[pooling] = result.cosine
    records = []
    for foundation in FOUNDATIONS:
        virtue, vice = foundation.split("-")
        n = result.n_prototypes[virtue] + result.n_prototypes[vice]
        records.append(_record("virtue_vice_cosine", result.virtue_vice_cosine[foundation], n, foundation))
    records.append(_record("mean_off_diagonal", result.mean_off_diagonal, sum(result.n_prototypes.values())))
    for slot in SLOTS:
        records.append(_record("n_prototypes", result.n_prototypes[slot], result.n_prototypes[slot], slot))
    return records


def _gradient_measure(pooling: str, context: _LayerContext) -> list[Record]:
    reps = context.diagnosis_reps(pooling)
    centres = context.centres.get(pooling)
    if centres is None:
        centres, _ = category_centres(centre_rows(reps), context.diagnosis)
    result = gradient_indifference(reps, context.diagnosis, centres, context.config.gradient)
    records = [
        _record("spearman", result.overall.spearman, result.overall.n),
        _record("pearson", result.overall.pearson, result.overall.n),
    ]
    for slot, correlation in result.per_category.items():
        records.append(_record("spearman", correlation.spearman, correlation.n, slot))
        records.append(_record("pearson", correlation.pearson, correlation.n, slot))
    return records


def _structural_measure(pooling: str, context: _LayerContext) -> list[Record]:
    result = structural_indifference(context.diagnosis_reps(pooling), context.diagnosis, context.config.structural)
    n_rows = len(context.diagnosis)
    return [
        _record("ari_foundation", result.ari["foundation"], result.n_clustered),
        _record("ari_polarity", result.ari["polarity"], result.n_clustered),
        _record("ari_foundation_polarity", result.ari["foundation_polarity"], result.n_clustered),
        _record("noise_ratio", result.noise_ratio, n_rows),
        _record("n_clusters", result.n_clusters, n_rows),
        _record("n_components", result.n_components, n_rows),
    ]


def _dimensional_measure(pooling: str, context: _LayerContext) -> list[Record]:
    reps = context.vector_reps(pooling)
    result = dimensional_indifference(reps, context.vectors, context.config.probe)
    records = [
        _record("r2", result.r2, result.n_test),
        _record("adjusted_r2", result.adjusted_r2, result.n_test),
        _record("r2_variance_weighted", result.r2_variance_weighted, result.n_test),
        _record("epochs", result.epochs, result.n_train),
    ]
    for slot, value in result.r2_per_slot.items():
        records.append(_record("r2", value, result.n_test, slot))
    return records


MEASURES: dict[str, Measure] = {
    "categorical": _categorical_measure,
    "gradient": _gradient_measure,
    "structural": _structural_measure,
    "dimensional": _dimensional_measure,
}
"""Measure name -> function ``(pooling, context) -> records``; :func:`compute_layer` runs them."""


def get_measure(name: str) -> Measure:
    """Look up a measure by name; raise ``KeyError`` listing the valid names if it is unknown."""
    if name not in MEASURES:
        raise KeyError(f"unknown indifference measure {name!r}; valid names: {', '.join(MEASURES)}")
    return MEASURES[name]


# ----------------------------------------------------------------------------- one layer


@dataclass
class LayerResult:
    """All measures of one model and layer."""

    records: pd.DataFrame
    """Long table with columns ``RECORD_COLUMNS``."""
    centre_cosine: dict[str, pd.DataFrame]
    """10x10 centre cosine matrix per pooling (only when the categorical measure ran)."""


def compute_layer(
    representations: dict[str, np.ndarray],
    index: pd.DataFrame,
    diagnosis: pd.DataFrame,
    vectors: pd.DataFrame | None,
    config: IndifferenceConfig,
    measures: Sequence[str] | None = None,
) -> LayerResult:
    """Run the selected measures on every configured pooling of one layer.

    ``representations`` maps pooling name to an array [len(index), d_model] whose rows are
    given by ``index["position"]`` (row order if there is no such column). Diagnosis rows are
    joined by ``id``, and every diagnosis id must be in ``index``. Moral-vectors rows are
    reduced to one per annotation id. Annotations without activations are skipped with a warning.
    ``measures`` defaults to ``config.measures``.
    """
    names = tuple(measures) if measures is not None else config.measures
    functions = {name: get_measure(name) for name in names}
    for pooling in config.poolings:
        if pooling not in representations:
            raise KeyError(
                f"pooling {pooling!r} is not in the layer's representations; available: {', '.join(representations)}"
            )
        if len(representations[pooling]) != len(index):
            raise ValueError(
                f"pooling {pooling!r} has {len(representations[pooling])} rows but the activations index has {len(index)}"
            )

    lookup = _position_lookup(index)
    diagnosis = diagnosis.reset_index(drop=True)
    vector_rows, vector_positions = (None, None)
    if "dimensional" in functions:
        if vectors is None:
            raise ValueError("the dimensional measure needs the moral-vectors table; pass vectors or drop the measure")
        vector_rows, vector_positions = _vector_rows(vectors, lookup)
    context = _LayerContext(
        representations=representations,
        diagnosis=diagnosis,
        diagnosis_positions=_diagnosis_positions(diagnosis, lookup),
        vectors=vector_rows,
        vector_positions=vector_positions,
        config=config,
    )

    records: list[Record] = []
    for pooling in config.poolings:
        for name, function in functions.items():
            logger.info("computing %s indifference for pooling %r", name, pooling)
            for record in function(pooling, context):
                records.append({"pooling": pooling, "measure": name, **record})
    table = pd.DataFrame.from_records(records, columns=list(RECORD_COLUMNS))
    table["value"] = table["value"].astype(np.float64)
    table["n"] = table["n"].astype(np.int64)
    return LayerResult(records=table, centre_cosine=dict(context.centre_cosine))


# ----------------------------------------------------------------------------- persistence


def _json_number(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def save_layer_result(result: LayerResult, path_json: str | Path) -> None:
    """Write a layer result as UTF-8 JSON (NaN stored as null), readable by :func:`load_layer_result`."""
    records = [
        {
            "pooling": str(row.pooling),
            "measure": str(row.measure),
            "statistic": str(row.statistic),
            "category": str(row.category),
            "value": _json_number(float(row.value)),
            "n": int(row.n),
        }
        for row in result.records.itertuples(index=False)
    ]
    matrices = {
        pooling: {
            "index": [str(label) for label in matrix.index],
            "columns": [str(label) for label in matrix.columns],
            "data": [[_json_number(float(value)) for value in row] for row in matrix.to_numpy()],
        }
        for pooling, matrix in result.centre_cosine.items()
    }
    payload = {"format_version": RESULT_FORMAT_VERSION, "records": records, "centre_cosine": matrices}
    path = Path(path_json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1, allow_nan=False), encoding="utf-8")


def load_layer_result(path_json: str | Path) -> LayerResult:
    """Read a layer result written by :func:`save_layer_result`."""
    path = Path(path_json)
    payload = json.loads(path.read_text(encoding="utf-8"))
    if payload.get("format_version") != RESULT_FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {payload.get('format_version')!r}, expected {RESULT_FORMAT_VERSION}; "
            "recompute the layer result"
        )
    table = pd.DataFrame.from_records(payload["records"], columns=list(RECORD_COLUMNS))
    table["value"] = pd.to_numeric(table["value"]).astype(np.float64)
    table["n"] = table["n"].astype(np.int64)
    matrices = {}
    for pooling, matrix in payload["centre_cosine"].items():
        data = np.array([[np.nan if value is None else value for value in row] for row in matrix["data"]], dtype=np.float64)
        matrices[pooling] = pd.DataFrame(data, index=pd.Index(matrix["index"], name="slot"), columns=matrix["columns"])
    return LayerResult(records=table, centre_cosine=matrices)


_LAYER_PATTERN = re.compile(r"layer_(\d+)")


def combine_layers(paths: Mapping[int, str | Path] | Sequence[str | Path], model: str) -> pd.DataFrame:
    """Stack saved layer results of one model, adding ``model`` and ``layer`` columns.

    ``paths`` is either a mapping layer -> JSON path or a sequence of paths whose file or
    folder name contains ``layer_<L>`` (e.g. ``layer_007.json``).
    """
    if isinstance(paths, Mapping):
        items = [(int(layer), Path(path)) for layer, path in paths.items()]
    else:
        items = []
        for path in map(Path, paths):
            # The last match wins, so "results/layer_runs/layer_007.json" gives layer 7.
            matches = _LAYER_PATTERN.findall(path.as_posix())
            if not matches:
                raise ValueError(f"cannot tell the layer of {path}: its name must contain 'layer_<L>', or pass a mapping")
            items.append((int(matches[-1]), path))
    frames = []
    for layer, path in sorted(items):
        frame = load_layer_result(path).records
        frame.insert(0, "layer", layer)
        frame.insert(0, "model", model)
        frames.append(frame)
    if not frames:
        raise ValueError(f"no layer results given for model {model!r}")
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- summaries


def _layer_curve(table: pd.DataFrame, measure: str, statistic: str, category: str | None) -> pd.Series:
    """Return the value per layer, averaged over categories when ``category`` is None."""
    subset = table[(table["measure"] == measure) & (table["statistic"] == statistic)]
    if category is not None:
        subset = subset[subset["category"] == category]
    return subset.groupby("layer")["value"].mean()


def best_layer(
    table: pd.DataFrame,
    pooling: str,
    model: str | None = None,
    measure: str | None = None,
    statistic: str | None = None,
) -> int:
    """Choose the layer whose centre-cosine heatmap is shown.

    With no ``measure``, the choice is the layer with the highest test R² of the probe
    (dimensional ``r2``, category ""), i.e. where moral content is most linearly readable.
    Without finite R² values it falls back to the layer with the highest virtue-vice cosine
    averaged over the five foundations, i.e. the most indifferent layer. With ``measure`` and
    ``statistic``, the layer maximising that statistic (averaged over categories) is returned.
    Ties go to the lowest layer.
    """
    subset = table[table["pooling"] == pooling]
    if model is not None:
        subset = subset[subset["model"] == model]
    if "model" in subset.columns and subset["model"].nunique() > 1:
        raise ValueError(f"table contains several models ({', '.join(subset['model'].unique())}); pass model=")
    if measure is not None:
        if statistic is None:
            raise ValueError("pass statistic= together with measure=")
        candidates = [(measure, statistic, None)]
    else:
        candidates = [("dimensional", "r2", ""), ("categorical", "virtue_vice_cosine", None)]
    for name, stat, category in candidates:
        curve = _layer_curve(subset, name, stat, category).dropna()
        if len(curve):
            return int(curve.idxmax())
    raise ValueError(f"no finite values to choose a layer from for pooling {pooling!r} (tried {candidates})")


def _peak(curve: pd.Series, counts: pd.Series) -> tuple[float, float, float]:
    curve = curve.dropna()
    if curve.empty:
        return float("nan"), float("nan"), float("nan")
    layer = curve.idxmax()
    return float(curve.loc[layer]), float(layer), float(counts.get(layer, float("nan")))


def cross_model_table(per_model: pd.DataFrame) -> pd.DataFrame:
    """Summarise each model and pooling over layers: peaks, their layers and their n.

    Columns: ``peak_spearman`` (overall gradient Spearman), ``max_virtue_vice_cosine`` and
    ``mean_virtue_vice_cosine`` (per layer the mean over foundations, then max and mean over
    layers), ``peak_ari_polarity``, ``peak_ari_foundation``, ``best_r2``,
    ``best_adjusted_r2`` and ``best_r2_variance_weighted`` (maxima over layers), each maximum
    with ``*_layer`` and ``*_n``.
    """
    specs = {
        "peak_spearman": ("gradient", "spearman", ""),
        "max_virtue_vice_cosine": ("categorical", "virtue_vice_cosine", None),
        "peak_ari_polarity": ("structural", "ari_polarity", ""),
        "peak_ari_foundation": ("structural", "ari_foundation", ""),
        "best_r2": ("dimensional", "r2", ""),
        "best_adjusted_r2": ("dimensional", "adjusted_r2", ""),
        "best_r2_variance_weighted": ("dimensional", "r2_variance_weighted", ""),
    }
    rows = []
    for (model, pooling), group in per_model.groupby(["model", "pooling"], sort=True):
        row: dict[str, Any] = {"model": model, "pooling": pooling}
        for column, (measure, statistic, category) in specs.items():
            curve = _layer_curve(group, measure, statistic, category)
            counts = group[(group["measure"] == measure) & (group["statistic"] == statistic)]
            if category is not None:
                counts = counts[counts["category"] == category]
            count_curve = counts.groupby("layer")["n"].min()
            value, layer, n = _peak(curve, count_curve)
            row[column] = value
            row[f"{column}_layer"] = layer
            row[f"{column}_n"] = n
            if column == "max_virtue_vice_cosine":
                row["mean_virtue_vice_cosine"] = float(curve.mean()) if curve.notna().any() else float("nan")
        rows.append(row)
    summary = pd.DataFrame(rows)
    for column in summary.columns:
        if column.endswith(("_layer", "_n")):
            summary[column] = summary[column].astype("Int64")
    return summary
