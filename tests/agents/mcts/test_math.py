"""The math domain end to end: a function-played model, arithmetic executed in the real Docker sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from ponder.agents import Context, Task, TaskFamily, TreeUpdated, get_strategy, run_to_result
from ponder.agents.mcts._math import MathStep
from ponder.errors import InputError
from ponder.llm import ChatRequest
from ponder.tools import ToolServer
from tests.fakes import FunctionModel

TASK = Task(
    question="Tom has 3 bags with 4 apples each. He eats 2 apples. How many apples are left?",
    family=TaskFamily.number,
)


def step(thought: str, calculation: str, final: bool) -> dict[str, Any]:
    return {"thought": thought, "calculation": calculation, "final": final}


def math_model(plan: dict[int, list[dict[str, Any]]], verdict: str = "correct") -> FunctionModel:
    """Steps by depth (how many steps the prompt already shows); every self-evaluation gets ``verdict``."""

    def fn(request: ChatRequest) -> Any:
        assert request.constraint is not None and request.constraint.kind == "json_schema"
        if request.constraint.name == "StepCheck":
            return {"verdict": verdict}
        assert request.constraint.name == "MathStep"
        depth = request.messages[-1].content.count("\nStep ")
        replies = plan[depth][: request.n]
        return replies if request.n > 1 else replies[0]

    return FunctionModel(fn)


def test_the_step_schema_only_admits_arithmetic() -> None:
    schema = MathStep.model_json_schema()
    assert schema["properties"]["calculation"]["pattern"] == r"^[0-9+\-*/(). %]*$"
    with pytest.raises(ValueError, match="pattern"):
        MathStep.model_validate(step("sneaky", "__import__('os')", False))


@pytest.mark.docker
async def test_arithmetic_runs_in_the_sandbox_and_the_vote_picks_the_answer(toolserver: ToolServer) -> None:
    plan = {
        0: [step("The bags hold 3 times 4 = 13 apples", "3 * 4", False), step("Bad", "3 * / 4", False)],
        1: [step("Minus the 2 eaten", "12 - 2", True), step("Eaten apples removed", "(3 * 4) - 2", True)],
    }
    model = math_model(plan)
    events: list[Any] = []
    ctx = Context(model=model, toolserver=toolserver)
    strategy = get_strategy("mcts-math", budget=8, k=2, max_children=0)
    result = await run_to_result(strategy.run(TASK, ctx), on_event=events.append)

    assert result.answer == 10.0 and result.text == "10"
    tree = [e for e in events if isinstance(e, TreeUpdated)][-1].tree
    nodes = {n["id"]: n for n in tree["nodes"]}
    assert nodes[1]["info"]["value"] == 12.0  # computed in the sandbox, whatever the thought claimed
    assert nodes[2]["reward"] == 0.0 and "failed" in nodes[2]["reason"] and nodes[2]["terminal"]
    # the next step's prompt shows the computed value, not the model's 13
    second = [r for r in model.requests if r.constraint and r.constraint.name == "MathStep"][1]
    assert "3 * 4 = 12" in second.messages[-1].content
    finals = [n for n in tree["nodes"] if n["answer"] is not None]
    assert [n["answer"] for n in finals] == [10.0, 10.0]
    # self-evaluated "correct" (1.0); both came in one round, so neither had an earlier answer to agree with
    assert [(n["info"]["agreement"], n["reward"]) for n in finals] == [(None, 1.0), (None, 1.0)]
    assert result.details["stopped_by"] == "tree_exhausted"
    assert result.details["final_rule"] == "vote"


@pytest.mark.docker
async def test_disagreeing_answers_lower_the_reward_and_the_majority_wins(toolserver: ToolServer) -> None:
    def fn(request: ChatRequest) -> Any:
        assert request.constraint is not None and request.constraint.kind == "json_schema"
        if request.constraint.name == "StepCheck":
            return {"verdict": "unsure"}
        prompt = request.messages[-1].content
        if "\nStep " not in prompt:
            replies = [step("Apples in bags", "3 * 4", False), step("Apples, the other way", "4 * 3", False)]
        elif "4 * 3 = 12" in prompt:
            replies = [step("Left", "12 - 2", True), step("Left over", "(4 * 3) - 2", True)]
        else:
            replies = [step("Left", "12 - 2", True), step("Left", "12 + 2", True)]
        return replies[: request.n]

    ctx = Context(model=FunctionModel(fn), toolserver=toolserver)
    strategy = get_strategy("mcts-math", budget=10, k=2)
    result = await run_to_result(strategy.run(TASK, ctx))
    finals = [n for n in result.details["tree"]["nodes"] if n["answer"] is not None]
    assert sorted(n["answer"] for n in finals) == [10.0, 10.0, 10.0, 14.0]
    assert result.answer == 10.0
    agreements = [n["info"]["agreement"] for n in finals]
    assert agreements.count(None) == 2  # the first round of answers had no peers yet
    assert all(a is None or 0.0 < a < 1.0 for a in agreements)
    for n in finals:  # unsure (0.5) self-evaluation, blended with agreement where there was any
        a = n["info"]["agreement"]
        assert n["reward"] == pytest.approx(0.5 if a is None else 0.25 + 0.5 * a)


@pytest.mark.docker
async def test_program_nodes_repair_failures_and_vote_by_agreement(toolserver: ToolServer) -> None:
    """mcts-math with nodes="programs": programs run in the sandbox; a crashing one is repaired (its child sees the
    error), answers are rewarded by agreement, and the vote picks the answer most programs printed."""
    crash = "```python\nbags = 3\nprint(bags * 4 - 2 / 0)\n```"
    right = "```python\napples = 3 * 4\nprint(apples - 2)\n```"
    wrong = "```python\nprint(3 * 4 + 2)\n```"

    def fn(request: ChatRequest) -> Any:
        if "Running your program failed" in request.messages[-1].content:
            assert "ZeroDivisionError" in request.messages[-1].content  # the repair is shown the failure
            return right
        return [crash, wrong, right][: request.n] if request.n > 1 else right

    model = FunctionModel(fn)
    events: list[Any] = []
    strategy = get_strategy("mcts-math", nodes="programs", budget=6, k=3, max_children=3, max_depth=3)
    result = await run_to_result(strategy.run(TASK, Context(model=model, toolserver=toolserver)), events.append)
    assert result.answer == 10.0
    tree = [e for e in events if isinstance(e, TreeUpdated)][-1].tree
    nodes = {n["id"]: n for n in tree["nodes"]}
    crashed = next(n for n in nodes.values() if n["answer"] is None and n["parent"] == 0)
    assert crashed["reason"] == "exited with code 1" and not crashed["terminal"]
    repairs = [n for n in nodes.values() if n["parent"] == crashed["id"]]
    assert repairs and all(n["action"].startswith("repair:") and n["answer"] == 10.0 for n in repairs)
    answers = sorted(n["answer"] for n in nodes.values() if n["answer"] is not None)
    assert answers.count(10.0) > answers.count(14.0) >= 1  # the wrong answer is outvoted


@pytest.mark.docker
async def test_free_steps_reason_in_text_and_constrain_only_the_arithmetic(toolserver: ToolServer) -> None:
    thoughts = {0: ["Three bags of four apples: multiply.", "Count the apples in the bags."], 1: ["Take away 2."] * 2}
    arithmetic = {0: [{"calculation": "3 * 4", "final": False}] * 2, 1: [{"calculation": "12 - 2", "final": True}]}

    def fn(request: ChatRequest) -> Any:
        if request.constraint is None:  # the step's thought, in plain text, sampled k at a time
            assert "ONE step" in request.messages[0].content
            depth = request.messages[-1].content.count("\nStep ")
            return thoughts[depth][: request.n]
        if request.constraint.name == "StepCheck":
            return {"verdict": "correct"}
        assert request.constraint.name == "StepArithmetic"
        assert request.messages[-2].role == "assistant" and "Final answer" not in request.messages[-2].content
        depth = request.messages[-3].content.count("\nStep ")
        return arithmetic[depth][0 if "multiply" in request.messages[-2].content or depth else -1]

    ctx = Context(model=FunctionModel(fn), toolserver=toolserver)
    strategy = get_strategy("mcts-math", budget=6, k=2, domain_options={"form": "free"})
    result = await run_to_result(strategy.run(TASK, ctx))
    assert result.answer == 10.0
    nodes = result.details["tree"]["nodes"]
    assert any(n["action"] == "Three bags of four apples: multiply. [3 * 4]" for n in nodes)
    assert {n["info"].get("value") for n in nodes if n["info"]} >= {12.0, 10.0}


def test_the_free_form_is_a_step_option() -> None:
    with pytest.raises(InputError, match="form"):
        get_strategy("mcts-math", nodes="programs", domain_options={"form": "free"})
