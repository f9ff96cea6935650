"""Human in the loop (ask_human interrupt and resume, pausing a run, suggestions) and every limit ending a run or a
subtask honestly instead of looping."""

from __future__ import annotations

from typing import Any

import pytest

from ponder.agents import Context, Event, FinalAnswer, NeedsHuman, StepStarted, Task, ToolReturned
from ponder.agents.planner import Planner, run_interactive
from ponder.errors import NotFoundError
from ponder.llm import ChatRequest
from tests.agents.planner._fake_toolserver import FakeToolServer
from tests.agents.planner._script import answer, call, draft, plan, refinement, submit
from tests.fakes import FunctionModel, ScriptedModel


async def collect(events: Any) -> list[Event]:
    return [e async for e in events]


def act_requests(model: ScriptedModel) -> list[Any]:
    return [r for r in model.requests if r.constraint and r.constraint.name == "ToolCall"]


async def test_ask_human_interrupts_and_a_new_planner_resumes_from_sqlite(
    toolserver: FakeToolServer, checkpoint_url: str
) -> None:
    model = ScriptedModel(
        [
            plan("ask which file"),
            call("write_file", path="draft.txt", content="v1"),
            call("ask_human", question="Which name should the file have?"),
        ]
    )
    ctx = Context(model, toolserver=toolserver, checkpoint_url=checkpoint_url, run_id="run-h1")
    events = await collect(Planner(workspace_root=str(toolserver.root)).run(Task(question="name a file"), ctx))
    assert isinstance(events[-1], NeedsHuman)
    assert events[-1].question == "Which name should the file have?"
    assert not any(isinstance(e, FinalAnswer) for e in events)
    assert len(toolserver.model_calls("write_file")) == 1

    # resumed without an answer (e.g. after a crash) the run asks again instead of going on
    again = await collect(Planner().resume("run-h1", None, ctx))
    assert [type(e) for e in again] == [NeedsHuman] and again[0].question == "Which name should the file have?"

    # a fresh planner (as after a restart) resumes from the checkpoint with the human's answer
    model.add(call("write_file", path="final.txt", content="v2"), submit("wrote final.txt"), answer("final.txt"))
    resumed = await collect(Planner(workspace_root=str(toolserver.root)).resume("run-h1", "call it final.txt", ctx))
    model.assert_complete()
    final = resumed[-1]
    assert isinstance(final, FinalAnswer) and final.text == "final.txt"
    returned = [e for e in resumed if isinstance(e, ToolReturned) and e.tool == "ask_human"]
    assert returned[0].output == {"answer": "call it final.txt"}
    assert "call it final.txt" in act_requests(model)[-2].messages[-1].content
    assert len(toolserver.model_calls("write_file")) == 2  # the call before the question was not repeated
    assert final.result["details"]["human"] == [
        {"question": "Which name should the file have?", "answer": "call it final.txt"}
    ]
    # a finished run resumed again just gives its answer
    again = await collect(Planner().resume("run-h1", None, ctx))
    assert [type(e) for e in again] == [FinalAnswer]


async def test_run_interactive_answers_questions_with_the_callback() -> None:
    model = ScriptedModel([plan("ask"), call("ask_human", question="What is x?"), submit("x is 3"), answer("3")])
    asked: list[str] = []

    async def ask(question: str) -> str:
        asked.append(question)
        return "3"

    final = await run_interactive(Planner(), Task(question="x?"), Context(model), ask)
    assert asked == ["What is x?"]
    assert final is not None and final.text == "3"


async def test_ask_human_can_be_switched_off() -> None:
    model = ScriptedModel([plan("a"), call("ask_human", question="?"), call("ask_human", question="?"),
                           call("ask_human", question="?"), submit("no"), answer("no")])  # fmt: skip
    events = await collect(Planner(adaptive=False, ask_human=False).run(Task(question="q"), Context(model)))
    model.assert_complete()
    assert not any(isinstance(e, NeedsHuman) for e in events)
    assert "unknown tool 'ask_human'" in act_requests(model)[1].messages[-1].content


async def test_pause_then_suggestion_redirects_the_run() -> None:
    # the suggestions also reach the refinement after the subtask
    model = ScriptedModel([plan("compute"), submit("used 7*6 = 42"), refinement(), answer("42")])
    planner = Planner(adaptive=False)
    ctx = Context(model, run_id="run-p")
    planner.pause("run-p")
    events = await collect(planner.run(Task(question="6*7?"), ctx))
    assert isinstance(events[-1], NeedsHuman) and "paused" in events[-1].question
    planner.suggest("run-p", "keep answers short")
    resumed = await collect(planner.resume("run-p", "compute 7*6 instead", ctx))
    assert isinstance(resumed[-1], FinalAnswer) and resumed[-1].text == "42"
    prompt = act_requests(model)[0].messages[1].content
    assert "A human suggests: compute 7*6 instead / keep answers short" in prompt
    refine_prompt = next(r for r in model.requests if r.constraint and r.constraint.name == "PlanRefinement")
    assert "A human suggests: compute 7*6 instead" in refine_prompt.messages[-1].content


async def test_resume_of_an_unknown_run_is_a_clear_error(checkpoint_url: str) -> None:
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        await collect(Planner().resume("nope", "x", Context(ScriptedModel(), checkpoint_url=checkpoint_url)))


async def test_the_run_id_is_announced_first() -> None:
    model = ScriptedModel([plan("a"), submit("ok"), answer("ok")])
    events = await collect(Planner().run(Task(question="q"), Context(model, run_id="rid-7")))
    assert isinstance(events[0], StepStarted) and events[0].detail.endswith("(run rid-7)")


