"""Workflow steps: one function per Snakemake rule, from input files to output files.

Each function reads the files a rule names, calls the stage modules, and writes the rule's
outputs. Nothing here computes a result of its own: the numbers come from the stage
modules, so the same computation is available from Python without Snakemake. The
``workflow/scripts`` adapters only translate the ``snakemake`` object into these calls.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from moral_indifference import activations as activations_stage
from moral_indifference import ground_truth as ground_truth_stage
from moral_indifference.workflow import resolve_device

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- helpers


def _models() -> Any:
    """Import the models module on first use: transformers takes seconds to import."""
    from moral_indifference import models

    return models


def _write_json(data: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def model_device(device: str) -> str:
    """Return the device for :func:`models.load_model`: "auto" spreads over GPUs, else CPU."""
    resolved = resolve_device(device)
    return "auto" if device == "auto" and resolved == "cuda" else resolved


def layer_rows(
    activations_dir: str | Path,
    layer: int,
    pooling: str,
    vectors: pd.DataFrame,
    split: str | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Return one layer's pooled vectors row-aligned with moral-vector rows.

    Rows of ``vectors`` (optionally one ``split``) are joined to the activations index by
    annotation ``id``; several expanded rows of one annotation share its vector. An id
    without activations raises an error naming it.
    """
    index, arrays = activations_stage.load_layer(activations_dir, layer)
    if pooling not in arrays:
        raise KeyError(
            f"pooling {pooling!r} was not extracted in {activations_dir}; "
            f"available: {', '.join(sorted(arrays))}"
        )
    rows = vectors if split is None else vectors[vectors["split"] == split]
    rows = rows.reset_index(drop=True)
    position = dict(zip(index["id"], index["position"] if "position" in index else range(len(index))))
    missing = sorted(set(rows["id"]) - set(position))
    if missing:
        raise KeyError(
            f"{len(missing)} annotation ids have no activations in {activations_dir} "
            f"(first: {missing[:5]}); rerun extraction on the current ground truth"
        )
    return arrays[pooling][rows["id"].map(position).to_numpy()], rows


# ----------------------------------------------------------------------------- ground truth


def build_ground_truth(
    config: Mapping[str, Any], *, vectors_path: str | Path, diagnosis_path: str | Path, summary_path: str | Path
) -> None:
    """Build the moral vectors, the split and the diagnosis sample from the configured input."""
    settings = ground_truth_stage.GroundTruthConfig.from_dict(config)
    vectors, diagnosis = ground_truth_stage.build_ground_truth(settings)
    out_dir = Path(vectors_path).parent
    ground_truth_stage.write_ground_truth(
        vectors, diagnosis, out_dir, filtered_out=vectors.attrs.get("filtered_out")
    )
    for written, expected in (
        (out_dir / "moral_vectors.parquet", vectors_path),
        (out_dir / "diagnosis_sample.parquet", diagnosis_path),
        (out_dir / "summary.json", summary_path),
    ):
        if Path(written).resolve() != Path(expected).resolve():
            raise RuntimeError(f"ground truth was written to {written}, but the rule expects {expected}")


# ----------------------------------------------------------------------------- models


def prepare_model(
    spec: Mapping[str, Any], table: Sequence[Mapping[str, Any]], *, out_dir: str | Path, results: str | Path
) -> Path:
    """Materialise one model of the table; random-init controls read their template's folder."""
    specs = _models().read_model_table(table)

    def resolve(name: str) -> Path:
        return _models().resolve_model_dir(Path(results) / "models" / name / _models().MANIFEST_NAME)

    return _models().prepare_model(specs[spec["name"]], Path(out_dir), resolve)


# ----------------------------------------------------------------------------- activations


def extract_activations(
    *,
    manifest_path: str | Path,
    vectors_path: str | Path,
    out_dir: str | Path,
    config: Mapping[str, Any],
    device: str,
) -> None:
    """Pool the residual stream after every block for every annotation text of the ground truth."""
    settings = activations_stage.ActivationConfig(**config)
    model, tokenizer = _models().load_model(manifest_path, dtype=settings.dtype, device=model_device(device))
    texts = activations_stage.unique_texts(pd.read_parquet(vectors_path))
    logger.info("extracting activations of %d annotation texts", len(texts))
    index, layers = activations_stage.extract_activations(model, tokenizer, texts, settings)
    activations_stage.write_activations(out_dir, index, layers, settings)


