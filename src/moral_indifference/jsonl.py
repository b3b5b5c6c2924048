"""JSON Lines input and output: one UTF-8 JSON object per line, non-ASCII text unescaped.

Flames prompts, the reference diagnosis sample, generated answers and judge verdicts all
use this format. Readers skip blank lines, accept a byte-order mark, and name the file and
1-based line number of any line that is not a JSON object.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def iter_json_objects(
    path: str | Path, error_type: type[Exception] = ValueError
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; raise ``error_type`` on a bad line."""
    path = Path(path)
    with path.open(encoding="utf-8-sig") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise error_type(
                    f"{path}, line {line_number}: invalid JSON ({error.msg} at column "
                    f"{error.colno}); write one JSON object per line"
                ) from error
            if not isinstance(value, dict):
                raise error_type(
                    f"{path}, line {line_number}: expected a JSON object, got "
                    f"{type(value).__name__}; write one JSON object per line"
                )
            yield line_number, value


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read every object of a JSON Lines file."""
    return [value for _, value in iter_json_objects(path)]


def write_jsonl(records: Iterable[dict[str, Any]], path: str | Path) -> None:
    """Write records as UTF-8 JSON lines, keeping non-ASCII text unescaped."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
