"""The ``planner`` strategy: runs the graph with a durable checkpointer, streams its events, pauses for a human and
resumes (after a human answer, or after a crash) from the last checkpoint."""

from __future__ import annotations

import contextlib
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any, ClassVar, Literal, cast

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphRecursionError
from langgraph.types import Command
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import SkipJsonSchema

from ponder.agents._base import BaseStrategy, Context, Task
from ponder.agents._events import ErrorRaised, Event, FinalAnswer, NeedsHuman, StepStarted
from ponder.agents.planner._checkpoint import open_checkpointer
from ponder.agents.planner._graph import build_graph
from ponder.agents.planner._sandbox import SandboxLink, seed_workspace
from ponder.agents.planner._state import Deps, Inbox, PlannerLimits, PlannerState, new_counters
from ponder.agents.planner._tools import (
    ASK_HUMAN,
    EDIT_FILE,
    HIDDEN_SANDBOX_TOOLS,
    SUBMIT,
    AgentTool,
    browser_tools,
    kb_tools,
    search_tools,
)
from ponder.errors import Conflict, InputError, NotFoundError, describe_validation
from ponder.llm import check_supported
from ponder.tools._spec import spec_from_function

_COMPILED: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def compiled(saver: Any) -> Any:
    """The planner's graph compiled with ``saver``, once per saver (the app's shared one serves every run)."""
    app = _COMPILED.get(saver)
    if app is None:
        app = _COMPILED[saver] = build_graph().compile(checkpointer=saver)
    return app