# ----------------------------------------------------------------------------- indifference


def indifference_layer(
    *,
    activations_dir: str | Path,
    layer: int,
    vectors_path: str | Path,
    diagnosis_path: str | Path,
    config: Mapping[str, Any],
    out_path: str | Path,
) -> None:
    """Compute the four indifference measures of one layer for every configured pooling."""
    from moral_indifference import indifference

    settings = indifference.IndifferenceConfig.from_dict(
        {key: value for key, value in config.items() if key != "layers"}
    )
    index, arrays = activations_stage.load_layer(activations_dir, layer)
    result = indifference.compute_layer(
        arrays,
        index,
        pd.read_parquet(diagnosis_path),
        pd.read_parquet(vectors_path),
        settings,
    )
    indifference.save_layer_result(result, out_path)


def _layer_of(path: str | Path) -> int:
    return int(Path(path).stem.split("_")[-1])


def indifference_model(
    *, layer_paths: Sequence[str | Path], model: str, table_path: str | Path, heatmap_path: str | Path
) -> None:
    """Stack one model's layer results and draw its centre-cosine heatmap at the best layer."""
    from moral_indifference import indifference
    from moral_indifference.indifference import figures

    paths = {_layer_of(path): path for path in layer_paths}
    table = indifference.combine_layers(paths, model)
    Path(table_path).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(table_path, index=False)

    pooling = "last" if "last" in set(table["pooling"]) else str(table["pooling"].iloc[0])
    layer = indifference.best_layer(table, pooling=pooling, model=model)
    matrix = indifference.load_layer_result(paths[layer]).centre_cosine[pooling]
    figures.plot_centre_cosine_heatmap(
        matrix, heatmap_path, title=f"{model}, layer {layer}, {pooling} pooling: centre cosines"
    )
    logger.info("heatmap of %s at layer %d (%s pooling)", model, layer, pooling)


CURVES: tuple[tuple[str, str, str | None], ...] = (
    ("categorical", "virtue_vice_cosine", None),
    ("categorical", "mean_off_diagonal", ""),
    ("gradient", "spearman", ""),
    ("structural", "ari_polarity", ""),
    ("structural", "ari_foundation", ""),
    ("structural", "noise_ratio", ""),
    ("dimensional", "r2", ""),
)
"""(measure, statistic, category) of each per-layer curve; category None averages over categories."""


def indifference_summary(
    *,
    model_tables: Sequence[str | Path],
    models: Sequence[Mapping[str, Any]],
    table_path: str | Path,
    per_layer_path: str | Path,
    curves_dir: str | Path,
) -> None:
    """Write the cross-model table, all layers of all models, and one curve figure per statistic."""
    from moral_indifference import indifference
    from moral_indifference.indifference import figures

    per_layer = pd.concat([pd.read_parquet(path) for path in model_tables], ignore_index=True)
    per_layer.to_parquet(per_layer_path, index=False)
    summary = indifference.cross_model_table(per_layer)
    groups = {entry["name"]: entry["group"] for entry in models}
    if "model" in summary:
        summary.insert(1, "group", summary["model"].map(groups))
    summary.to_parquet(table_path, index=False)

    curves_dir = Path(curves_dir)
    curves_dir.mkdir(parents=True, exist_ok=True)
    present = set(zip(per_layer["measure"], per_layer["statistic"]))
    for measure, statistic, category in CURVES:
        if (measure, statistic) in present:
            figures.plot_layer_curves(
                per_layer, curves_dir / f"{measure}_{statistic}.png", measure, statistic, category
            )


# ----------------------------------------------------------------------------- SAEs


def _sae_training_config(sae_config: Mapping[str, Any], device: str) -> Any:
    from moral_indifference.sae import SAETrainingConfig

    return SAETrainingConfig(**sae_config.get("training", {}), device=resolve_device(device))


