"""The planner's whole loop with a scripted model and a fake ToolServer: plan, tool calls, a failing tool, submit,
the four refinement operations, and the workspace the run leaves behind."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ponder.agents import (
    Context,
    Event,
    FinalAnswer,
    LLMCall,
    PlanUpdated,
    StepStarted,
    Task,
    ToolCalled,
    ToolReturned,
    get_strategy,
)
from ponder.agents.planner import Planner
from tests.agents.planner._fake_toolserver import FakeToolServer
from tests.agents.planner._script import answer, call, draft, plan, refinement, submit
from tests.fakes import ScriptedModel


async def collect(events: Any) -> list[Event]:
    return [e async for e in events]


def bare(reply: dict[str, Any]) -> dict[str, Any]:
    """A scripted call without its thought fields (``think=free`` constrains only the tool and its arguments)."""
    return {"tool": reply["tool"], "args": reply["args"]}


def final_of(events: list[Event]) -> FinalAnswer:
    assert isinstance(events[-1], FinalAnswer), events[-1]
    return events[-1]


async def test_plan_act_refine_with_all_four_operations(toolserver: FakeToolServer) -> None:
    model = ScriptedModel(
        [
            plan("compute 6*7", "write the product to answer.txt", "say thanks"),
            # subtask 1: a tool call, a failing tool, then submit asking for refinement
            call("python", code="6 * 7"),
            call("fail", message="disk on fire"),
            submit("6*7 = 42", refine=True, suggestions="also double-check"),
            # refinement: modify 2, add 4 after 2, delete 3, split 4
            refinement(
                {"op": "modify", "target": "2", "goal": "write 42 to answer.txt"},
                {"op": "add", "after": "2", "subtask": draft("check")},
                {"op": "delete", "target": "3"},
                {"op": "split", "target": "4", "into": [draft("read back"), draft("compare")]},
            ),
            # subtask 2 (modified)
            call("write_file", path="answer.txt", content="42"),
            submit("answer.txt holds 42"),
            # subtasks 4.1 and 4.2 (the split)
            call("read_file", path="answer.txt"),
            submit("read 42 back"),
            submit("42 == 42"),
            answer("42"),
        ]
    )
    planner = Planner(adaptive=False, workspace_root=str(toolserver.root))
    ctx = Context(model, toolserver=toolserver)
    events = await collect(planner.run(Task(question="Write 6*7 to answer.txt"), ctx))
    model.assert_complete()
    final = final_of(events)
    assert final.text == "42"
    details = final.result["details"]
    assert details["status"] == "complete"
    assert details["workspace"] == {"answer.txt": "42"}

    changes = [e.change for e in events if isinstance(e, PlanUpdated)]
    refined = next(c for c in changes if "modified" in c)
    assert "modified 2: goal" in refined
    assert "added 4 'check' after 2" in refined
    assert "deleted 3 'say'" in refined
    assert "split 4 into 4.1, 4.2" in refined

    tree = details["plan"]["subtasks"]
    assert [s["id"] for s in tree] == ["1", "2", "4"]
    assert tree[1]["goal"] == "write 42 to answer.txt"
    assert [c["id"] for c in tree[2]["children"]] == ["4.1", "4.2"]
    assert all(s["status"] == "done" for s in tree)
    assert set(details["results"]) == {"1", "2", "4.1", "4.2"}

    returned = {e.tool: e for e in events if isinstance(e, ToolReturned)}
    assert returned["python"].ok and returned["python"].output["result"] == "42"
    assert not returned["fail"].ok and returned["fail"].error == "disk on fire"
    assert returned["read_file"].output == {"content": "42"}
    called = [e for e in events if isinstance(e, ToolCalled)]
    assert [c.call_id for c in called] == ["1#0", "1#1", "2#0", "4.1#0"]
    assert final.result["tool_calls"] == 4
    assert final.result["costs"]["llm_calls"] == 11
    assert details["counters"]["failed_steps"] == 1
    assert sum(isinstance(e, LLMCall) for e in events) == 11

    # the failing tool's error reached the model; the human-readable plan reached every act prompt
    act_prompts = [r.messages for r in model.requests if r.constraint and r.constraint.name == "ToolCall"]
    assert "disk on fire" in act_prompts[2][-1].content
    assert "Current subtask 2: write 42 to answer.txt" in act_prompts[3][1].content
    # the refinement saw the submission's advice
    refine_prompt = next(r for r in model.requests if r.constraint and r.constraint.name == "PlanRefinement")
    assert "also double-check" in refine_prompt.messages[-1].content


async def test_tool_call_constraint_offers_each_tool_with_its_own_schema(toolserver: FakeToolServer) -> None:
    model = ScriptedModel([plan("all"), submit("done"), answer("ok")])
    await collect(Planner().run(Task(question="q"), Context(model, toolserver=toolserver)))
    schema = next(r.constraint for r in model.requests if r.constraint and r.constraint.name == "ToolCall")
    assert schema is not None and schema.kind == "json_schema"
    branches = {b["properties"]["tool"]["const"]: b for b in schema.json_schema["anyOf"]}
    # sandbox tools (base64 transfer hidden), edit_file (made of files), then ask_human and submit
    assert set(branches) == {
        "python",
        "write_file",
        "read_file",
        "fail",
        "sleep",
        "files",
        "edit_file",
        "ask_human",
        "submit",
    }
    assert branches["write_file"]["properties"]["args"]["required"] == ["path", "content"]
    assert "success" in branches["submit"]["properties"]["args"]["required"]
    assert list(branches["python"]["properties"])[:4] == ["thought", "reasoning", "plan", "criticism"]


async def test_bad_tool_name_and_bad_args_are_retried_then_a_failed_step(toolserver: FakeToolServer) -> None:
    model = ScriptedModel(
        [
            plan("compute"),
            call("nope", x=1),  # unknown tool
            call("python", code=5),  # args fail the schema
            call("write_file", path="a.txt"),  # still bad: the step fails after 2 retries
            call("python", code="2 + 2"),  # the run goes on with the next step
            submit("4"),
            answer("4"),
        ]
    )
    events = await collect(Planner(adaptive=False).run(Task(question="2+2?"), Context(model, toolserver=toolserver)))
    model.assert_complete()
    final = final_of(events)
    assert final.text == "4"
    act = [r for r in model.requests if r.constraint and r.constraint.name == "ToolCall"]
    assert "unknown tool 'nope'" in act[1].messages[-1].content
    assert "available tools:" in act[1].messages[-1].content
    bad_args = "arguments for tool 'python' are invalid: code: Input should be a valid string"
    assert bad_args in act[2].messages[-1].content
    assert "content: Field required" in act[3].messages[-1].content  # the fresh step shows the failed one
    assert final.result["details"]["counters"]["failed_steps"] == 1
    calls = [e.call_id for e in events if isinstance(e, ToolCalled)]
    assert calls == ["1#1"]  # step 0 failed without running anything


async def test_a_repeated_call_is_refused_and_only_submit_is_offered(toolserver: FakeToolServer) -> None:
    model = ScriptedModel(
        [
            plan("compute"),
            call("python", code="print(6 * 7)"),
            call("python", code="print(6 * 7)"),  # the same call again: refused, not run
            submit("42"),
            answer("42"),
        ]
    )
    events = await collect(Planner(adaptive=False).run(Task(question="6*7?"), Context(model, toolserver=toolserver)))
    model.assert_complete()
    assert final_of(events).text == "42"
    assert [e.call_id for e in events if isinstance(e, ToolCalled)] == ["1#0"]  # ran once
    act = [r for r in model.requests if r.constraint and r.constraint.name == "ToolCall"]
    assert "the same call as step 1" in act[2].messages[-1].content
    assert "python" in json.dumps(act[1].constraint.json_schema)
    assert act[2].constraint.json_schema["properties"]["tool"] == {"const": "submit"}  # only submit is offered
    assert final_of(events).result["details"]["counters"]["failed_steps"] == 0


async def test_failing_model_fails_a_step_not_the_run(toolserver: FakeToolServer) -> None:
    from ponder.errors import ModelRequestRejected

    model = ScriptedModel([plan("x"), ModelRequestRejected("bad request"), submit("fine"), answer("fine")])
    events = await collect(Planner().run(Task(question="q"), Context(model, toolserver=toolserver)))
    final = final_of(events)
    assert final.text == "fine"
    assert final.result["details"]["counters"]["failed_steps"] == 1


async def test_react_baseline_has_no_plan_call_and_no_refinement(toolserver: FakeToolServer) -> None:
    model = ScriptedModel([call("python", code="3 * 3"), submit("9", success=False, refine=True), answer("9")])
    strategy = get_strategy("react")
    events = await collect(strategy.run(Task(question="3*3?"), Context(model, toolserver=toolserver)))
    model.assert_complete()
    final = final_of(events)
    assert final.text == "9"
    assert [s["goal"] for s in final.result["details"]["plan"]["subtasks"]] == ["3*3?"]
    assert [r.constraint.name for r in model.requests if r.constraint] == ["ToolCall", "ToolCall", "PlannerAnswer"]


async def test_planner_without_a_toolserver_uses_only_control_tools() -> None:
    model = ScriptedModel([plan("think"), submit("it is 5"), answer(5)])
    events = await collect(get_strategy("planner").run(Task(question="2+3?", family="number"), Context(model)))
    final = final_of(events)
    assert final.answer == 5.0 and final.text == "5"
    schema = next(r.constraint for r in model.requests if r.constraint and r.constraint.name == "ToolCall")
    assert schema is not None
    assert {b["properties"]["tool"]["const"] for b in schema.json_schema["anyOf"]} == {"ask_human", "submit"}
    json.dumps(final.result)  # the whole result is JSON


async def test_task_files_are_put_into_the_workspace_and_named_in_the_prompt(toolserver: FakeToolServer) -> None:
    model = ScriptedModel([plan("read"), call("read_file", path="data/n.txt"), submit("n is 12"), answer("12")])
    task = Task(question="What is n?", metadata={"files": {"data/n.txt": "12"}})
    planner = Planner(workspace_root=str(toolserver.root))
    events = await collect(planner.run(task, Context(model, toolserver=toolserver)))
    read = next(e for e in events if isinstance(e, ToolReturned))
    assert read.ok and read.output == {"content": "12"}
    act = next(r for r in model.requests if r.constraint and r.constraint.name == "ToolCall")
    assert "Files in the workspace: data/n.txt" in act.messages[1].content
    assert "```" not in act.messages[1].content  # by default names only, no previews


async def test_file_previews_show_whole_text_files_within_the_budget(toolserver: FakeToolServer) -> None:
    model = ScriptedModel([plan("read"), submit("seen"), answer("seen")])
    files = {"small.txt": "abc", "mid.txt": "x" * 30, "big.txt": "y" * 500, "empty.txt": ""}
    task = Task(question="Look.", metadata={"files": files})
    planner = Planner(workspace_root=str(toolserver.root), file_preview_chars=40)
    await collect(planner.run(task, Context(model, toolserver=toolserver)))
    act = next(r for r in model.requests if r.constraint and r.constraint.name == "ToolCall")
    head = act.messages[1].content
    assert "Files in the workspace: big.txt, empty.txt, mid.txt, small.txt" in head
    assert "small.txt:\n```\nabc\n```" in head and "mid.txt:\n```\n" + "x" * 30 in head  # 33 of 40 chars
    assert "y" * 50 not in head  # too big for what is left of the budget: named, not shown


async def test_task_files_outside_the_workspace_are_refused() -> None:
    from ponder.errors import InputError

    task = Task(question="q", metadata={"files": {"../etc/passwd": "x"}})
    with pytest.raises(InputError, match="inside the workspace"):
        await collect(Planner().run(task, Context(ScriptedModel())))


async def test_a_later_subtask_does_not_inherit_python_names(toolserver: FakeToolServer) -> None:
    """Subtasks share files, not the interpreter's names: a value left in a name by subtask 1 is gone in 2."""
    model = ScriptedModel(
        [
            plan("compute the total", "print the total"),
            call("python", code="total = 5"),
            call("write_file", path="total.txt", content="5"),
            submit("total is 5, in total.txt"),
            call("python", code="print(total)"),  # would silently reuse subtask 1's name
            call("read_file", path="total.txt"),
            submit("5"),
            answer("5"),
        ]
    )
    planner = get_strategy("planner", adaptive=False)
    events = await collect(planner.run(Task(question="total?"), Context(model, toolserver=toolserver)))
    results = [(e.tool, e.ok, e.error) for e in events if isinstance(e, ToolReturned)]
    assert [(tool, ok) for tool, ok, _ in results] == [
        ("python", True),
        ("write_file", True),
        ("python", False),
        ("read_file", True),
    ]
    assert "NameError" in (results[2][2] or "")
    assert final_of(events).text == "5"