class PlannerOptions(PlannerLimits):
    """The run's limits (:class:`PlannerLimits`, each settable on its own) and how the planner works."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    limits: SkipJsonSchema[PlannerLimits | None] = Field(default=None, description="all limits at once (Python)")
    outer: bool = Field(default=True, description="plan and refine (the outer loop); off: ReACT on the whole task")
    adaptive: bool = Field(
        default=True,
        description="start as ReACT on the whole task (no plan call) and plan, from what that attempt learned, only "
        "if it fails: a one-step task costs what ReACT costs. The default, by measurement (AgentBench-OS dev, "
        "docs/results/agents: 11 of 25 tasks against 8 for planning first, at 0.76x its calls); false plans first",
    )
    ask_human: bool = Field(default=True, description="offer the ask_human tool (the run waits for the answer)")
    browse: bool = Field(default=False, description="browse the local index WebCPM-style instead of plain search")
    tools: SkipJsonSchema[list[AgentTool] | None] = Field(default=None, description="extra tools (Python)")
    client_tools: list[dict[str, Any]] | None = Field(
        default=None, description="OpenAI function specs the client runs: calling one pauses the run for its result"
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="sampling temperature (0: greedy)")
    max_tokens: int = Field(default=512, ge=1, le=16384, description="longest reply per step, in tokens")
    think: Literal["json", "free"] = Field(
        default="json",
        description="json: each step's thought is a short field of the constrained tool call; free: the step reasons "
        "in plain text first, then the tool call alone is constrained (as cot reasons before its answer); the plan "
        "and its refinements too are reasoned in plain text before their constrained form",
    )
    verify: bool = Field(
        default=False,
        description="before a subtask's claimed success is accepted, one tool call checks the evidence the task "
        "asked for (the file holds what was asked, the script runs and prints what it should); the subtask then "
        "submits again with what the check showed, and a failure goes to refinement",
    )
    workspace_root: str = Field(default="/workspace", description="the sandbox folder the run works in")


class ReActOptions(PlannerOptions):
    outer: bool = Field(default=False, description="ReAct has no outer loop")


class Planner(BaseStrategy[PlannerOptions]):
    """XAgent's dual loop, bounded: a plan of subtasks (outer loop), each solved by a chain of tool calls ending in
    ``submit`` (inner loop), the rest of the plan refined after each subtask, then a final answer.

    By default (``adaptive``) the inner loop first works on the whole task alone, and the plan is made only when
    that attempt fails, from what it learned. ``outer=False`` runs the inner loop alone on the whole task (the plain
    ReACT baseline). Extra tools (e.g. browsing) can be passed as :class:`AgentTool` objects. Limits may be given as
    a :class:`PlannerLimits` or as keyword arguments named like its fields.
    """

    name: ClassVar[str] = "planner"
    description: ClassVar[str] = "plan subtasks, solve each with tool calls, refine the plan; asks a human; resumable"
    Options: ClassVar[type[BaseModel]] = PlannerOptions
    resumable: ClassVar[bool] = True
    accepts_client_tools: ClassVar[bool] = True  # ``client_tools``: the API client runs them; the run waits
    asks_humans: ClassVar[bool] = True  # the ask_human tool, unless ``ask_human=False``

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        given = o.model_dump(include=set(PlannerLimits.model_fields), exclude_unset=True)
        try:  # a limits object, then the limit fields given one by one on top of it
            self.limits = PlannerLimits.model_validate({**(o.limits or PlannerLimits()).model_dump(), **given})
        except ValidationError as exc:
            raise InputError(f"invalid planner options: {describe_validation(exc.errors())}") from exc
        self.adaptive: bool = o.adaptive and o.outer
        # tools the API client runs itself (OpenAI function specs): calling one pauses the run for the result
        self.client_tools = [AgentTool(spec_from_function(f), "client") for f in o.client_tools or []]
        self._memory = InMemorySaver()  # used when the context names no checkpoint URL (one process only)
        self._inboxes: dict[str, Inbox] = {}

    # -- the public entry points --------------------------------------------------------------------------------

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        """Start a run. The stream ends with :class:`FinalAnswer`, or with :class:`NeedsHuman` when the run waits
        for a person: then call :meth:`resume` with the answer. ``task.metadata["files"]`` ({path: text}) are put
        into the sandbox's workspace before the first tool call."""
        run_id = ctx.run_id or uuid.uuid4().hex
        state: PlannerState = {
            "task": task.model_dump(mode="json"),
            "outer": self.options.outer,
            "adaptive": self.adaptive,
            "escalated": False,
            "counters": new_counters(),
            "results": {},
            "done_calls": {},
            "notes": [],
            "workspace": seed_workspace(task),
        }
        async for event in self._drive(state, run_id, ctx, fresh=True):
            yield event

    async def resume(self, run_id: str, answer: str | None, ctx: Context) -> AsyncIterator[Event]:
        """Go on with run ``run_id`` from its last checkpoint: with ``answer`` to the question it waits on, or with
        ``None`` after a crash (a run waiting on a person then repeats its question). A finished run just yields its
        final answer again; an unknown run raises :class:`NotFoundError`."""
        async for event in self._drive(None, run_id, ctx, fresh=False, answer=answer):
            yield event

    def suggest(self, run_id: str, text: str) -> None:
        """Send a suggestion to a run streaming in this process; it is taken at the next step."""
        self._inbox(run_id).suggest(text)

    def pause(self, run_id: str) -> None:
        """Ask a run streaming in this process to stop at its next step with a :class:`NeedsHuman` question."""
        self._inbox(run_id).pause()

    async def state(self, run_id: str, ctx: Context) -> dict[str, Any]:
        """The run's last checkpointed state (plan, results, counters, ...); empty if there is no such run."""
        async with self._saver(ctx) as saver:
            snapshot = await compiled(saver).aget_state(self._config(run_id))
            return dict(snapshot.values)

    # -- driving the graph ---------------------------------------------------------------------------------------

    def _inbox(self, run_id: str) -> Inbox:
        return self._inboxes.setdefault(run_id, Inbox())

    def _config(self, run_id: str) -> Any:
        return {"configurable": {"thread_id": run_id}, "recursion_limit": 6 * self.limits.max_llm_calls + 50}

    def _saver(self, ctx: Context) -> Any:
        if ctx.checkpointer is not None:  # the app's, shared by every run: lent, not closed
            return contextlib.nullcontext(ctx.checkpointer)
        if ctx.checkpoint_url:
            return open_checkpointer(ctx.checkpoint_url)
        return contextlib.nullcontext(self._memory)

    def _browser(self, ctx: Context, saved: dict[str, Any] | None) -> Any:
        """A WebCPM browser over the context's search engine, in the state the run left it (local documents; the
        SSRF-guarded fetcher for web pages is configured by ``ponder.search.build_browser``, not here)."""
        if not self.options.browse or ctx.search is None:
            return None
        from ponder.search import Browser, BrowserState

        state = BrowserState.model_validate(saved) if saved else None
        return Browser(ctx.search, screen_chars=self.limits.max_output_chars, state=state)

    def _tools(self, ctx: Context, browser: Any = None) -> list[AgentTool]:
        tools: list[AgentTool] = []
        if ctx.toolserver is not None:
            sandbox = [s for s in ctx.toolserver.tools if s.name not in HIDDEN_SANDBOX_TOOLS]
            tools.extend(AgentTool(s, "sandbox") for s in sandbox)
            if any(s.name == "files" for s in sandbox):
                tools.append(AgentTool(EDIT_FILE, "sandbox"))
        if browser is not None:
            tools.extend(browser_tools(browser))
        elif ctx.search is not None:
            tools.extend(search_tools(ctx.search, max_chars=self.limits.max_output_chars))
        if ctx.kb is not None:
            tools.extend(kb_tools(ctx.kb))
        tools.extend(self.options.tools or [])
        tools.extend(self.client_tools)
        if self.options.ask_human:
            tools.append(AgentTool(ASK_HUMAN, "control"))
        tools.append(AgentTool(SUBMIT, "control"))
        return tools

    async def _drive(
        self, state: PlannerState | None, run_id: str, ctx: Context, *, fresh: bool, answer: str | None = None
    ) -> AsyncIterator[Event]:
        check_supported(ctx.model, "json_schema")
        config = self._config(run_id)
        async with AsyncExitStack() as stack:
            saver = await stack.enter_async_context(self._saver(ctx))
            app = compiled(saver)
            snapshot = await app.aget_state(config)
            graph_input: Any = state
            if fresh and snapshot.values:
                raise Conflict(f"run {run_id!r} exists already", hint="resume it, or start it with a new run id")
            if not fresh:
                if not snapshot.values:
                    raise NotFoundError(f"no run {run_id!r} in the checkpoint store", hint="check the run id")
                if not snapshot.next and snapshot.values.get("final"):
                    yield _final(snapshot.values["final"])
                    return
                if snapshot.interrupts and answer is None:  # still waiting on a person: ask again
                    for intr in snapshot.interrupts:
                        yield _needs(intr)
                    return
                graph_input = Command(resume=answer) if snapshot.interrupts else None
            what = (
                "plan, then work through the subtasks with tools"
                if fresh
                else "continuing from the last checkpoint" + (" with your answer" if answer is not None else "")
            )
            yield StepStarted(name="start" if fresh else "resume", detail=f"{what} (run {run_id})")
            sandbox = (
                SandboxLink(ctx.toolserver, stack, root=self.options.workspace_root)
                if ctx.toolserver is not None
                else None
            )
            browser = self._browser(ctx, (state or snapshot.values).get("browser"))
            tools = self._tools(ctx, browser)
            if ctx.mcp_servers:  # connected for this segment of the run; their tools go before the control tools
                from ponder.tools._mcp import mcp_tools  # the MCP SDK is imported only when servers are configured

                connected, problems = await stack.enter_async_context(mcp_tools(ctx.mcp_servers))
                for problem in problems:
                    yield StepStarted(name="tools", detail=f"left out: {problem}")
                tools[-1:-1] = [AgentTool(t.spec, "mcp", t.run) for t in connected]
            deps = Deps(
                model=ctx.model,
                tools=tools,
                browser=browser,
                limits=self.limits,
                sandbox=sandbox,
                inbox=self._inbox(run_id),
                temperature=self.options.temperature,
                max_tokens=self.options.max_tokens,
                think=self.options.think,
                verify=self.options.verify,
            )
            try:
                async for mode, chunk in app.astream(
                    graph_input, config, context=deps, stream_mode=["custom", "updates"], durability="sync"
                ):
                    if mode == "custom":
                        yield cast(Event, chunk)
                    elif isinstance(chunk, dict) and "__interrupt__" in chunk:
                        for intr in chunk["__interrupt__"]:
                            yield _needs(intr)
            except GraphRecursionError:
                yield ErrorRaised(
                    error={"type": "StrategyError", "message": "the planner's graph ran past its step limit"},
                    fatal=True,
                )
                return
            final = (await app.aget_state(config)).values.get("final")
            if final:
                self._inboxes.pop(run_id, None)
                yield _final(final)


def _needs(intr: Any) -> NeedsHuman:
    """What a waiting run asks: a person's answer, or the client's result of one of its own tools."""
    value = intr.value if isinstance(intr.value, dict) else {}
    call = None
    if value.get("kind") == "tool_call":
        call = {"id": value["call_id"], "name": value["tool"], "arguments": value.get("args", {})}
    return NeedsHuman(question=str(value.get("question", "")), interrupt_id=intr.id, tool_call=call)


def _final(result: dict[str, Any]) -> FinalAnswer:
    return FinalAnswer(answer=result.get("answer"), text=str(result.get("text", "")), result=result)


class ReAct(Planner):
    """The planner's inner loop alone on the whole task (no outer plan, no refinement): the ReACT baseline."""

    name: ClassVar[str] = "react"
    description: ClassVar[str] = "ReACT: one chain of tool calls on the whole task, ending in submit; resumable"
    Options: ClassVar[type[BaseModel]] = ReActOptions