def train_sae(
    *,
    activations_dir: str | Path,
    layer: int,
    vectors_path: str | Path,
    config: Mapping[str, Any],
    out_dir: str | Path,
    device: str,
) -> None:
    """Train one SAE on the pooled representations of the training-split annotations."""
    from moral_indifference import sae as sae_stage

    vectors = pd.read_parquet(vectors_path)
    train = vectors[vectors["split"] == "train"].drop_duplicates("id")
    acts, _ = layer_rows(activations_dir, layer, config.get("pooling", "mean"), train)
    logger.info("training an SAE on %d training annotations (layer %d)", len(acts), layer)
    trained = sae_stage.train_sae(acts, _sae_training_config(config, device), d_in=acts.shape[1])
    sae_stage.save_sae(trained, out_dir)


def isolate_features(
    *,
    sae_dir: str | Path,
    activations_dir: str | Path,
    layer: int,
    vectors_path: str | Path,
    sae_config: Mapping[str, Any],
    feature_config: Mapping[str, Any],
    features_path: str | Path,
    selected_path: str | Path,
    summary_path: str | Path,
) -> None:
    """Classify every latent on the validation split and select the moral latents."""
    from moral_indifference import features as features_stage
    from moral_indifference import sae as sae_stage

    settings = features_stage.FeatureConfig(**feature_config)
    sae, centre = sae_stage.load_sae(sae_dir)
    acts, rows = layer_rows(
        activations_dir, layer, sae_config.get("pooling", "mean"), pd.read_parquet(vectors_path), split="val"
    )
    latents = sae_stage.encode(sae, centre, acts)
    table = features_stage.analyse_features(np.asarray(latents), rows, settings)
    table.to_parquet(features_path, index=False)
    selected = features_stage.select_moral_latents(table, settings)
    selected.save(selected_path)
    summary = features_stage.summarise_features(table)
    summary["n_rows"] = int(len(rows))
    summary["n_selected"] = int(len(selected.indices))
    _write_json(summary, summary_path)


# ----------------------------------------------------------------------------- Flames


def _flames_prompts(prompts_path: str | Path, flames_config: Mapping[str, Any]) -> pd.DataFrame:
    from moral_indifference.flames import read_flames, select_prompts

    prompts = read_flames(prompts_path)
    return select_prompts(prompts, flames_config.get("max_prompts"), flames_config.get("sample_seed", 0))


def _steerer(
    condition: str,
    layer: int,
    strength: float,
    files: Sequence[Path],
    sae_config: Mapping[str, Any],
    device: str = "cpu",
) -> tuple[Any, dict[str, Any]]:
    """Build the steerer of ``condition`` from its input files; return it and its settings."""
    from moral_indifference import steering

    kind = steering.get_condition(condition).kind
    if kind == "sae":
        from moral_indifference.sae import load_sae

        folder = files[0].parent
        sae, centre = load_sae(folder, device=resolve_device(device))
        settings = {"sae_dir": str(folder)}
        return steering.build_steerer(condition, strength, sae=sae, centre=centre), settings

    by_name = {path.name: path for path in files}
    activations_dir = by_name["index.parquet"].parent
    pooling = sae_config.get("pooling", "mean")
    index, arrays = activations_stage.load_layer(activations_dir, layer)
    vectors = pd.read_parquet(by_name["moral_vectors.parquet"])
    rows = vectors.merge(index[["id", "position"]], on="id")
    vector = steering.mean_difference_vector(arrays[pooling], rows)
    settings = {"activations_dir": str(activations_dir), "pooling": pooling, "vector_norm": float(np.linalg.norm(vector))}
    return steering.build_steerer(condition, strength, vector=vector), settings


