"""Scoring code answers on hidden tests, after a search has chosen: the only place hidden tests are run.

Nothing under ``ponder.agents`` imports this module; a strategy receives a :class:`Task` that has no hidden
tests, and this scorer is handed the tests by the evaluation runner only after the strategy has answered.
:class:`SandboxCodeChecker` implements ``ponder.evals``' ``CodeChecker`` protocol (``check(code, tests, extra)``).
"""

from __future__ import annotations

import re
from typing import Any

from ponder.agents._base import Task, TaskFamily
from ponder.agents.mcts._sandbox import run_tests
from ponder.errors import InputError
from ponder.tools import ToolServer


def hidden_test_program(tests: str, entry_point: str | None) -> str:
    """HumanEval-style tests define ``check(candidate)`` and need it called; MBPP-style tests call the function."""
    if re.search(r"^def check\(", tests, re.MULTILINE):
        if not entry_point:
            raise InputError("HumanEval-style tests need the item's entry_point to call check(...)")
        return f"{tests}\n\ncheck({entry_point})\n"
    return tests


class SandboxCodeChecker:
    """Runs a chosen program with an item's hidden tests in a fresh ToolServer session: True when all pass."""

    def __init__(self, toolserver: ToolServer, *, timeout_s: float = 120.0) -> None:
        self.toolserver = toolserver
        self.timeout_s = timeout_s

    async def check(self, code: str, tests: str, extra: dict[str, Any]) -> bool:
        snippet = hidden_test_program(tests, extra.get("entry_point"))
        async with self.toolserver.session() as session:
            run = await run_tests(
                session,
                code,
                [snippet],
                per_test_timeout_s=self.timeout_s,
                timeout_s=self.timeout_s + 5.0,
                max_output=2_000,
            )
        return run.passed == 1


def code_item(row: dict[str, Any], dataset: str) -> tuple[Task, dict[str, Any]]:
    """Split a HumanEval(+)/MBPP(+) row into the Task a strategy may see and the hidden part only the scorer sees.

    The Task carries the prompt (with its examples) and the entry point's name, which the prompt states anyway;
    the tests, the reference solution and every other field go to the hidden part.
    """
    entry_point = str(row["entry_point"])
    task = Task(
        question=str(row["prompt"]).strip("\n") + "\n",
        family=TaskFamily.code,
        metadata={"dataset": dataset, "item_id": str(row["task_id"]), "entry_point": entry_point},
    )
    hidden = {"tests": str(row["test"]), "entry_point": entry_point}
    return task, hidden
