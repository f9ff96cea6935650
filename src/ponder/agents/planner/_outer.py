"""The outer loop: make the plan, pick the next subtask, refine the rest of the plan after each submission, and
write the final answer from the subtask results (or an honest partial result when a budget ran out)."""

from __future__ import annotations

from typing import Any, TypeVar

from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from ponder.agents._base import StrategyResult, Task, answer_model, format_answer
from ponder.agents._events import PlanUpdated
from ponder.agents.planner._common import Accounting, emit, over_budget
from ponder.agents.planner._plan import (
    RefinementRejected,
    apply_operation,
    find,
    leaves,
    new_plan,
    next_leaf,
    settle_parents,
)
from ponder.agents.planner._prompts import answer_messages, plan_messages, refine_messages
from ponder.agents.planner._sandbox import workspace_text
from ponder.agents.planner._schemas import AddOp, Plan, PlanDraft, PlanRefinement, SubTaskDraft, SubTaskStatus
from ponder.agents.planner._state import Deps, PlannerState, new_counters
from ponder.errors import ModelError
from ponder.llm import ANSWER_MARKER, Costs, Message, structured, think_then_answer_n, user


def _options(deps: Deps) -> dict[str, Any]:
    return {"temperature": deps.temperature, "max_tokens": deps.max_tokens, "retries": deps.limits.tool_retries}


T = TypeVar("T", bound=BaseModel)
THINK_FIRST = (
    "First think in plain text, briefly: what the task and the results so far need, and in which order. Then write "
    f"a line `{ANSWER_MARKER}` and stop."
)


async def _decide(model: Any, messages: list[Message], output_type: type[T], deps: Deps) -> T:
    """A plan or a refinement: with ``think=free`` reasoned in plain text first, then constrained to its schema
    after the reasoning (as the act steps and ``cot`` do); otherwise one constrained reply."""
    if deps.think != "free":
        return await structured(model, messages, output_type, **_options(deps))
    asked = [*messages[:-1], user(f"{messages[-1].content}\n\n{THINK_FIRST}")]
    ((_, decided),) = await think_then_answer_n(model, asked, output_type, **_options(deps))
    return decided