def generate_answers(
    *,
    manifest_path: str | Path,
    prompts_path: str | Path,
    flames_config: Mapping[str, Any],
    model_name: str,
    out_path: str | Path,
    device: str,
    condition: str = "baseline",
    layer: int | None = None,
    steering_config: Mapping[str, Any] | None = None,
    steering_files: Sequence[Path] = (),
    sae_config: Mapping[str, Any] | None = None,
) -> None:
    """Answer the Flames prompts, unsteered (``condition="baseline"``) or steered at ``layer``."""
    from moral_indifference import generation
    from moral_indifference import steering

    settings = generation.GenerationConfig(**flames_config.get("generation", {}))
    prompts = _flames_prompts(prompts_path, flames_config)
    model, tokenizer = _models().load_model(manifest_path, device=model_device(device))
    steerer, metadata = None, {}
    if condition != "baseline":
        strength = float(steering_config["strength"])
        steerer, metadata = _steerer(condition, layer, strength, steering_files, sae_config or {}, device)
        metadata["strength"] = strength
    logger.info("generating %d %s answers with %s", len(prompts), condition, model_name)
    records = generation.generate_answers(
        model,
        tokenizer,
        prompts,
        settings,
        condition=condition,
        model_name=model_name,
        settings=metadata,
        steerer=steerer,
        layer=layer,
    )
    generation.write_jsonl(records, out_path)


def _judge(judge_config: Mapping[str, Any], results: str | Path, device: str) -> tuple[Any, Any]:
    """Build the judge settings and backend; the local backend loads its model from the table."""
    from moral_indifference import judging

    local = judge_config.get("backend", "local") == "local"
    model_path = (
        str(Path(results) / "models" / judge_config["model"] / _models().MANIFEST_NAME) if local else None
    )
    settings = judging.JudgeConfig(
        backend=judge_config.get("backend", "local"),
        base_url=judge_config.get("base_url"),
        model=judge_config.get("api_model"),
        api_key_env=judge_config.get("api_key_env", "OPENAI_API_KEY"),
        timeout_s=judge_config.get("timeout_s", 60.0),
        model_path=model_path,
        max_new_tokens=judge_config.get("max_new_tokens", 256),
        prefill=judge_config.get("prefill"),
        max_retries=judge_config.get("max_retries", 2),
        n_boot=judge_config.get("n_boot", 2000),
        seed=judge_config.get("seed", 0),
    )
    model = tokenizer = None
    if local:
        model, tokenizer = _models().load_model(model_path, device=model_device(device))
    return settings, judging.build_judge(settings, model=model, tokenizer=tokenizer)


def judge_pairwise(
    *,
    baseline_path: str | Path,
    steered_path: str | Path,
    judge_config: Mapping[str, Any],
    results: str | Path,
    device: str,
    judgements_path: str | Path,
    summary_path: str | Path,
) -> None:
    """Judge baseline against steered answers in both orders; write verdicts and win rates."""
    from moral_indifference import generation, judging

    settings, judge = _judge(judge_config, results, device)
    baseline = generation.read_jsonl(baseline_path)
    steered = generation.read_jsonl(steered_path)
    judgements, summary = judging.judge_pairs(baseline, steered, judge, settings)
    first = steered[0] if steered else {}
    summary.update(
        {
            "model": first.get("model"),
            "layer": first.get("layer"),
            "condition": first.get("condition"),
            "strength": first.get("strength"),
            "judge_backend": settings.backend,
            "judge_model": judge_config.get("model") if settings.backend == "local" else settings.model,
        }
    )
    generation.write_jsonl(judgements, judgements_path)
    _write_json(summary, summary_path)


def score_rubric(
    *,
    answers_path: str | Path,
    judge_config: Mapping[str, Any],
    results: str | Path,
    device: str,
    out_path: str | Path,
) -> None:
    """Score every answer of one file on the 1-3 rubric of its Flames dimension."""
    from moral_indifference import generation, judging

    settings, judge = _judge(judge_config, results, device)
    scores, _ = judging.score_rubric(generation.read_jsonl(answers_path), judge, settings)
    generation.write_jsonl(scores, out_path)


# ----------------------------------------------------------------------------- realignment


