"""The inner loop (ReACT over function calls): ``think`` asks the model for one tool call, ``act`` runs it, ``pause``
waits for a person. Every side effect sits in ``act`` behind the call's deterministic id, so a node re-run after
an interrupt or a crash never repeats a completed call."""

from __future__ import annotations

import json
import time
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import ValidationError

from ponder.agents._base import Task
from ponder.agents._events import PlanUpdated, StepStarted, ToolCalled, ToolReturned
from ponder.agents.planner._common import Accounting, emit, over_budget
from ponder.agents.planner._plan import find, settle_parents
from ponder.agents.planner._prompts import act_messages
from ponder.agents.planner._sandbox import workspace_text
from ponder.agents.planner._schemas import TOOL_CALL_FIELDS, Plan, SubmitResult, SubmitType, SubTaskStatus, ToolCall
from ponder.agents.planner._state import Deps, PlannerState
from ponder.agents.planner._tools import EDIT_FILE, SUBMIT, AgentTool, describe, edit_file
from ponder.errors import ModelError, PonderError, ToolArgumentsInvalid, UnknownTool, describe_validation
from ponder.llm import ChatModel, ChatRequest, JsonSchemaConstraint, Message, assistant, user
from ponder.tools import ToolResult, ToolSpec, find_tool, tool_call_schema
from ponder.tools._spec import inline_refs as inline_refs  # re-exported for the planner's tests

CALL_MARKER = "Tool call:"


async def ask_tool_call(
    model: ChatModel,
    messages: list[Message],
    tools: list[AgentTool],
    deps: Deps,
    made: dict[str, int] | None = None,
) -> tuple[ToolCall | None, list[str]]:
    """One valid tool call, or None after ``tool_retries`` re-asks; each bad reply's error is fed back.

    ``made`` maps the calls already made in this subtask (:func:`call_key`) to their step numbers. Repeating one
    changes nothing, so it is refused and the model is asked once more, for ``submit`` only (its conclusion from
    what it has). Small models at temperature 0 otherwise re-issue a call that worked (or failed) until the step
    limit, since the same prompt gets the same reply; XAgent's inner loop has no such guard."""
    specs = [t.spec for t in tools]
    free = deps.think == "free"
    constraint = _call_constraint(specs, thought_fields=not free)
    errors: list[str] = []
    msgs = list(messages)
    thinking = ""
    if free:  # plain-text reasoning first; the call after it carries only the tool and its arguments
        try:
            thinking, msgs = await _think_freely(model, msgs, deps)
        except ModelError as exc:
            errors.append(f"the model failed: {exc}")
    for _ in range(deps.limits.tool_retries + 1):
        request = ChatRequest(
            messages=msgs, constraint=constraint, temperature=deps.temperature, max_tokens=deps.max_tokens
        )
        try:
            choice = (await model.complete(request)).choices[0]
        except ModelError as exc:
            errors.append(f"the model failed: {exc}")
            if not exc.retryable:
                break
            continue
        if choice.finish_reason == "length":
            problem = "the reply was cut off at max_tokens; make it shorter"
        else:
            try:
                call = ToolCall.model_validate_json(choice.text)
                spec = find_tool(specs, call.tool)
                args = spec.validate_args(call.args).model_dump(mode="json", exclude_none=True)
            except ValidationError as exc:
                problem = f"the reply is not a tool call object: {describe_validation(exc.errors())}"
            except (UnknownTool, ToolArgumentsInvalid) as exc:
                problem = str(exc)
            else:
                step = (made or {}).get(call_key(call.tool, args))
                if step is None:
                    update: dict[str, Any] = {"args": args, **({"thought": thinking} if free else {})}
                    return call.model_copy(update=update), errors
                problem = (
                    f"that is the same call as step {step}, whose result is above, and repeating it changes nothing; "
                    "call `submit` now with your conclusion and the values found"
                )
                submit = [spec for spec in specs if spec.name == SUBMIT.name]
                if submit and len(specs) > 1:
                    specs, constraint = submit, _call_constraint(submit, thought_fields=not free)
        errors.append(problem)
        msgs = [*msgs, assistant(choice.text), user(f"That tool call could not be used: {problem}\nTry again.")]
    return None, errors


