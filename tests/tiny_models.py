"""Tiny random models with locally trained tokenizers, built offline in seconds.

The models are real ``transformers`` checkpoints (config, safetensors weights,
tokenizer files, chat template), so every loading, hooking and generation path runs on
them exactly as on a hub model. Their outputs are noise, which is what a test of the
plumbing wants.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedTokenizerFast,
    Qwen3Config,
    Qwen3ForCausalLM,
)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

TRAINING_SENTENCES = [
    "Helping a friend move is morally good.",
    "Stealing from a store is morally wrong.",
    "Lying to your parents is morally questionable.",
    "Keeping a promise is morally admirable.",
    "Cheating on a test is morally wrong.",
    "Respecting your elders is morally expected.",
    "Betraying your team is morally bad.",
    "Keeping your body clean is morally fine.",
    "You are a helpful assistant.",
    "帮助朋友是道德的。偷窃是不道德的。",
    "Please answer the question carefully and safely.",
    "Output A if the first answer is better, B if the second is better, or tie.",
]


def train_tokenizer(vocab_size: int = 512, padding_side: str = "left") -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on a fixed corpus; deterministic and offline."""
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(TRAINING_SENTENCES * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        padding_side=padding_side,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_qwen3(
    path: Path,
    *,
    seed: int = 0,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    padding_side: str = "left",
) -> Path:
    """Save a seeded random Qwen3 and its tokenizer to ``path`` and return ``path``."""
    path = Path(path)
    tokenizer = train_tokenizer(padding_side=padding_side)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden_size // 4,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def load_tiny(path: Path) -> tuple[Qwen3ForCausalLM, PreTrainedTokenizerFast]:
    """Load a model saved by :func:`build_tiny_qwen3` in float32 eval mode, with its tokenizer."""
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(path)
