"""Program of thought (issue 17): a scripted model's programs run in the real sandbox: a correct one, a crashing one
repaired, one that prints no number, one that hangs past its limit, and a vote with a tie and failures."""

from __future__ import annotations

import pytest

from ponder.agents import Context, FinalAnswer, LLMCall, Task, ToolReturned, get_strategy, run_to_result
from ponder.agents.pot import extract_program, printed_number
from ponder.errors import ConfigError, InputError, ModelServerError, StrategyError
from ponder.tools import ToolServer
from tests.fakes import ScriptedModel

QUESTION = Task(question="Tom has 3 bags of 4 apples and eats 2. How many are left?", family="number")


def program(body: str) -> str:
    return f"Here is the program.\n```python\n{body}\n```\n"


async def test_a_correct_program_answers(toolserver: ToolServer) -> None:
    model = ScriptedModel([program("bags = 3\napples = bags * 4\nprint(apples - 2)")])
    events = [e async for e in get_strategy("pot").run(QUESTION, Context(model, toolserver=toolserver))]
    final = events[-1]
    assert isinstance(final, FinalAnswer) and final.answer == 10.0 and final.text == "10"
    ran = [e for e in events if isinstance(e, ToolReturned)]
    assert len(ran) == 1 and ran[0].ok and ran[0].output == {"stdout": "10\n"}
    assert final.result["details"]["failed"] == 0 and final.result["costs"]["llm_calls"] == 1
    (request,) = model.requests
    assert request.constraint is None and "```python" in request.messages[0].content


async def test_a_crash_is_shown_to_the_model_once_and_the_repair_answers(toolserver: ToolServer) -> None:
    model = ScriptedModel([program("print(apples)"), program("apples = 3 * 4 - 2\nprint(apples)")])
    result = await run_to_result(get_strategy("pot").run(QUESTION, Context(model, toolserver=toolserver)))
    assert result.answer == 10.0 and result.details["repaired"] == 1
    repair = model.requests[1].messages
    assert repair[-2].role == "assistant" and "print(apples)" in repair[-2].content
    assert "exited with code 1" in repair[-1].content and "NameError" in repair[-1].content
    model.assert_complete()


async def test_no_number_and_a_hang_fail_honestly(toolserver: ToolServer) -> None:
    model = ScriptedModel([program('print("ten apples")'), program("while True:\n    pass")])
    strategy = get_strategy("pot", timeout_s=2.0)
    with pytest.raises(StrategyError, match="no program printed a number") as failed:
        await run_to_result(strategy.run(QUESTION, Context(model, toolserver=toolserver)))
    assert "timed out after 2s" in failed.value.message
    assert "not a number" in model.requests[1].messages[-1].content  # the repair request named the problem


async def test_pot_sc_votes_over_executed_answers_with_ties_and_failures_counted(toolserver: ToolServer) -> None:
    programs = [program("print(10)"), program("print(12)"), program("print(1/0)"), program("print(12.0)"),
                program("print(10)")]  # fmt: skip
    model = ScriptedModel([*programs, program("print(oops)")])  # the repair of the crash fails too
    result = await run_to_result(get_strategy("pot-sc", k=5).run(QUESTION, Context(model, toolserver=toolserver)))
    assert result.details["votes"] == {"10.0": 2, "12.0": 2} and result.details["tie"] is True
    assert result.answer == 10.0  # a tie goes to the program sampled first
    assert result.details["failed"] == 1 and result.details["repaired"] == 1
    assert model.requests[0].n == 5 and model.requests[0].temperature == 0.7
    assert result.costs.llm_calls == 2  # one n=5 request, one repair


async def test_pot_sc_with_chains_votes_over_programs_and_chains_of_thought(toolserver: ToolServer) -> None:
    programs = [program("print(12)"), program("print(10)"), program("print(12)")]
    chains = ["3 bags of 4 is 12, minus 2 is 10.", "12 - 2 = 10"]  # free reasoning, then a constrained answer each
    model = ScriptedModel([*programs, *chains, {"answer": 10}, {"answer": 10}])
    strategy = get_strategy("pot-sc", k=3, chains=2)
    events = [e async for e in strategy.run(QUESTION, Context(model, toolserver=toolserver))]
    final = events[-1]
    assert isinstance(final, FinalAnswer)
    details = final.result["details"]
    assert final.answer == 10.0 and details["votes"] == {"10.0": 3, "12.0": 2}  # the chains outvote two programs
    assert details["program"] == "print(10)" and [c["answer"] for c in details["chains"]] == [10, 10]
    assert final.result["costs"]["llm_calls"] == 4  # programs (n=3), chains (n=2), the two constrained answers
    first, reasoning = model.requests[0], model.requests[1]
    assert first.n == 3 and "```python" in first.messages[0].content
    assert reasoning.n == 2 and reasoning.temperature == 0.7 and reasoning.stop  # stops at the answer marker
    calls = [e for e in events if isinstance(e, LLMCall)]
    assert [c.purpose for c in calls] == ["write program", "chains of thought x2"] and calls[1].completion_tokens > 0
    model.assert_complete()


async def test_chains_answer_when_every_program_fails_and_a_failed_chain_step_leaves_the_programs(
    toolserver: ToolServer,
) -> None:
    model = ScriptedModel([program('print("ten")'), "Tom keeps 10.", {"answer": 10}])
    result = await run_to_result(
        get_strategy("pot", chains=1, repair=False).run(QUESTION, Context(model, toolserver=toolserver))
    )
    assert result.answer == 10.0 and result.details["program"] is None
    assert result.reasoning == "Tom keeps 10." and result.details["failed"] == 1

    failing = ScriptedModel([program("print(10)"), ModelServerError("the server went away", retryable=False)])
    result = await run_to_result(get_strategy("pot", chains=1).run(QUESTION, Context(failing, toolserver=toolserver)))
    assert result.answer == 10.0 and "went away" in result.details["chains_error"] and result.details["chains"] == []


def test_several_chains_need_a_temperature() -> None:
    with pytest.raises(InputError, match="chains of thought are sampled at a temperature above 0"):
        get_strategy("pot", chains=3)
    assert get_strategy("pot-sc", chains=3).options.chains == 3


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("```python\nprint(1)\n```", "print(1)"),
        ("```\nx = 2\nprint(x)\n```\nThat prints 2.", "x = 2\nprint(x)"),
        ("print(3)", "print(3)"),
        ("The answer is three.", None),
        ("```python\nprint(\n```", "print("),  # a fenced block is run even if broken: its error is fed back
    ],
)
def test_the_program_is_extracted(reply: str, code: str | None) -> None:
    assert extract_program(reply) == code


@pytest.mark.parametrize(
    ("output", "number"),
    [("10\n", 10.0), ("steps\n1,234.5\n", 1234.5), ("$18\n", 18.0), ("-3\n", -3.0), ("ten\n", None),
     ("10 apples\n", None), ("", None), ("nan\n", None), ("1e3\n", 1000.0), ("42.\n", 42.0)],
)  # fmt: skip
def test_the_printed_number(output: str, number: float | None) -> None:
    assert printed_number(output) == number


async def test_clear_errors_without_a_sandbox_or_for_another_answer_type() -> None:
    with pytest.raises(ConfigError, match="needs a ToolServer"):
        await run_to_result(get_strategy("pot").run(QUESTION, Context(ScriptedModel([]))))
    with pytest.raises(InputError, match="answers number questions"):
        get_strategy("pot").messages(Task(question="Is it?", family="yes_no"))  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="temperature above 0"):
        get_strategy("pot-sc", temperature=0.0)