# -- limits ----------------------------------------------------------------------------------------------------


async def test_steps_per_subtask_force_submit_then_fail_the_subtask(toolserver: FakeToolServer) -> None:
    model = ScriptedModel(
        [
            plan("loop forever", "second"),
            call("python", code="1"),
            call("python", code="2"),  # the last step offers only submit: this is refused (3 times)
            call("python", code="3"),
            call("python", code="4"),
            # subtask 1 is failed; refinement is requested by the failure and keeps the plan: a failed subtask is
            # never skipped silently, so it is tried once more (1 step, forced submit), and that try fails too
            refinement(),
            submit("still no result", success=False),
            refinement(),  # after the retry: keep; a retry is not retried again
            submit("second done"),
            answer("partial"),
        ]
    )
    events = await collect(
        Planner(adaptive=False, max_steps=2).run(Task(question="q"), Context(model, toolserver=toolserver))
    )
    model.assert_complete()
    final = events[-1]
    assert isinstance(final, FinalAnswer)
    forced = act_requests(model)[1]
    assert forced.constraint is not None
    assert forced.constraint.json_schema["properties"]["tool"] == {"const": "submit"}
    assert "last step" in forced.messages[-1].content
    result = final.result["details"]["results"]["1"]
    assert result["success"] is False and result["submit_type"] == "budget_exhausted"
    assert "no valid submission within 2 steps" in result["conclusion"]
    subtasks = final.result["details"]["plan"]["subtasks"]
    assert [(s["name"], s["status"]) for s in subtasks] == [
        ("loop", "failed"),
        ("retry: loop", "failed"),
        ("second", "done"),
    ]
    assert "no valid submission within 2 steps" in subtasks[1]["criticism"]  # the retry knows what went wrong


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        ({"max_llm_calls": 3}, "the budget of 3 LLM calls was used up"),
        ({"max_total_tokens": 10}, "the budget of 10 tokens was used up"),
        ({"max_seconds": 1e-9}, "the time budget of 1e-09 s was used up"),
    ],
)
async def test_budgets_end_the_run_with_an_honest_partial_result(limits: dict[str, Any], reason: str) -> None:
    def endless(request: ChatRequest) -> dict[str, Any]:
        """Every subtask fails and every refinement adds another: without budgets this never ends."""
        name = request.constraint.name if request.constraint else ""
        if name == "PlanDraft":
            return plan("a")
        if name == "PlanRefinement":
            return refinement({"op": "add", "after": "1", "subtask": draft("again")})
        if name == "ToolCall":
            return submit("not yet", success=False)
        return answer("never")

    model = FunctionModel(endless)
    limits |= {"max_refinements": 1000, "max_width": 1000}
    events = await collect(Planner(**limits).run(Task(question="q"), Context(model)))
    final = events[-1]
    assert isinstance(final, FinalAnswer)
    details = final.result["details"]
    assert details["status"] == "partial"
    assert details["stopped"] == reason
    assert final.text.startswith(f"Partial result: stopped because {reason}")
    assert final.answer is None
    assert final.result["costs"]["llm_calls"] <= limits.get("max_llm_calls", 1000)
    assert not any(r.constraint and r.constraint.name == "PlannerAnswer" for r in model.requests)


async def test_refinement_rounds_depth_and_width_are_bounded() -> None:
    model = ScriptedModel(
        [
            plan("a", "b", "c", "d"),  # width 2: c and d are dropped
            submit("a failed", success=False),
            # one refinement round allowed: split a (ok), split a.1 (over depth 2), add after b (over width 2)
            refinement(
                {"op": "split", "target": "1", "into": [draft("a1"), draft("a2")]},
                {"op": "split", "target": "1.1", "into": [draft("x"), draft("y")]},
                {"op": "add", "after": "2", "subtask": draft("extra")},
                {"op": "delete", "target": "9"},
            ),
            submit("a1 failed", success=False),  # no second refinement: the limit is 1 round
            submit("a2 ok"),
            submit("b ok"),
            answer("done"),
        ]
    )
    planner = Planner(adaptive=False, max_width=2, max_depth=2, max_refinements=1)
    events = await collect(planner.run(Task(question="q"), Context(model)))
    model.assert_complete()
    final = events[-1]
    assert isinstance(final, FinalAnswer)
    notes = final.result["details"]["notes"]
    assert any("kept the first 2 (width limit)" in n for n in notes)
    assert any("split: subtask 1.1 is at the depth limit 2" in n for n in notes)
    assert any("add: 2 subtasks at that level already (width limit 2)" in n for n in notes)
    assert any("no subtask '9'" in n for n in notes)
    assert any("plan not refined after 1.1: the limit of 1 rounds" in n for n in notes)
    tree = final.result["details"]["plan"]["subtasks"]
    assert [c["id"] for c in tree[0]["children"]] == ["1.1", "1.2"]
    assert tree[0]["status"] == "failed"  # one child failed, none open


def test_unknown_or_bad_options_are_input_errors() -> None:
    from ponder.errors import InputError

    with pytest.raises(InputError, match="max_stepz"):
        Planner(max_stepz=3)
    with pytest.raises(InputError, match="max_steps"):
        Planner(max_steps=0)


async def test_starting_a_run_id_twice_is_a_conflict(checkpoint_url: str) -> None:
    from ponder.errors import Conflict

    ctx = Context(ScriptedModel([plan("a"), submit("ok"), answer("ok")]), checkpoint_url=checkpoint_url, run_id="r2")
    await collect(Planner().run(Task(question="q"), ctx))
    with pytest.raises(Conflict, match="exists already"):
        await collect(Planner().run(Task(question="q"), ctx))
