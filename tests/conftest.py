"""Shared fixtures: a tiny random Qwen3 built once per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# Tests build or ship every model they load; a hub lookup should fail at once, not hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tiny_models import build_tiny_qwen3  # noqa: E402


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-block random Qwen3 (hidden size 64) with a locally trained tokenizer."""
    return build_tiny_qwen3(tmp_path_factory.mktemp("tiny-qwen3"))
