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
    "written to cover every stratum rather than drawn from Social-Chemistry-101, and a "
    "135M-parameter judge produces mostly unparseable or arbitrary verdicts."
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


def ground_truth_section(summary_path: str | Path) -> list[str]:
    """Summarise the ground-truth counts."""
    summary = _read_json(summary_path)
    lines = ["## Ground truth", ""]
    scalars = {key: value for key, value in summary.items() if not isinstance(value, (dict, list))}
    if scalars:
        lines.append(markdown_table(pd.DataFrame({"count": list(scalars), "value": list(scalars.values())})))
        lines.append("")
    for key, value in summary.items():
        if isinstance(value, dict) and value and all(not isinstance(v, dict) for v in value.values()):
            lines.append(f"**{key.replace('_', ' ')}**")
            lines.append("")
            lines.append(markdown_table(pd.DataFrame({"key": list(value), "rows": list(value.values())})))
            lines.append("")
    return lines


def indifference_section(table_path: str | Path, heatmaps: Sequence[str], curves_dir: str | Path, out_dir: Path) -> list[str]:
    """Summarise the cross-model indifference table and link its figures."""
    table = pd.read_parquet(table_path)
    lines = [
        "## Indifference",
        "",
        "Peak and mean statistics over layers, per model and pooling "
        "(`indifference/summary.parquet`; every layer in `indifference/all_layers.parquet`).",
        "",
        markdown_table(table),
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
        row.update({f"final {key}": value for key, value in last.items() if isinstance(value, (int, float))})
        row.update({key: value for key, value in features.items() if isinstance(value, (int, float))})
        rows.append(row)
    return ["## Sparse autoencoders and moral features", "", markdown_table(pd.DataFrame(rows)), ""]


def realignment_section(paths: Sequence[str]) -> list[str]:
    """Summarise before/after values of the realigned SAEs."""
    frames = []
    for path in sorted(paths):
        frame = pd.read_parquet(path)
        frame.insert(0, "layer", Path(path).parent.name)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    index = [column for column in ("layer", "measure", "statistic", "category") if column in table]
    wide = table.pivot_table(index=index, columns="stage", values="value", aggfunc="first").reset_index()
    wide.columns.name = None
    if {"before", "after"} <= set(wide.columns):
        wide["change"] = wide["after"] - wide["before"]
    return [
        "## Realignment: before and after",
        "",
        "Feature diagnostics and indifference measures on the SAE reconstructions of the "
        "diagnosis rows, before and after realignment.",
        "",
        markdown_table(wide),
        "",
    ]


def flames_section(win_rates_path: str | Path, rubric_path: str | Path) -> list[str]:
    """Summarise win rates (with bootstrap intervals) and rubric scores."""
    return [
        "## Flames: steered against baseline",
        "",
        "A win counts only when both presentation orders agree; judge failures are counted "
        "apart and left out of the denominators. Intervals are 95% percentile bootstrap "
        "intervals over prompts.",
        "",
        markdown_table(pd.read_parquet(win_rates_path)),
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
    code = git_state()
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