def realignment_config(config: Mapping[str, Any], device: str) -> Any:
    """Build a :class:`realignment.RealignmentConfig` from the workflow's ``realignment`` section."""
    from moral_indifference.realignment import RealignmentConfig

    values = {key: value for key, value in config.items() if key != "weights"}
    values.update({f"{term}_weight": weight for term, weight in config.get("weights", {}).items()})
    return RealignmentConfig(**values, device=resolve_device(device))


def realign_sae(
    *,
    sae_dir: str | Path,
    features_path: str | Path,
    selected_path: str | Path,
    activations_dir: str | Path,
    layer: int,
    vectors_path: str | Path,
    diagnosis_path: str | Path,
    params: Mapping[str, Any],
    out_dir: str | Path,
    before_after_path: str | Path,
) -> None:
    """Realign the selected latents of one SAE and tabulate measures before and after."""
    from moral_indifference import features as features_stage
    from moral_indifference import realignment
    from moral_indifference import sae as sae_stage
    from moral_indifference.indifference import IndifferenceConfig

    pooling = params["sae"].get("pooling", "mean")
    vectors = pd.read_parquet(vectors_path)
    sae, centre = sae_stage.load_sae(sae_dir)
    feature_table = pd.read_parquet(features_path)
    selected = features_stage.SelectedLatents.load(selected_path)
    train_acts, train_rows = layer_rows(activations_dir, layer, pooling, vectors, split="train")
    val_acts, val_rows = layer_rows(activations_dir, layer, pooling, vectors, split="val")
    settings = realignment_config(params["realignment"], params["device"])
    logger.info(
        "realigning %d selected latents on %d training rows (%d validation rows)",
        len(selected.indices), len(train_rows), len(val_rows),
    )
    result = realignment.realign(
        sae, centre, train_acts, train_rows, val_acts, val_rows, selected, feature_table, settings
    )
    realignment.save_realignment(result, centre, out_dir)

    index, arrays = activations_stage.load_layer(activations_dir, layer)
    indifference_config = IndifferenceConfig.from_dict(
        {key: value for key, value in params["indifference"].items() if key != "layers"}
    )
    table = realignment.before_after(
        sae,
        result.sae,
        centre,
        val_acts,
        val_rows,
        arrays[pooling],
        index,
        pd.read_parquet(diagnosis_path),
        vectors=vectors,
        indifference_config=indifference_config,
        feature_config=features_stage.FeatureConfig(**params["features"]),
    )
    table.to_parquet(before_after_path, index=False)


# ----------------------------------------------------------------------------- Flames summary


def summarise_flames(
    *,
    pairwise_paths: Sequence[str | Path],
    rubric_paths: Sequence[str | Path],
    win_rates_path: str | Path,
    rubric_path: str | Path,
) -> None:
    """Tabulate win rates per layer and condition, and rubric scores per dimension."""
    from moral_indifference import generation

    rows = []
    for path in pairwise_paths:
        summary = _read_json(path)
        row = {key: summary.get(key) for key in ("model", "layer", "condition", "strength", "judge_model")}
        for key, value in summary.items():
            if isinstance(value, (int, float)) and key not in row:
                row[key] = value
            elif key.endswith("_ci") and isinstance(value, (list, tuple)) and len(value) == 2:
                row[f"{key}_low"], row[f"{key}_high"] = value
        rows.append(row)
    pd.DataFrame(rows).to_parquet(win_rates_path, index=False)

    scores = []
    for path in rubric_paths:
        for record in generation.read_jsonl(path):
            scores.append(
                {
                    "answers": Path(path).name.removesuffix(".rubric.jsonl"),
                    "layer": Path(path).parent.name if Path(path).parent.name.startswith("layer_") else "",
                    "dimension": record["dimension"],
                    "score": float("nan") if record["score"] is None else float(record["score"]),
                    "failure": record["failure"],
                }
            )
    frame = pd.DataFrame(scores)
    table = (
        frame.groupby(["layer", "answers", "dimension"], sort=True)
        .agg(
            n_scored=("score", "count"),
            failures=("failure", "sum"),
            mean_score=("score", "mean"),
            n_perfect=("score", lambda values: int((values == 3).sum())),
        )
        .reset_index()
    )
    table.to_parquet(rubric_path, index=False)
