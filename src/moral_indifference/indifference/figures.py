"""Figures of the indifference measures: curves over layers and centre cosine heatmaps.

Both functions write a PNG with the non-interactive Agg backend, so they run on machines
without a display.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

logger = logging.getLogger(__name__)

__all__ = ["plot_centre_cosine_heatmap", "plot_layer_curves"]

_LINE_STYLES = ("-", "--", ":", "-.")


def plot_layer_curves(
    table: pd.DataFrame,
    out_png: str | Path,
    measure: str,
    statistic: str,
    category: str | None = None,
) -> Path:
    """Plot one statistic against layer: one colour per model, one line style per pooling.

    ``table`` is a :func:`combine_layers` table (several models concatenated). With
    ``category`` None, values of a per-category statistic are averaged over categories;
    otherwise only that category ("" for overall statistics) is drawn.
    """
    subset = table[(table["measure"] == measure) & (table["statistic"] == statistic)]
    if category is not None:
        subset = subset[subset["category"] == category]
    if subset.empty:
        raise ValueError(f"table has no rows for measure {measure!r}, statistic {statistic!r}, category {category!r}")

    curves = subset.groupby(["model", "pooling", "layer"], sort=True)["value"].mean().reset_index()
    models = list(dict.fromkeys(curves["model"]))
    poolings = list(dict.fromkeys(curves["pooling"]))
    palette = sns.color_palette("tab20", n_colors=max(len(models), 1))

    figure, axes = plt.subplots(figsize=(8, 4.5))
    for model_number, model in enumerate(models):
        for pooling_number, pooling in enumerate(poolings):
            line = curves[(curves["model"] == model) & (curves["pooling"] == pooling)]
            if line.empty:
                continue
            axes.plot(
                line["layer"].to_numpy(),
                line["value"].to_numpy(),
                color=palette[model_number],
                linestyle=_LINE_STYLES[pooling_number % len(_LINE_STYLES)],
                marker="." if len(line) < 50 else None,
                label=f"{model} ({pooling})",
            )
    axes.set_xlabel("layer (decoder block, 0-based)")
    label = statistic if category in (None, "") else f"{statistic} [{category}]"
    axes.set_ylabel(label)
    axes.set_title(f"{measure}: {label}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()

    path = Path(out_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(figure)
    logger.info("wrote %s", path)
    return path


def plot_centre_cosine_heatmap(matrix_df: pd.DataFrame, out_png: str | Path, title: str) -> Path:
    """Draw a centre cosine matrix as an annotated heatmap on a fixed [-1, 1] colour scale.

    NaN cells (slots without prototypes) are left blank.
    """
    figure, axes = plt.subplots(figsize=(7.5, 6.5))
    sns.heatmap(
        matrix_df.astype(np.float64),
        ax=axes,
        vmin=-1.0,
        vmax=1.0,
        center=0.0,
        cmap="coolwarm",
        annot=True,
        fmt=".2f",
        annot_kws={"fontsize": 7},
        square=True,
        cbar_kws={"label": "cosine"},
    )
    axes.set_title(title)
    axes.set_xlabel("")
    axes.set_ylabel("")
    figure.tight_layout()

    path = Path(out_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=150)
    plt.close(figure)
    logger.info("wrote %s", path)
    return path