async def test_adaptive_planner_costs_what_react_costs_on_a_one_step_task(toolserver: FakeToolServer) -> None:
    script = [call("python", code="3 * 3"), submit("9"), answer("9")]
    calls = []
    for name, options in (("react", {}), ("planner", {"adaptive": True})):
        model = ScriptedModel(list(script))
        events = await collect(
            get_strategy(name, **options).run(Task(question="3*3?"), Context(model, toolserver=toolserver))
        )
        assert final_of(events).text == "9"
        model.assert_complete()
        calls.append([r.constraint.name for r in model.requests if r.constraint])
    assert calls[0] == calls[1] == ["ToolCall", "ToolCall", "PlannerAnswer"]  # no plan call, no refinement


@pytest.mark.parametrize(
    "question", ["Sum the rows and report it", "Sum the rows and report it." + " Be careful." * 30]
)
async def test_adaptive_planner_escalates_with_what_the_failed_attempt_learned(
    toolserver: FakeToolServer, question: str
) -> None:  # a question longer than a drafted goal may be (240 characters) escalates too
    model = ScriptedModel(
        [
            call("python", code="rows = [3, 4]\nsum(rows) / 0"),
            submit("the division failed", success=False),
            plan("sum the rows", "report the sum"),  # the escalation's plan, made after the failure
            call("python", code="sum([3, 4])"),
            submit("the sum is 7"),
            call("write_file", path="report.txt", content="7"),
            submit("wrote report.txt"),
            answer("7"),
        ]
    )
    planner = get_strategy("planner", adaptive=True)
    events = await collect(planner.run(Task(question=question), Context(model, toolserver=toolserver)))
    model.assert_complete()
    planning = next(r for r in model.requests if r.constraint and r.constraint.name == "PlanDraft")
    prompt = planning.messages[-1].content
    assert "did not succeed" in prompt and "the division failed" in prompt and "ZeroDivisionError" in prompt
    final = final_of(events)
    assert final.text == "7"
    subtasks = final.result["details"]["plan"]["subtasks"]
    assert [(s["id"], s["status"]) for s in subtasks] == [("1", "failed"), ("2", "done"), ("3", "done")]


