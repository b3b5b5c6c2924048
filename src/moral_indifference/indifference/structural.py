"""Structural indifference: do unsupervised clusters follow moral categories?

If a model organises actions by moral content, density-based clusters of its representations
should line up with the foundations or with the virtue/vice/neutral polarity. PCA reduces
the centred representations to the components that explain 95% of the variance. HDBSCAN
(Euclidean, min_cluster_size 100, min_samples 20 by default) clusters them, and the adjusted
Rand index (ARI) compares the clusters with three labelings: foundation (5 labels),
polarity (3) and foundation x polarity (15). Noise points (HDBSCAN
label -1) are excluded from the ARI and reported as the noise ratio.

When every point is noise (or there are fewer rows than ``min_samples``, so HDBSCAN cannot
run), there is no clustering to compare: the ARIs are NaN, the noise ratio is 1 and the
cluster count is 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import HDBSCAN
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from .categorical import centre_rows, row_foundations

logger = logging.getLogger(__name__)

__all__ = ["LABELINGS", "StructuralConfig", "StructuralResult", "labelings", "structural_indifference"]

LABELINGS: tuple[str, ...] = ("foundation", "polarity", "foundation_polarity")


@dataclass(frozen=True)
class StructuralConfig:
    """Settings of the PCA + HDBSCAN step."""

    explained_variance: float = 0.95
    """Fraction of variance the kept principal components explain (0 < value <= 1)."""
    min_cluster_size: int = 100
    min_samples: int = 20
    metric: str = "euclidean"
    seed: int = 0
    """Seed of the PCA solver (only used by randomised solvers)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.explained_variance <= 1.0:
            raise ValueError(f"explained_variance must be in (0, 1], got {self.explained_variance}")
        if self.min_cluster_size < 2:
            raise ValueError(f"min_cluster_size must be at least 2, got {self.min_cluster_size}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be at least 1, got {self.min_samples}")


@dataclass
class StructuralResult:
    """Clusters and their agreement with the moral labelings for one model, layer and pooling."""

    cluster_labels: np.ndarray
    """HDBSCAN label per row, -1 for noise."""
    ari: dict[str, float]
    """ARI per labeling name in ``LABELINGS``, over non-noise rows; NaN when all rows are noise."""
    noise_ratio: float
    n_clusters: int
    n_components: int
    """Principal components kept (0 when PCA was skipped because HDBSCAN could not run)."""
    n_clustered: int
    """Number of non-noise rows that the ARIs are computed over."""


def labelings(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Return the foundation, polarity and foundation x polarity label of each row."""
    if "polarity" not in rows.columns:
        raise KeyError("row table has no column 'polarity'; it is needed for the structural measure")
    foundation = row_foundations(rows).to_numpy()
    polarity = rows["polarity"].astype(str).to_numpy()
    combined = np.array([f"{f}/{p}" for f, p in zip(foundation, polarity, strict=True)], dtype=object)
    return {"foundation": foundation, "polarity": polarity, "foundation_polarity": combined}


def structural_indifference(reps: np.ndarray, rows: pd.DataFrame, config: StructuralConfig | None = None) -> StructuralResult:
    """Cluster centred, PCA-reduced representations with HDBSCAN and score them by ARI."""
    config = config or StructuralConfig()
    if len(reps) != len(rows):
        raise ValueError(f"representations have {len(reps)} rows but the row table has {len(rows)}")
    labels_by_name = labelings(rows)
    n_rows = len(rows)

    if n_rows < max(config.min_samples, 2):
        logger.warning(
            "only %d rows, fewer than min_samples=%d: HDBSCAN cannot run, so every row counts as noise",
            n_rows,
            config.min_samples,
        )
        return StructuralResult(
            cluster_labels=np.full(n_rows, -1),
            ari={name: float("nan") for name in LABELINGS},
            noise_ratio=1.0,
            n_clusters=0,
            n_components=0,
            n_clustered=0,
        )

    centred = centre_rows(reps)
    pca = PCA(n_components=config.explained_variance, svd_solver="full", random_state=config.seed)
    reduced = pca.fit_transform(centred) if config.explained_variance < 1.0 else centred
    n_components = int(pca.n_components_) if config.explained_variance < 1.0 else centred.shape[1]

    clusterer = HDBSCAN(
        min_cluster_size=config.min_cluster_size,
        min_samples=config.min_samples,
        metric=config.metric,
        copy=True,
    )
    cluster_labels = clusterer.fit_predict(reduced)
    clustered = cluster_labels != -1
    n_clustered = int(clustered.sum())
    n_clusters = int(len(np.unique(cluster_labels[clustered])))

    if n_clustered == 0:
        logger.warning("HDBSCAN labelled all %d rows as noise; ARIs are NaN", n_rows)
        ari = {name: float("nan") for name in LABELINGS}
    else:
        ari = {
            name: float(adjusted_rand_score(labels[clustered], cluster_labels[clustered]))
            for name, labels in labels_by_name.items()
        }

    return StructuralResult(
        cluster_labels=cluster_labels,
        ari=ari,
        noise_ratio=float(1.0 - n_clustered / n_rows),
        n_clusters=n_clusters,
        n_components=n_components,
        n_clustered=n_clustered,
    )