def _call_constraint(specs: list[ToolSpec], *, thought_fields: bool = True) -> JsonSchemaConstraint:
    extra = TOOL_CALL_FIELDS if thought_fields else {}
    return JsonSchemaConstraint(json_schema=tool_call_schema(specs, extra=extra), name="ToolCall")


THINK_FIRST = (
    "Before the tool call, think in plain text, briefly: what the results so far show, what to do next and why. "
    f"Then write a line `{CALL_MARKER}` and stop."
)
CALL_REQUEST = "Now give that tool call as a JSON object that matches the schema."


async def _think_freely(model: ChatModel, messages: list[Message], deps: Deps) -> tuple[str, list[Message]]:
    """The step's reasoning in plain text (stopped at the call marker), and the messages that ask for the call
    after it."""
    asked = [*messages[:-1], user(f"{messages[-1].content}\n\n{THINK_FIRST}")]
    request = ChatRequest(messages=asked, temperature=deps.temperature, max_tokens=deps.max_tokens, stop=[CALL_MARKER])
    thinking = (await model.complete(request)).text.strip()
    return thinking, [*asked, assistant(f"{thinking}\n{CALL_MARKER}"), user(CALL_REQUEST)]


def call_key(tool: str, args: dict[str, Any]) -> str:
    return json.dumps({"tool": tool, "args": args}, sort_keys=True)