async def test_adaptive_planner_escalates_on_a_success_claimed_after_a_failed_call(toolserver: FakeToolServer) -> None:
    # the small model's habit in the suite's traces: its tool call crashes, it submits "done" anyway
    model = ScriptedModel(
        [
            call("python", code="import pandas\nprint(1)"),
            submit("the best score is {name}"),  # claimed done, on the evidence of a failed call
            plan("read scores.txt with plain Python and find the best"),
            call("python", code="max([3, 9, 4])"),
            submit("the best score is 9"),
            answer("9"),
        ]
    )
    events = await collect(
        get_strategy("planner", adaptive=True).run(
            Task(question="Find the best score"), Context(model, toolserver=toolserver)
        )
    )
    model.assert_complete()
    planning = next(r for r in model.requests if r.constraint and r.constraint.name == "PlanDraft")
    prompt = planning.messages[-1].content
    assert "claimed done, but its last tool call failed" in prompt and "ModuleNotFoundError" in prompt
    final = final_of(events)
    assert final.text == "9"
    subtasks = final.result["details"]["plan"]["subtasks"]
    assert [(s["id"], s["status"]) for s in subtasks] == [("1", "failed"), ("2", "done")]


async def test_adaptive_planner_trusts_a_success_after_a_successful_call(toolserver: FakeToolServer) -> None:
    script = [call("python", code="max([3, 9, 4])"), submit("9"), answer("9")]
    model = ScriptedModel(script)
    events = await collect(
        get_strategy("planner", adaptive=True).run(Task(question="best?"), Context(model, toolserver=toolserver))
    )
    model.assert_complete()
    assert final_of(events).text == "9"
    assert not any(r.constraint and r.constraint.name == "PlanDraft" for r in model.requests)