async def make_plan(state: PlannerState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    task = Task.model_validate(state["task"])
    acct = Accounting(deps, {"counters": state.get("counters") or new_counters()})
    notes: list[str] = []
    whole = SubTaskDraft.of("solve the task", task.question)
    if not state.get("outer", True) or state.get("adaptive"):  # ReACT, or adaptive's first attempt: no plan call
        drafts = [whole]
    else:
        try:
            messages = plan_messages(task, deps.limits.max_width)
            draft = await _decide(acct.model, messages, PlanDraft, deps)
            emit(acct.llm_event("plan", draft.model_dump()))
            drafts = draft.subtasks
        except ModelError as exc:
            notes.append(f"planning failed ({exc.message}); the task is worked on as one subtask")
            drafts = [whole]
    plan, clipped = new_plan(task.question, drafts, deps.limits.max_width)
    emit(PlanUpdated(plan=plan.model_dump(mode="json"), change="initial plan"))
    return {"plan": plan.model_dump(mode="json"), "notes": [*notes, *clipped], "counters": acct.counters()}


async def select(state: PlannerState, runtime: Runtime[Deps]) -> dict[str, Any]:
    plan = Plan.model_validate(state["plan"])
    settle_parents(plan)
    leaf = next_leaf(plan)
    if leaf is None:
        return {"current": None}
    if reason := over_budget(state, runtime.context.limits):
        return {"current": None, "stopped": reason}
    leaf.status = SubTaskStatus.doing
    settle_parents(plan)
    if runtime.context.sandbox is not None and state.get("results"):  # a fresh Python namespace; files are shared
        await runtime.context.sandbox.fresh_namespace()
    emit(PlanUpdated(plan=plan.model_dump(mode="json"), change=f"start {leaf.id} {leaf.name}"))
    return {"plan": plan.model_dump(mode="json"), "current": leaf.id, "steps": []}


async def refine(state: PlannerState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    submission = state.get("submission")
    suggestions = [*state.get("suggestions", []), *deps.inbox.drain()]
    keep = {"submission": None, "suggestions": suggestions}
    if submission is None or not state.get("outer", True):
        return keep
    if state.get("adaptive") and not state.get("escalated"):
        # a small model often submits "done" right after its last tool call failed (a crash, a missing module):
        # that claim is not evidence, so the adaptive planner escalates on the failed call as on a failed submission
        if submission.get("success") and submission.get("last_tool_ok") is not False:
            return keep  # solved as ReACT solves it: no plan, no refinement
        return keep | await _escalate(state, deps, submission)
    wanted = submission.get("refine") or not submission.get("success") or bool(suggestions)
    counters = state.get("counters") or new_counters()
    if not wanted:
        return keep
    if counters["refinements"] >= deps.limits.max_refinements:
        note = f"plan not refined after {submission['sid']}: the limit of {deps.limits.max_refinements} rounds"
        return keep | {"notes": [*state.get("notes", []), note]}
    if reason := over_budget(state, deps.limits):
        return keep | {"stopped": reason}
    plan = Plan.model_validate(state["plan"])
    task = Task.model_validate(state["task"])
    acct = Accounting(deps, state)
    notes = list(state.get("notes", []))
    messages = refine_messages(task, plan, submission, submission["sid"], suggestions)
    try:
        refinement = await _decide(acct.model, messages, PlanRefinement, deps)
    except ModelError as exc:
        notes.append(f"refinement after {submission['sid']} failed: {exc.message}")
        return keep | {"notes": notes, "counters": acct.counters()}
    emit(acct.llm_event("refine", refinement.model_dump()))
    changes = []
    operations: list[Any] = list(refinement.operations) if refinement.decision == "change" else []
    sid = submission["sid"]
    if not submission.get("success") and not _handles(operations, sid):
        # a failed subtask is never silently skipped: when the refinement neither split it nor added a subtask
        # after it, it is tried once more, with its failure and last tool calls in the new goal's criticism
        retried = find(plan, sid)
        if retried is not None and not retried.name.startswith("retry:"):
            evidence = "; ".join(submission.get("last_steps") or [])[:600]
            criticism = f"the first try failed: {submission.get('conclusion', '')}. Its last calls: {evidence}"
            retry = SubTaskDraft.of(f"retry: {retried.name}"[:60], retried.goal, criticism[:160])
            operations.append(AddOp(after=sid, subtask=retry))
            notes.append(f"subtask {sid} failed and the refinement left it as it was: tried once more")
    for op in operations:
        try:
            changes.append(apply_operation(plan, op, max_depth=deps.limits.max_depth, max_width=deps.limits.max_width))
        except RefinementRejected as exc:
            notes.append(f"refinement refused: {exc}")
    settle_parents(plan)
    if changes:
        emit(PlanUpdated(plan=plan.model_dump(mode="json"), change="; ".join(changes)))
    return {
        "plan": plan.model_dump(mode="json"),
        "submission": None,
        "suggestions": [],
        "notes": notes,
        "counters": acct.counters(refinements=1),
    }


def _handles(operations: list[Any], sid: str) -> bool:
    """Whether the operations split the failed subtask ``sid`` or add a subtask right after it."""
    return any((op.op == "split" and op.target == sid) or (op.op == "add" and op.after == sid) for op in operations)


async def _escalate(state: PlannerState, deps: Deps, attempt: dict[str, Any]) -> dict[str, Any]:
    """The first attempt (ReACT on the whole task) failed: plan the rest from what it learned. The failed attempt
    stays in the plan as subtask 1, with its result; the new subtasks follow it."""
    task = Task.model_validate(state["task"])
    acct = Accounting(deps, state)
    notes = list(state.get("notes", []))
    if reason := over_budget(state, deps.limits):
        return {"stopped": reason}
    results = dict(state.get("results", {}))
    if attempt.get("success"):  # it claimed success after a failed tool call: recorded as the failure it is
        conclusion = f"{attempt.get('conclusion', '')} (claimed done, but its last tool call failed)"
        attempt = {**attempt, "success": False, "conclusion": conclusion}
        results[attempt["sid"]] = {**results.get(attempt["sid"], {}), "success": False, "conclusion": conclusion}
    width = max(deps.limits.max_width - 1, 1)
    try:
        draft = await _decide(acct.model, plan_messages(task, width, attempt), PlanDraft, deps)
    except ModelError as exc:
        notes.append(f"planning after the failed first attempt failed ({exc.message}); the attempt's result stands")
        return {"notes": notes, "counters": acct.counters(), "escalated": True, "results": results}
    emit(acct.llm_event("plan", draft.model_dump()))
    old = Plan.model_validate(state["plan"])
    first = old.subtasks[0]
    first_draft = SubTaskDraft.of(first.name, first.goal, first.criticism, first.milestones)
    plan, clipped = new_plan(task.question, [first_draft, *draft.subtasks], width + 1)
    plan.subtasks[0].status = SubTaskStatus.failed
    emit(PlanUpdated(plan=plan.model_dump(mode="json"), change="the first attempt failed: planned the rest"))
    return {
        "plan": plan.model_dump(mode="json"),
        "notes": [*notes, *clipped],
        "counters": acct.counters(),
        "escalated": True,
        "results": results,
    }


async def finish(state: PlannerState, runtime: Runtime[Deps]) -> dict[str, Any]:
    if state.get("final"):
        return {}
    deps = runtime.context
    task = Task.model_validate(state["task"])
    plan = Plan.model_validate(state["plan"])
    results = state.get("results", {})
    acct = Accounting(deps, state)
    stopped = state.get("stopped") or over_budget(state, deps.limits)
    answer: Any = None
    text = ""
    if not stopped:
        output_type = answer_model(
            "PlannerAnswer",
            task,
            {"reasoning": (str, Field(max_length=400, description="how the results give the answer, briefly"))},
        )
        try:
            out = await structured(acct.model, answer_messages(task, results), output_type, **_options(deps))
            emit(acct.llm_event("answer", out.model_dump()))
            answer = out.model_dump()["answer"]
            text = format_answer(task, answer)
        except ModelError as exc:
            stopped = f"the final answer could not be written: {exc.message}"
    if stopped:
        done = [s for s in leaves(plan) if s.status is SubTaskStatus.done]
        found = "; ".join(f"{sid}: {r.get('conclusion', '')}" for sid, r in results.items()) or "nothing yet"
        text = f"Partial result: stopped because {stopped}, after {len(done)} of {len(leaves(plan))} subtasks. {found}"
    counters = acct.counters()
    concluded = "\n".join(f"{sid}: {r.get('conclusion', '')}" for sid, r in results.items())
    result = StrategyResult(
        answer=answer,
        text=text,
        reasoning=concluded or None,
        costs=Costs(
            llm_calls=counters["llm_calls"],
            prompt_tokens=counters["prompt_tokens"],
            completion_tokens=counters["completion_tokens"],
        ),
        tool_calls=counters["tool_calls"],
        seconds=counters["seconds"],
        details={
            "status": "partial" if stopped else "complete",
            "stopped": stopped,
            "plan": plan.model_dump(mode="json"),
            "results": results,
            "notes": state.get("notes", []),
            "human": state.get("human", []),
            "counters": dict(counters),
            "workspace": workspace_text(state.get("workspace", {})),
        },
    )
    return {"final": result.model_dump(mode="json"), "stopped": stopped, "counters": counters}
