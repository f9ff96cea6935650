"""Scoring per answer family, including malformed and missing answers."""

from __future__ import annotations

from typing import Any

import pytest

from ponder.agents import TaskFamily
from ponder.errors import ConfigError
from ponder.evals import mcnemar_exact, parse_label, parse_number, parse_yes_no, score_answer, score_item, wilson


@pytest.mark.parametrize(
    ("predicted", "gold", "correct"),
    [
        (18.0, "18", True),
        ("18", 18.0, True),
        ("$1,234.50", "1234.5", True),
        ("3/4", 0.75, True),
        (0.1 + 0.2, "0.3", True),
        ("42 apples", "42", True),
        (17.9, "18", False),
        (-5, "5", False),
    ],
)
def test_numbers_compare_with_tolerance(predicted: Any, gold: Any, correct: bool) -> None:
    score = score_answer(TaskFamily.number, predicted, gold)
    assert score.correct is correct and score.reason == ""


@pytest.mark.parametrize(
    ("family", "predicted", "gold", "correct"),
    [
        (TaskFamily.yes_no, True, "yes", True),
        (TaskFamily.yes_no, "No.", False, True),
        (TaskFamily.yes_no, "true", "no", False),
        (TaskFamily.choice, "B", "B", True),
        (TaskFamily.choice, "(b) water", "B", True),
        (TaskFamily.choice, "C: fridge", "B", False),
        (TaskFamily.string, "  Axa ", "axa", True),
        (TaskFamily.string, "axe", "axa", False),
    ],
)
def test_yes_no_choice_and_string(family: TaskFamily, predicted: Any, gold: Any, correct: bool) -> None:
    assert score_answer(family, predicted, gold).correct is correct


@pytest.mark.parametrize(
    ("family", "predicted", "reason"),
    [
        (TaskFamily.number, None, "missing answer"),
        (TaskFamily.number, "   ", "missing answer"),
        (TaskFamily.number, "about a dozen", "malformed number answer"),
        (TaskFamily.number, True, "malformed number answer"),
        (TaskFamily.yes_no, "maybe", "malformed yes_no answer"),
        (TaskFamily.choice, "water", "malformed choice answer"),
        (TaskFamily.choice, 3, "malformed choice answer"),
        (TaskFamily.string, None, "missing answer"),
    ],
)
def test_missing_and_malformed_answers_score_wrong_with_a_reason(
    family: TaskFamily, predicted: Any, reason: str
) -> None:
    gold = {TaskFamily.number: 12.0, TaskFamily.yes_no: True, TaskFamily.choice: "A"}.get(family, "x")
    score = score_answer(family, predicted, gold)
    assert score.correct is False and score.reason == reason


def test_parsers() -> None:
    assert parse_number("-3.5e2") == -350
    assert parse_number("nothing") is None and parse_number(float("inf")) is None
    assert parse_yes_no("Yes, because") is True and parse_yes_no("") is None
    assert parse_label("A.") == "A" and parse_label("Apple") is None and parse_label("E", ["A", "B"]) is None


class Checker:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def check(self, code: str, tests: str, extra: dict[str, Any]) -> bool:
        self.calls.append((code, tests, extra))
        return "return a + b" in code


async def test_code_is_scored_by_the_checker_hook() -> None:
    checker = Checker()
    ok = await score_item(TaskFamily.code, "def add(a, b):\n    return a + b", "assert add(1, 2) == 3", {}, checker)
    bad = await score_item(TaskFamily.code, "def add(a, b):\n    return a - b", "assert add(1, 2) == 3", {}, checker)
    missing = await score_item(TaskFamily.code, "", "assert add(1, 2) == 3", {}, checker)
    assert (ok.correct, bad.correct, bad.reason, missing.reason) == (True, False, "tests failed", "missing answer")
    assert len(checker.calls) == 2
    with pytest.raises(ConfigError, match="code checker"):
        await score_item(TaskFamily.code, "x", "t", {}, None)


def test_wilson_interval_and_mcnemar() -> None:
    low, high = wilson(30, 60)
    assert low == pytest.approx(0.3773, abs=1e-3) and high == pytest.approx(0.6227, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(60, 60)[1] == 1.0
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(3, 3) == 1.0
