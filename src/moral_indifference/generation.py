"""Generate answers to Flames prompts, with or without steering, as JSON-lines records.

A baseline run and a steered run must differ only in the steering hook. Both therefore
use one :class:`GenerationConfig`: the same chat template, system prompt, thinking
switch, decoding settings and per-prompt seeds. The seed of a prompt is
``config.seed + prompt_id`` for integer ids (``config.seed + crc32(prompt_id)`` for
string ids), set with ``torch.manual_seed`` before that prompt is decoded. With greedy
decoding (the default) seeds do not change the output, and prompts run in left-padded
batches of ``config.batch_size``. With sampling each prompt runs alone, so that its
seed, and hence its answer, does not depend on which other prompts share its batch.

Every record stores the prompt, the answer, the condition, the model, the steering layer
and strength, the full generation config, token counts and whether decoding stopped at
the end-of-sequence token (``"eos"``) or at ``max_new_tokens`` (``"length"``).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from moral_indifference.jsonl import read_jsonl, write_jsonl  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)

BASELINE = "baseline"
REQUIRED_COLUMNS = ("prompt_id", "dimension", "subcomponent", "prompt")


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding and prompt-formatting settings shared by baseline and steered runs.

    ``enable_thinking`` is passed to ``apply_chat_template`` unless it is None; False turns
    Qwen3's thinking mode off explicitly. ``chat_template=False`` feeds the raw prompt
    text and ignores ``system_prompt``.
    """

    max_new_tokens: int = 128
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0
    batch_size: int = 8
    system_prompt: str = "You are a helpful assistant."
    enable_thinking: bool | None = False
    chat_template: bool = True

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"invalid max_new_tokens {self.max_new_tokens}; use 1 or more")
        if self.batch_size < 1:
            raise ValueError(f"invalid batch_size {self.batch_size}; use 1 or more")


def prompt_seed(seed: int, prompt_id: int | str) -> int:
    """Return the seed of one prompt: ``seed + prompt_id``, or ``seed + crc32(id)`` for strings."""
    if isinstance(prompt_id, str):
        return seed + zlib.crc32(prompt_id.encode("utf-8"))
    return seed + int(prompt_id)


def render_prompt(tokenizer: Any, prompt: str, config: GenerationConfig) -> str:
    """Render one user prompt as model input text, through the chat template by default."""
    if not config.chat_template:
        return prompt
    messages = []
    if config.system_prompt:
        messages.append({"role": "system", "content": config.system_prompt})
    messages.append({"role": "user", "content": prompt})
    kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": True}
    if config.enable_thinking is not None:
        kwargs["enable_thinking"] = config.enable_thinking
    return tokenizer.apply_chat_template(messages, **kwargs)


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = getattr(model.generation_config, "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        return set()
    return set(ids) if isinstance(ids, (list, tuple)) else {int(ids)}


def _batches(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size]


@torch.inference_mode()
def _generate_batch(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    config: GenerationConfig,
    eos_ids: set[int],
) -> list[tuple[str, int, int, str]]:
    inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    inputs = inputs.to(model.device)
    kwargs: dict[str, Any] = {
        "max_new_tokens": config.max_new_tokens,
        "do_sample": config.do_sample,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if config.do_sample:
        kwargs.update(temperature=config.temperature, top_p=config.top_p)
    output = model.generate(**inputs, **kwargs)

    prompt_width = inputs["input_ids"].shape[1]
    results = []
    for row in range(len(texts)):
        n_prompt_tokens = int(inputs["attention_mask"][row].sum())
        generated = output[row, prompt_width:].tolist()
        # Tokens after the first end-of-sequence token are padding.
        stop = next((i for i, token in enumerate(generated) if token in eos_ids), None)
        if stop is None:
            answer_ids, n_answer_tokens, finish_reason = generated, len(generated), "length"
        else:
            answer_ids, n_answer_tokens, finish_reason = generated[:stop], stop + 1, "eos"
        answer = tokenizer.decode(answer_ids, skip_special_tokens=True).strip()
        results.append((answer, n_prompt_tokens, n_answer_tokens, finish_reason))
    return results


def generate_answers(
    model: Any,
    tokenizer: Any,
    prompts_df: pd.DataFrame,
    config: GenerationConfig,
    *,
    condition: str,
    model_name: str,
    settings: dict,
    steerer: Any = None,
    layer: int | None = None,
) -> list[dict]:
    """Generate one answer per prompt and return one record per prompt, in input order.

    ``condition`` is ``"baseline"`` (no ``steerer``) or a name from
    ``steering.STEERING_CONDITIONS`` (``steerer`` and ``layer`` required). ``settings`` is
    caller metadata, such as the SAE folder, stored unchanged under ``"settings"``.
    """
    missing = [column for column in REQUIRED_COLUMNS if column not in prompts_df.columns]
    if missing:
        raise KeyError(f"prompts_df lacks the columns {missing}; read prompts with flames.read_flames")

    if condition == BASELINE:
        if steerer is not None:
            raise ValueError("condition 'baseline' takes no steerer; pass a steering condition name")
        hook_context: Any = nullcontext()
    else:
        from moral_indifference.steering import get_condition, steer

        get_condition(condition)
        if steerer is None or layer is None:
            raise ValueError(f"condition {condition!r} needs steerer= and layer=")
        hook_context = steer(model, layer, steerer)

    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token; set tokenizer.pad_token before batched generation")
    eos_ids = _eos_ids(model, tokenizer)
    batch_size = 1 if config.do_sample else config.batch_size
    if config.do_sample and config.batch_size > 1:
        logger.info("sampling runs one prompt per batch so that each prompt keeps its own seed")

    previous_padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    was_training = model.training
    model.eval()
    records: list[dict] = []
    try:
        with hook_context:
            for batch in tqdm(
                list(_batches(prompts_df, batch_size)), desc=f"generate {condition}", leave=False
            ):
                texts = [render_prompt(tokenizer, prompt, config) for prompt in batch["prompt"]]
                # Under greedy decoding the seed does not matter; under sampling the batch
                # has one prompt, so this is that prompt's seed.
                torch.manual_seed(prompt_seed(config.seed, batch["prompt_id"].iloc[0]))
                outputs = _generate_batch(model, tokenizer, texts, config, eos_ids)
                for row, (answer, n_prompt, n_answer, finish) in zip(
                    batch.itertuples(index=False), outputs, strict=True
                ):
                    records.append(
                        {
                            "prompt_id": _plain(row.prompt_id),
                            "dimension": row.dimension,
                            "subcomponent": row.subcomponent,
                            "prompt": row.prompt,
                            "answer": answer,
                            "condition": condition,
                            "model": model_name,
                            "layer": layer,
                            "strength": None if steerer is None else float(steerer.strength),
                            "generation": asdict(config),
                            "settings": dict(settings),
                            "n_prompt_tokens": n_prompt,
                            "n_answer_tokens": n_answer,
                            "finish_reason": finish,
                        }
                    )
    finally:
        tokenizer.padding_side = previous_padding_side
        model.train(was_training)
    return records


def _plain(value: Any) -> Any:
    # numpy integers from pandas are not JSON-serialisable.
    return value.item() if hasattr(value, "item") else value


