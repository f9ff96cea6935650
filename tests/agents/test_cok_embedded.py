"""Chain of Knowledge on the real embedded model (short cases): the constrained chain parses into typed answers,
and verification decides rethinking from what the model actually wrote."""

from __future__ import annotations

from typing import Any

import pytest

from ponder.agents import Context, Task, TaskFamily, get_strategy, run_to_result

pytestmark = pytest.mark.embedded


async def test_cok_chain_from_the_real_model(embedded_model: Any) -> None:
    task = Task(question="Is ice colder than boiling water?", family=TaskFamily.yes_no)
    result = await run_to_result(get_strategy("cok", max_tokens=200).run(task, Context(embedded_model)))
    assert isinstance(result.answer, bool)
    evidence = result.details["evidence"]
    assert 1 <= len(evidence) <= 4 and all(t["subject"] and t["relation"] and t["object"] for t in evidence)
    assert result.details["explanation"]
    assert result.costs.llm_calls >= 1 and result.costs.completion_tokens > 0


async def test_cok_f2_recomputes_the_models_arithmetic(embedded_model: Any) -> None:
    task = Task(question="A box holds 17 pens. How many pens are in 3 boxes and 4 loose pens?", family="number")
    strategy = get_strategy("cok-f2", judge="none", max_tokens=200, threshold=0.99)
    result = await run_to_result(strategy.run(task, Context(embedded_model)))
    assert isinstance(result.answer, float)
    first = result.details["rounds"][0]["verdict"]
    # with no knowledge base only calculations can be judged: each triple is computed or left unjudged
    assert {t["source"] for t in first["triples"]} <= {"computed", "none"}
    wrong = [t for t in first["triples"] if t["supported"] is False]
    # a wrong calculation must send the chain back for rethinking, with the corrected value in the prompt
    assert len(result.details["rounds"]) == (2 if wrong else 1)