async def test_with_free_think_each_step_reasons_in_text_before_its_constrained_call(
    toolserver: FakeToolServer,
) -> None:
    model = ScriptedModel(
        [
            "3 times 3 is easy, but python makes sure of it.",
            bare(call("python", code="print(3 * 3)")),
            "The output says 9, so I can submit.",
            bare(submit("9", success=False, refine=True)),
            answer("9"),
        ]
    )
    strategy = get_strategy("react", think="free")
    events = await collect(strategy.run(Task(question="3*3?"), Context(model, toolserver=toolserver)))
    model.assert_complete()
    assert final_of(events).text == "9"
    thinking, calling = model.requests[0], model.requests[1]
    assert thinking.constraint is None and thinking.stop == ["Tool call:"]
    assert "think in plain text" in thinking.messages[-1].content
    properties = {k for b in calling.constraint.json_schema["anyOf"] for k in b["properties"]}  # type: ignore[union-attr]
    assert properties == {"tool", "args"}  # no thought fields in the constrained call
    assert calling.messages[-2].content.startswith("3 times 3 is easy")
    called = next(e for e in events if isinstance(e, LLMCall) and e.purpose == "act")
    assert called.output["thought"] == "3 times 3 is easy, but python makes sure of it."


def offered_tools(request: Any) -> set[str]:
    return {b["properties"]["tool"]["const"] for b in request.constraint.json_schema["anyOf"]}