async def think(state: PlannerState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    if reason := over_budget(state, deps.limits):
        return {"stopped": reason, "pending": None}
    if deps.inbox.take_pause():
        return {"paused": True}
    suggestions = [*state.get("suggestions", []), *deps.inbox.drain()]
    acct = Accounting(deps, state)
    sid = state["current"]
    assert sid is not None
    steps = list(state.get("steps", []))
    step_no = len(steps)
    last = step_no >= deps.limits.max_steps - 1
    checking = state.get("verify") == "check"
    if last:
        tools = [t for t in deps.tools if t.name == SUBMIT.name]
    elif checking:  # the claimed success is checked by a tool call first: submit comes after it
        tools = [t for t in deps.tools if t.kind in CHECK_KINDS]
    else:
        tools = deps.tools
    messages = act_messages(
        task=Task.model_validate(state["task"]),
        plan=Plan.model_validate(state["plan"]),
        current=sid,
        results=state.get("results", {}),
        steps=steps,
        suggestions=suggestions,
        tools_text=describe(deps.tools),  # the same instructions every step, so their KV cache is reused
        history_steps=deps.limits.history_steps,
        max_chars=deps.limits.max_output_chars,
        force_submit=last,
        files=workspace_text(state.get("workspace", {})),
        preview_chars=deps.limits.file_preview_chars,
    )
    made: dict[str, int] = {}
    for number, step in enumerate(steps, 1):
        if (done := step.get("call")) is not None and not checking:  # a check may repeat a call: it looks again
            made.setdefault(call_key(done["tool"], done["args"]), number)
    call, errors = await ask_tool_call(acct.model, messages, tools, deps, made)
    emit(acct.llm_event("act", call.model_dump() if call else {"errors": errors}, group=sid))
    call_id = f"{sid}#{step_no}"
    update: dict[str, Any] = {"suggestions": suggestions}
    if call is not None:
        update |= {"pending": {"call_id": call_id, **call.model_dump()}, "counters": acct.counters()}
        if checking:
            update["verify"] = "checked"
        return update
    steps.append({"call_id": call_id, "call": None, "error": "no usable tool call: " + " | ".join(errors)})
    update |= {"steps": steps, "counters": acct.counters(failed_steps=1), "pending": None}
    if last:  # the subtask ends as failed, honestly, rather than looping
        give_up = SubmitResult(
            conclusion=f"no valid submission within {deps.limits.max_steps} steps: {errors[-1] if errors else ''}",
            success=False,
            submit_type=SubmitType.budget_exhausted,
        )
        update["pending"] = {"call_id": call_id, "tool": SUBMIT.name, "args": give_up.model_dump(mode="json")}
    return update


async def pause(state: PlannerState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """A person asked the run to stop; their answer is taken as a suggestion for the rest of the work."""
    answer = interrupt({"kind": "paused", "question": "The run is paused. Type a suggestion, or nothing to go on."})
    text = str(answer or "").strip()
    human = [*state.get("human", []), {"question": "(paused)", "answer": text}]
    return {"paused": False, "suggestions": [*state.get("suggestions", []), *([text] if text else [])], "human": human}


async def act(state: PlannerState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    start = time.perf_counter()
    pending = state["pending"]
    assert pending is not None
    call_id, tool, args = pending["call_id"], pending["tool"], pending["args"]
    if tool == SUBMIT.name:
        submitted = SubmitResult.model_validate(args)
        if submitted.success and deps.verify and state.get("verify") is None and _can_check(deps):
            return _ask_to_verify(state, call_id, pending)
        return _submit(state, submitted)
    done = dict(state.get("done_calls", {}))
    update: dict[str, Any] = {}
    if tool == "ask_human":
        answer = interrupt({"kind": "question", "question": args["question"], "call_id": call_id})
        text = str(answer or "").strip() or "(the human gave no answer)"
        result = ToolResult(tool=tool, ok=True, output={"answer": text})
        group = state.get("current")
        emit(ToolCalled(call_id=call_id, tool=tool, args=args, group=group))  # after the interrupt: once per answer
        emit(ToolReturned(call_id=call_id, tool=tool, ok=True, output=result.output, group=group))
        update["human"] = [*state.get("human", []), {"question": args["question"], "answer": text}]
    elif (client_tool := deps.tool(tool)) is not None and client_tool.kind == "client":
        # the API client runs this tool itself: the run waits (durably) for its result, as for a human's answer
        question = f"run the tool {tool} and send its result"
        answer = interrupt({"kind": "tool_call", "question": question, "call_id": call_id, "tool": tool, "args": args})
        result = ToolResult(tool=tool, ok=True, output={"result": str(answer if answer is not None else "")})
        group = state.get("current")
        emit(ToolCalled(call_id=call_id, tool=tool, args=args, group=group))
        emit(ToolReturned(call_id=call_id, tool=tool, ok=True, output=result.output, group=group))
    elif call_id in done:  # completed before a crash or an interrupt: never run twice
        result = ToolResult.model_validate(done[call_id])
    else:
        group = state.get("current")
        emit(ToolCalled(call_id=call_id, tool=tool, args=args, group=group))
        result = await _run_tool(deps, deps.tool(tool), args, state.get("workspace", {}))
        emit(ToolReturned(call_id=call_id, tool=tool, ok=result.ok, output=result.output, error=result.error,
                          seconds=result.seconds, group=group))  # fmt: skip
    done[call_id] = result.model_dump(mode="json")
    if deps.sandbox is not None and (agent_tool := deps.tool(tool)) is not None and agent_tool.kind == "sandbox":
        workspace, notes = await deps.sandbox.snapshot(state.get("workspace", {}))
        update["workspace"] = workspace
        if notes:
            update["notes"] = [*state.get("notes", []), *notes]
    if deps.browser is not None and (agent_tool := deps.tool(tool)) is not None and agent_tool.kind == "browse":
        update["browser"] = deps.browser.state.model_dump(mode="json")
    step = {"call_id": call_id, "call": {k: pending[k] for k in ("tool", "args", "thought")}, "result": done[call_id]}
    counters = state["counters"].copy()
    counters["tool_calls"] += 1
    counters["failed_steps"] += 0 if result.ok else 1
    counters["seconds"] += time.perf_counter() - start
    return update | {"steps": [*state.get("steps", []), step], "done_calls": done, "pending": None,
                     "counters": counters}  # fmt: skip


async def _run_tool(deps: Deps, tool: AgentTool | None, args: dict[str, Any], workspace: dict[str, Any]) -> ToolResult:
    """Run one tool; a failure of the tool or of its infrastructure is a failed result, not a failed run."""
    name = tool.name if tool else "?"
    try:
        if tool is None:
            raise UnknownTool(f"unknown tool {name!r}")
        if tool.kind == "sandbox":
            sandbox = deps.sandbox
            if sandbox is None:
                raise UnknownTool(f"tool {tool.name!r} needs a ToolServer and none is configured")
            if tool.name == EDIT_FILE.name:  # ponder's own tool, made of the sandbox's files tool
                return await edit_file(lambda name, a: sandbox.call(name, a, workspace), args)
            return await sandbox.call(tool.name, args, workspace)
        assert tool.run is not None
        return await tool.run(args)
    except PonderError as exc:
        return ToolResult(tool=name, ok=False, error=str(exc))


def last_steps(state: PlannerState, n: int = 3, chars: int = 300) -> list[str]:
    """The subtask's last tool calls and what came of them, briefly: the evidence refinement and escalation read."""
    out = []
    for step in state.get("steps", [])[-n:]:
        call, result = step.get("call") or {}, step.get("result") or {}
        if call.get("tool") == SUBMIT.name:
            continue
        args = json.dumps(call.get("args", {}), ensure_ascii=False)[:chars]
        if result.get("ok"):
            got = "ok: " + json.dumps(result.get("output"), ensure_ascii=False)[:chars]
        else:
            got = "failed: " + str(result.get("error") or step.get("error") or "")[:chars]
        out.append(f"{call.get('tool')}({args}) -> {got}")
    return out


def last_tool_ok(state: PlannerState) -> bool | None:
    """Whether the subtask's last tool call (before it submitted) succeeded; None when it called none."""
    for step in reversed(state.get("steps", [])):
        call = step.get("call") or {}
        if call.get("tool") and call.get("tool") != SUBMIT.name:
            return bool((step.get("result") or {}).get("ok"))
    return None


CHECK_KINDS = ("sandbox", "search", "browse", "kb", "mcp")  # tools that can look at evidence
VERIFY_REQUEST = (
    "Not accepted yet: before this subtask counts as done, check the evidence with ONE tool call (read or list the "
    "file the task asked for, run the script or command and look at its output, compute the value once more). Then "
    "call `submit` again: success=true only if the check showed what the task asked for; otherwise success=false, "
    "saying what the check showed."
)


def _can_check(deps: Deps) -> bool:
    return any(t.kind in CHECK_KINDS for t in deps.tools)


def _ask_to_verify(state: PlannerState, call_id: str, pending: dict[str, Any]) -> dict[str, Any]:
    """A claimed success, not yet accepted: the model's next step must check it with a tool (``think`` offers no
    ``submit`` then); its next submission is taken as it is (one check per subtask, so this cannot loop)."""
    call = {k: pending[k] for k in ("tool", "args", "thought") if k in pending}
    step = {"call_id": call_id, "call": call, "result": {"ok": False, "output": {}, "error": VERIFY_REQUEST}}
    emit(StepStarted(name="verify", detail=f"{state.get('current')}: checking the claimed success before accepting it"))
    return {"steps": [*state.get("steps", []), step], "pending": None, "verify": "check"}


def _submit(state: PlannerState, submitted: SubmitResult) -> dict[str, Any]:
    sid = state["current"]
    assert sid is not None
    plan = Plan.model_validate(state["plan"])
    node = find(plan, sid)
    if node is not None:
        node.status = SubTaskStatus.done if submitted.success else SubTaskStatus.failed
    settle_parents(plan)
    verdict = "done" if submitted.success else "failed"
    results = {**state.get("results", {}), sid: submitted.model_dump(mode="json")}
    outcomes = {key: str(r.get("conclusion", "")) for key, r in results.items()}
    emit(
        PlanUpdated(
            plan=plan.model_dump(mode="json"),
            change=f"{sid} {verdict}: {submitted.conclusion[:200]}",
            outcomes=outcomes,
        )
    )
    return {
        "plan": plan.model_dump(mode="json"),
        "results": results,
        "submission": {
            "sid": sid,
            **submitted.model_dump(mode="json"),
            "last_steps": last_steps(state),
            "last_tool_ok": last_tool_ok(state),
        },
        "current": None,
        "steps": [],
        "pending": None,
        "verify": None,
    }
