"""Shared fixtures: tiny random models and a temporary results folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import build_tiny_qwen3  # noqa: E402


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-block random Qwen3 (hidden size 64) with a locally trained tokenizer."""
    return build_tiny_qwen3(tmp_path_factory.mktemp("tiny-qwen3"))
