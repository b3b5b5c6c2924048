"""The results summary: one markdown page with the headline table of every stage.

The page is written from the tables the workflow already produced, never from numbers
computed here, so every figure in it can be traced to a file and its provenance record
under ``<results>/provenance``. Each table states its sample sizes.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from moral_indifference.provenance import git_state, package_versions

logger = logging.getLogger(__name__)

DEMO_CAVEAT = (
    "This run used the embedded default: SmolLM2-135M-Instruct and its random-init control "
    "on a few hundred hand-written demo rows and a few dozen demo prompts, judged by the same "
    "small model. The numbers show that every stage runs and how the outputs look. They are "
    "not estimates of the paper's quantities: the samples are tiny, the demo labels are "
    "written to cover every stratum rather than drawn from Social-Chemistry-101, and the "
    "135M-parameter judge names whichever answer is shown first, so asking in both orders "
    "turns its verdicts into ties."
)


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """Render ``frame`` as a GitHub markdown table; floats rounded to ``digits``."""
    if frame.empty:
        return "_(no rows)_"

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _relative(path: str | Path, start: Path) -> str:
    return os.path.relpath(Path(path), start)


def _as_list(value: Any) -> list[str]:
    if isinstance(value, (str, Path)):
        return [str(value)]
    return [str(item) for item in value]


def _read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _format(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def ground_truth_section(summary_path: str | Path) -> list[str]:
    """Summarise the ground-truth counts: splits, foundations, slots and diagnosis strata."""
    summary = _read_json(summary_path)
    splits = pd.DataFrame(
        {
            "split": list(summary["rows_per_split"]),
            "rows": list(summary["rows_per_split"].values()),
            "annotations": [summary["annotations_per_split"][split] for split in summary["rows_per_split"]],
        }
    )
    slots = pd.DataFrame([summary["nonzero_per_slot"]])
    strata = pd.Series(summary["diagnosis_rows_per_stratum"])
    parts = strata.index.str.split("/", expand=True)
    pivot = (
        pd.DataFrame({"foundation": parts.get_level_values(0), "column": [f"{kind} {level}" for _, kind, level in parts], "rows": strata.to_numpy()})
        .pivot_table(index="foundation", columns="column", values="rows", aggfunc="sum", fill_value=0)
        .reset_index()
    )
    pivot.columns.name = None
    filtered = summary.get("filtered_out", {})
    return [
        "## Ground truth",
        "",
        f"{summary['annotations']} annotations expand to {summary['rows']} rows (one per listed "
        f"foundation); {filtered.get('total', 0)} input rows were filtered out "
        f"({', '.join(f'{key} {value}' for key, value in filtered.items() if key != 'total') or 'none'}). "
        f"The diagnosis sample has {summary['diagnosis_rows']} rows.",
        "",
        markdown_table(splits),
        "",
        "Rows with a non-zero value per slot:",
        "",
        markdown_table(slots),
        "",
        "Diagnosis sample rows per foundation and stratum (polarity, typicality):",
        "",
        markdown_table(pivot),
        "",
    ]


INDIFFERENCE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("peak_spearman", "peak gradient Spearman"),
    ("max_virtue_vice_cosine", "max virtue-vice cosine"),
    ("peak_ari_polarity", "peak polarity ARI"),
    ("peak_ari_foundation", "peak foundation ARI"),
    ("best_r2", "best probe R²"),
    ("best_r2_variance_weighted", "best probe R², variance-weighted"),
)


def compact_indifference_table(table: pd.DataFrame) -> pd.DataFrame:
    """Merge each statistic with its layer and n into one cell: ``value (L layer, n N)``."""
    rows = []
    for record in table.to_dict("records"):
        row = {key: record.get(key) for key in ("model", "group", "pooling") if key in record}
        for column, label in INDIFFERENCE_COLUMNS:
            if column not in record:
                continue
            cell = _format(record[column])
            layer, n = record.get(f"{column}_layer"), record.get(f"{column}_n")
            if cell != "n/a" and layer is not None and not pd.isna(layer):
                cell += f" (L{int(layer)}, n {int(n)})" if n is not None and not pd.isna(n) else f" (L{int(layer)})"
            row[label] = cell
        if "mean_virtue_vice_cosine" in record:
            row["mean virtue-vice cosine"] = _format(record["mean_virtue_vice_cosine"])
        rows.append(row)
    return pd.DataFrame(rows)


def indifference_section(table_path: str | Path, heatmaps: Sequence[str], curves_dir: str | Path, out_dir: Path) -> list[str]:
    """Summarise the cross-model indifference table and link its figures."""
    table = pd.read_parquet(table_path)
    lines = [
        "## Indifference",
        "",
        "Per model and pooling: the peak over layers of each measure, with its layer (L) and the "
        "number of values it rests on (n). A virtue-vice cosine near 1 means the two poles of a "
        "foundation are represented alike (indifference); the gradient Spearman, the ARIs and "
        "the probe R² are higher when the model separates the concepts. n is the number of "
        "virtue plus vice prototypes for the cosine, of (row, pole) points for the gradient "
        "(neutral rows count once per pole), of clustered rows for an ARI, and of test "
        "annotations for the probe. Compare each model with the random-init control, which "
        "shows what the pipeline reports without moral knowledge. Every layer is in "
        "`indifference/all_layers.parquet`, the full summary in `indifference/summary.parquet`.",
        "",
        markdown_table(compact_indifference_table(table)),
        "",
    ]
    for heatmap in heatmaps:
        lines.append(f"![centre cosine]({_relative(heatmap, out_dir)})")
    curves = sorted(Path(curves_dir).glob("*.png"))
    lines.append("")
    for curve in curves:
        lines.append(f"![{curve.stem}]({_relative(curve, out_dir)})")
    lines.append("")
    return lines


def sae_section(history_paths: Sequence[str], feature_paths: Sequence[str]) -> list[str]:
    """Summarise SAE training (last epoch) and the latent classes per layer."""
    rows = []
    for history_path, feature_path in zip(sorted(history_paths), sorted(feature_paths)):
        layer = Path(history_path).parent.name
        history = _read_json(history_path)
        epochs = history.get("epochs", history) if isinstance(history, dict) else history
        last = epochs[-1] if epochs else {}
        features = _read_json(feature_path)
        row = {"layer": layer}
        for key in ("epoch", "mse", "l0", "l1_coefficient", "explained_variance"):
            if key in last:
                row[f"final {key}"] = last[key]
        row.update({key: value for key, value in features.items() if isinstance(value, int)})
        rows.append(row)
    return [
        "## Sparse autoencoders and moral features",
        "",
        "Last training epoch of each SAE (the L1 coefficient is adapted each epoch toward the "
        "target L0, within [1e-6, 100]), and its latents classified on the validation split "
        "(n_rows) as mono-semantic, poly-semantic or weak. n_selected is the number of moral "
        "latents that realignment may change.",
        "",
        markdown_table(pd.DataFrame(rows), digits=4),
        "",
    ]


def realignment_section(paths: Sequence[str]) -> list[str]:
    """Summarise before/after values of the realigned SAEs (overall and per-foundation values)."""
    frames = []
    for path in sorted(paths):
        frame = pd.read_parquet(path)
        frame.insert(0, "layer", Path(path).parent.name)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)

    # Per-slot correlations and prototype counts stay in the parquet files.
    keep = (table["statistic"] != "n_prototypes") & (
        (table["measure"] != "gradient") | (table["category"] == "")
    )
    table = table[keep]

    index = [column for column in ("layer", "measure", "statistic", "category") if column in table]
    wide = table.pivot_table(index=index, columns="stage", values="value", aggfunc="first").reset_index()
    wide.columns.name = None
    if {"before", "after"} <= set(wide.columns):
        wide = wide[[*index, "before", "after"]]
        wide["change"] = wide["after"] - wide["before"]
        # Latent counts are integers; show them without decimals.
        counts = wide["statistic"].str.startswith("n_")
        for column in ("before", "after", "change"):
            wide[column] = [
                f"{value:.0f}" if is_count else value for value, is_count in zip(wide[column], counts)
            ]

    return [
        "## Realignment: before and after",
        "",
        "Feature diagnostics on the validation split, and indifference measures on the SAE "
        "reconstructions of the diagnosis rows, before and after realignment. Per-slot values "
        "are in each layer's `before_after.parquet`.",
        "",
        markdown_table(wide),
        "",
    ]


def compact_win_rates(table: pd.DataFrame) -> pd.DataFrame:
    """Keep the counts and put each win rate and its interval in one cell."""
    rows = []
    for record in table.to_dict("records"):
        row = {key: record.get(key) for key in ("model", "layer", "condition", "strength", "judge_model")}
        row.update({key: record.get(key) for key in ("n", "wins", "losses", "ties", "failures")})
        for name, label in (("win_rate_ties_half", "win rate, ties half"), ("win_rate_ties_lose", "win rate, ties lose")):
            low, high = record.get(f"{name}_ci_low"), record.get(f"{name}_ci_high")
            row[label] = f"{_format(record.get(name))} [{_format(low)}, {_format(high)}]"
        rows.append(row)
    return pd.DataFrame(rows)


def flames_section(win_rates_path: str | Path, rubric_path: str | Path) -> list[str]:
    """Summarise win rates (with bootstrap intervals) and rubric scores."""
    return [
        "## Flames: steered against baseline",
        "",
        "A win counts only when both presentation orders agree; judge failures are counted "
        "apart and left out of n and of the win rates. Brackets hold 95% percentile bootstrap "
        "intervals over prompts.",
        "",
        markdown_table(compact_win_rates(pd.read_parquet(win_rates_path))),
        "",
        "### Rubric scores (1-3) per dimension",
        "",
        markdown_table(pd.read_parquet(rubric_path)),
        "",
    ]


def run_section(config: Mapping[str, Any]) -> list[str]:
    """Describe the run: models, code version, packages."""
    models = pd.DataFrame(
        [
            {
                "model": entry["name"],
                "source": entry["source"]["kind"],
                "layers": entry["n_layers"],
                "group": entry["group"],
                "architecture": entry["architecture"],
                "params (B)": entry.get("params_b"),
            }
            for entry in config["models"]
        ]
    )
    code = git_state(Path(__file__).resolve().parent)
    versions = ", ".join(f"{name} {version}" for name, version in package_versions().items() if version)
    return [
        "## Run",
        "",
        f"Code: commit `{code['commit']}`{' with uncommitted changes' if code['dirty'] else ''}. "
        f"Packages: {versions}. Provenance of every output: `{config['results']}/provenance/`.",
        "",
        markdown_table(models),
        "",
    ]


def is_embedded_default(config: Mapping[str, Any]) -> bool:
    """Return whether ``config`` runs on the bundled demo data."""
    return str(config["ground_truth"]["path"]).startswith("resources/demo/")


def write_summary(inputs: Mapping[str, Any], config: Mapping[str, Any], out_path: str | Path) -> Path:
    """Write the markdown results summary from the workflow's tables and figures."""
    out_path = Path(out_path)
    out_dir = out_path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Moral indifference: results summary", ""]
    if is_embedded_default(config):
        lines += [f"> {DEMO_CAVEAT}", ""]
    lines += run_section(config)
    lines += ground_truth_section(inputs["ground_truth"])
    lines += indifference_section(
        inputs["indifference"], _as_list(inputs["heatmaps"]), inputs["curves"], out_dir
    )
    lines += sae_section(_as_list(inputs["sae_history"]), _as_list(inputs["features"]))
    lines += realignment_section(_as_list(inputs["before_after"]))
    lines += flames_section(inputs["win_rates"], inputs["rubric"])
    out_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logger.info("wrote results summary to %s", out_path)
    return out_path
