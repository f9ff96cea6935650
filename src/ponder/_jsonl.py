"""JSON Lines input shared by the index, the knowledge base and the eval datasets: one object per line, blank lines
skipped, and an error that names the file and the line to fix."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from ponder.errors import InputError


def json_objects(lines: Iterable[str], where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line; ``InputError`` naming ``where`` and the line otherwise."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{where}: line {number} is not valid JSON ({exc.msg})", hint="write one JSON object per line"
            ) from exc
        if not isinstance(record, dict):
            raise InputError(
                f"{where}: line {number} is a JSON {type(record).__name__}, not an object",
                hint="write one JSON object per line",
            )
        yield number, record