async def test_verify_checks_a_claimed_success_with_one_tool_call_before_accepting_it(
    toolserver: FakeToolServer,
) -> None:
    model = ScriptedModel(
        [
            call("files", op="write", path="out.txt", content="42"),
            submit("out.txt holds 42"),  # claimed: not accepted yet
            call("files", op="read", path="out.txt"),  # the check (submit is not offered for this step)
            submit("checked: out.txt holds 42"),
            answer("42"),
        ]
    )
    strategy = get_strategy("react", verify=True)
    events = await collect(strategy.run(Task(question="Write 42 to out.txt"), Context(model, toolserver=toolserver)))
    model.assert_complete()
    final = final_of(events)
    assert final.text == "42" and final.result["details"]["status"] == "complete"
    assert any(isinstance(e, StepStarted) and e.name == "verify" for e in events)
    acts = [r for r in model.requests if r.constraint and r.constraint.name == "ToolCall"]
    assert "submit" in offered_tools(acts[1]) and "submit" not in offered_tools(acts[2])
    assert "Not accepted yet" in acts[2].messages[-1].content  # the model is told why
    assert final.result["details"]["results"]["1"]["conclusion"] == "checked: out.txt holds 42"
    checked = [e for e in events if isinstance(e, ToolReturned)][-1]
    assert checked.tool == "files" and checked.ok and checked.output == {"content": "42"}


