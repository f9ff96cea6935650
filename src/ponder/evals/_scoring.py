"""Answer normalisation and scoring per task family. Strategies return typed answers, but a scorer must still
cope with what any model or strategy hands back: strings for numbers, "yes"/"True" for booleans, "(B) water" for
a label, nothing at all. A missing or malformed answer scores as wrong, with the reason recorded."""

from __future__ import annotations

import math
import re
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from ponder.agents import TaskFamily
from ponder.errors import ConfigError

_NUM = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_YES = {"yes", "y", "true", "t", "1"}
_NO = {"no", "n", "false", "f", "0"}


class Score(BaseModel):
    correct: bool
    predicted: Any = None
    gold: Any = None
    reason: str = ""  # "" when the answer was usable; else why it scored as wrong


def parse_number(value: Any) -> float | None:
    """A number from a number or a string such as ``"$1,234.50"``, ``"3/4"`` or ``"42 apples"``; else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    text = str(value).replace(",", "").replace("$", "").replace("%", "").strip()
    fraction = re.fullmatch(r"([-+]?\d+)\s*/\s*(\d+)", text)
    if fraction and int(fraction.group(2)) != 0:
        return int(fraction.group(1)) / int(fraction.group(2))
    match = _NUM.search(text)
    if not match:
        return None
    number = float(match.group())
    return number if math.isfinite(number) else None


def parse_yes_no(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    words = re.findall(r"[a-z0-9]+", str(value).lower())
    if not words:
        return None
    if words[0] in _YES:
        return True
    if words[0] in _NO:
        return False
    return None


def parse_label(value: Any, labels: list[str] | None = None) -> str | None:
    """``"B"``, ``"b"``, ``"(B)"``, ``"B: water"``, ``"B. water"`` -> ``"B"``; None for anything else, or for a
    label not among ``labels`` when they are given."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    match = re.match(r"^\(?([A-Za-z])\)?(?:$|[\s:.)\-])", text)
    if not match:
        return None
    label = match.group(1).upper()
    if labels is not None and label not in labels:
        return None
    return label


def normalize_string(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split()).strip().strip("\"'").casefold()
    return text or None


def score_answer(
    family: TaskFamily, predicted: Any, gold: Any, *, rel_tol: float = 1e-4, abs_tol: float = 1e-6
) -> Score:
    """Compare a prediction with the gold answer of its family (code is scored by :class:`CodeChecker`)."""
    if predicted is None or (isinstance(predicted, str) and not predicted.strip()):
        return Score(correct=False, predicted=None, gold=gold, reason="missing answer")
    norm: Any
    gold_norm: Any
    if family is TaskFamily.number:
        norm, gold_norm = parse_number(predicted), parse_number(gold)
        ok = norm is not None and gold_norm is not None
        ok = ok and math.isclose(norm, gold_norm, rel_tol=rel_tol, abs_tol=abs_tol)
    elif family is TaskFamily.yes_no:
        norm, gold_norm = parse_yes_no(predicted), parse_yes_no(gold)
        ok = norm is not None and norm == gold_norm
    elif family is TaskFamily.choice:
        norm, gold_norm = parse_label(predicted), parse_label(gold)
        ok = norm is not None and norm == gold_norm
    elif family is TaskFamily.code:
        raise ConfigError("code answers are scored by running tests", hint="give the runner a CodeChecker")
    else:
        norm, gold_norm = normalize_string(predicted), normalize_string(gold)
        ok = norm is not None and norm == gold_norm
    if norm is None:
        return Score(correct=False, predicted=predicted, gold=gold, reason=f"malformed {family.value} answer")
    return Score(correct=bool(ok), predicted=norm, gold=gold_norm)


@runtime_checkable
class CodeChecker(Protocol):
    """Runs a candidate program against an item's tests (e.g. in the ToolServer sandbox): True when they pass."""

    async def check(self, code: str, tests: str, extra: dict[str, Any]) -> bool: ...


async def score_item(
    family: TaskFamily, predicted: Any, gold: Any, extra: dict[str, Any], checker: CodeChecker | None = None
) -> Score:
    if family is not TaskFamily.code:
        return score_answer(family, predicted, gold)
    if checker is None:
        raise ConfigError(
            "this dataset's answers are code and need a code checker to run their tests",
            hint="run code benchmarks with a sandbox-backed CodeChecker (ToolServer)",
        )
    if not isinstance(predicted, str) or not predicted.strip():
        return Score(correct=False, predicted=None, gold="<tests>", reason="missing answer")
    passed = await checker.check(predicted, str(gold), extra)
    return Score(correct=passed, predicted="<code>", gold="<tests>", reason="" if passed else "tests failed")
