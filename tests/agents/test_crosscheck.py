"""``math`` (issue 32): a greedy chain of thought and a greedy program (run in the real sandbox) answer at once when
they agree; otherwise more of both are sampled and the selection layer's vote decides; failures stay candidates'."""

from __future__ import annotations

import pytest

from ponder.agents import Context, FinalAnswer, StepStarted, Task, get_strategy, run_to_result
from ponder.errors import InputError, ModelServerError, StrategyError
from ponder.tools import ToolServer
from tests.fakes import ScriptedModel

QUESTION = Task(question="Tom has 3 bags of 4 apples and eats 2. How many are left?", family="number")


def program(body: str) -> str:
    return f"```python\n{body}\n```\n"


async def test_agreement_of_the_greedy_pair_answers_with_two_samples(toolserver: ToolServer) -> None:
    model = ScriptedModel([program("print(3 * 4 - 2)"), "3 bags of 4 is 12; 12 - 2 = 10.", {"answer": 10}])
    events = [e async for e in get_strategy("math").run(QUESTION, Context(model, toolserver=toolserver))]
    final = events[-1]
    assert isinstance(final, FinalAnswer) and final.answer == 10.0
    details = final.result["details"]
    assert details["settled"] == "agreement" and details["samples"] == 2
    assert details["greedy_cot"] == 10 and details["greedy_program"] == 10.0
    assert details["selection"]["modes"] == {"10.0": ["program", "cot"]}
    program_request, chain_request = model.requests[0], model.requests[1]
    assert program_request.temperature == 0.0 and program_request.n == 1
    assert "```python" in program_request.messages[0].content
    assert chain_request.temperature == 0.0 and chain_request.stop  # the request cot sends: free reasoning, greedy
    assert "Checked by a program" in final.result["reasoning"] and "12 - 2 = 10" in final.result["reasoning"]
    model.assert_complete()


async def test_disagreement_samples_more_of_both_and_the_vote_decides(toolserver: ToolServer) -> None:
    model = ScriptedModel(
        [
            program("print(12)"), "Tom has 12 apples.", {"answer": 10},  # greedy pair disagrees: 12 vs 10
            program("print(10)"), program("print(3 * 4 - 2)"),  # round 2: two programs (one n=2 request) ...
            "12 - 2 = 10", "He has 12.", {"answer": 10}, {"answer": 12},  # ... and two chains
        ]
    )  # fmt: skip
    events = [e async for e in get_strategy("math").run(QUESTION, Context(model, toolserver=toolserver))]
    final = events[-1]
    assert isinstance(final, FinalAnswer) and final.answer == 10.0
    details = final.result["details"]
    assert details["samples"] == 6 and details["settled"] == "majority of both modes"
    assert details["votes"] == {"10.0": 4, "12.0": 2}
    assert [r["samples"] for r in details["rounds"]] == [2, 6]
    assert details["greedy_cot"] == 10 and details["greedy_program"] == 12.0
    sampled = [r for r in model.requests if r.n == 2]
    assert len(sampled) == 2 and all(r.temperature == 0.7 for r in sampled)
    steps = [e.detail for e in events if isinstance(e, StepStarted) and e.name == "sample more"]
    assert steps and "program says 12" in steps[0] and "cot says 10" in steps[0]
    model.assert_complete()


async def test_a_failing_program_and_a_failing_chain_are_candidates_lost_not_the_run(toolserver: ToolServer) -> None:
    model = ScriptedModel(
        [
            program("print(1/0)"), ModelServerError("the server went away", retryable=False),  # program, chain
            program("print(oops)"),  # the crash's repair fails too
            program("print(10)"), "3 * 4 - 2 = 10", {"answer": 10},  # round 2 (budget 4: one of each)
        ]
    )  # fmt: skip
    result = await run_to_result(get_strategy("math", budget=4).run(QUESTION, Context(model, toolserver=toolserver)))
    assert result.answer == 10.0 and result.details["samples"] == 4
    assert "went away" in result.details["chain_errors"][0] and result.details["programs"][0]["repaired"]
    assert result.details["greedy_cot"] is None and result.details["greedy_program"] is None

    nothing = ScriptedModel([program('print("ten")'), "no idea", {"answer": 1}])
    nothing.replies[-1] = ModelServerError("down", retryable=False)
    with pytest.raises(StrategyError, match="no chain of thought gave an answer and no program printed a number"):
        await run_to_result(
            get_strategy("math", budget=2, repair=False).run(QUESTION, Context(nothing, toolserver=toolserver))
        )


def test_options_and_families_are_checked() -> None:
    with pytest.raises(InputError, match="one greedy program"):
        get_strategy("math", k=3)
    with pytest.raises(InputError, match="answers number questions"):
        get_strategy("math").messages(Task(question="Is the sky blue?", family="yes_no"))