async def test_a_failed_check_fails_the_subtask_and_the_planner_refines_with_what_was_seen(
    toolserver: FakeToolServer,
) -> None:
    model = ScriptedModel(
        [
            plan("write the file"),
            call("python", code="1 + 1"),
            submit("wrote out.txt"),
            call("files", op="list", path="."),
            submit("the check found no out.txt", success=False),
            refinement(),  # a failed subtask is tried once more, and its success is checked again
            call("files", op="write", path="out.txt", content="42"),
            submit("wrote out.txt"),
            call("files", op="read", path="out.txt"),
            submit("checked: out.txt holds 42"),
            refinement(),
            answer("42"),
        ]
    )
    strategy = get_strategy("planner", adaptive=False, verify=True)
    events = await collect(strategy.run(Task(question="Write 42 to out.txt"), Context(model, toolserver=toolserver)))
    model.assert_complete()
    final = final_of(events)
    results = final.result["details"]["results"]
    first, retry = (results[k] for k in sorted(results))
    assert first["success"] is False and "no out.txt" in first["conclusion"]
    assert retry["success"] is True and retry["conclusion"] == "checked: out.txt holds 42"
    assert sum(isinstance(e, StepStarted) and e.name == "verify" for e in events) == 2
    refine = next(r for r in model.requests if r.constraint and r.constraint.name == "PlanRefinement")
    assert "ended (failure): the check found no out.txt" in refine.messages[-1].content
    assert "files(" in refine.messages[-1].content  # refinement reads the check's call and what it saw


async def test_without_verify_a_claimed_success_is_taken_at_once(toolserver: FakeToolServer) -> None:
    model = ScriptedModel([call("python", code="1"), submit("done"), answer("1")])
    events = await collect(get_strategy("react").run(Task(question="1?"), Context(model, toolserver=toolserver)))
    model.assert_complete()
    assert not any(isinstance(e, StepStarted) and e.name == "verify" for e in events)


async def test_react_takes_a_question_longer_than_a_planned_goal_may_be(toolserver: FakeToolServer) -> None:
    question = "Count the files. " * 30  # 510 characters: a drafted goal may have 240
    model = ScriptedModel([call("shell", command="ls | wc -l"), submit("0 files"), answer("0")])
    events = await collect(get_strategy("react").run(Task(question=question), Context(model, toolserver=toolserver)))
    model.assert_complete()
    final = final_of(events)
    assert final.text == "0"
    assert final.result["details"]["plan"]["subtasks"][0]["goal"] == question


async def test_free_thinking_plans_and_refines_in_plain_text_first(toolserver: FakeToolServer) -> None:
    model = ScriptedModel(
        [
            "Compute it with python, then report it.",
            plan("compute 3*3", "report the product"),
            "Compute first.",
            bare(call("python", code="print(3 * 3)")),
            "It printed 9.",
            bare(submit("9", refine=True)),
            "The first subtask found 9; the plan stands.",
            refinement(),
            "The product is 9.",
            bare(submit("the product is 9")),
            answer("9"),
        ]
    )
    strategy = get_strategy("planner", adaptive=False, think="free")
    events = await collect(strategy.run(Task(question="3*3?"), Context(model, toolserver=toolserver)))
    model.assert_complete()
    assert final_of(events).text == "9"
    by_name = {r.constraint.name: r for r in model.requests if r.constraint}
    for name in ("PlanDraft", "PlanRefinement"):
        asked = by_name[name]
        assert asked.messages[-2].role == "assistant" and asked.messages[-1].content.startswith("Now give")
        thinking = model.requests[model.requests.index(asked) - 1]
        assert thinking.constraint is None and "First think in plain text" in thinking.messages[-1].content
