"""The planner's graph state (plain JSON values, so any checkpointer stores it), its limits, and the runtime
dependencies handed to the nodes (never checkpointed)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from ponder.agents.planner._sandbox import SandboxLink
from ponder.agents.planner._tools import AgentTool
from ponder.llm import ChatModel, Costs


class PlannerLimits(BaseModel):
    """Bounds on a run. Plan-shape limits refuse the change that would exceed them; ``max_steps`` ends a subtask as
    failed; the budget limits (calls, tokens, seconds) end the run with an honest partial result."""

    model_config = ConfigDict(extra="forbid")

    max_depth: int = Field(default=3, ge=1, description="levels of the plan tree")
    max_width: int = Field(default=5, ge=1, description="subtasks per level")
    max_refinements: int = Field(default=4, ge=0, description="plan refinement rounds per run")
    max_steps: int = Field(default=5, ge=1, description="tool calls per subtask, the forced submit included")
    max_llm_calls: int = Field(default=60, ge=1)
    max_total_tokens: int = Field(default=200_000, ge=1, description="prompt plus completion tokens per run")
    max_seconds: float = Field(default=1800.0, gt=0, description="active seconds per run (not waiting for a human)")
    tool_retries: int = Field(default=2, ge=0, description="re-asks after a bad tool name or bad arguments")
    max_output_chars: int = Field(default=1500, ge=100, description="tool output shown to the model per step")
    history_steps: int = Field(default=4, ge=1, description="earlier steps of the subtask shown to the model")
    file_preview_chars: int = Field(
        default=0,
        ge=0,
        description="chars of workspace text files shown whole in the act prompt, in all (0: names only); on the "
        "embedded 1.5B model 1200 did not help (docs/results/planner)",
    )


class Counters(TypedDict):
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    refinements: int
    tool_calls: int
    failed_steps: int


def new_counters() -> Counters:
    return Counters(
        llm_calls=0, prompt_tokens=0, completion_tokens=0, seconds=0.0, refinements=0, tool_calls=0, failed_steps=0
    )


def add_costs(counters: Counters, costs: Costs, seconds: float) -> Counters:
    return Counters(
        llm_calls=counters["llm_calls"] + costs.llm_calls,
        prompt_tokens=counters["prompt_tokens"] + costs.prompt_tokens,
        completion_tokens=counters["completion_tokens"] + costs.completion_tokens,
        seconds=counters["seconds"] + seconds,
        refinements=counters["refinements"],
        tool_calls=counters["tool_calls"],
        failed_steps=counters["failed_steps"],
    )


class PlannerState(TypedDict, total=False):
    task: dict[str, Any]  # ponder.agents.Task
    outer: bool  # False: the plain ReACT baseline (one subtask, no refinement)
    adaptive: bool  # start as ReACT; plan only when that attempt fails (escalate)
    escalated: bool  # the first attempt failed and a plan was made from what it learned
    plan: dict[str, Any]  # Plan
    current: str | None  # id of the subtask being worked on
    steps: list[dict[str, Any]]  # this subtask's steps: {"call_id", "call", "result" | "error"}
    pending: dict[str, Any] | None  # the validated call ``act`` executes next
    done_calls: dict[str, dict[str, Any]]  # call_id -> result of every completed tool call (idempotent re-runs)
    results: dict[str, dict[str, Any]]  # subtask id -> SubmitResult
    submission: dict[str, Any] | None  # the last subtask's submission, for ``refine``
    suggestions: list[str]  # human suggestions not yet taken into account
    human: list[dict[str, str]]  # questions asked and answers given
    counters: Counters
    notes: list[str]  # limits reached, refused refinements: reported in the result
    stopped: str | None  # why the run ended early
    paused: bool  # a person asked the run to stop at the next step
    workspace: dict[str, dict[str, Any]]  # sandbox workspace snapshot: path -> {"sig", "b64"}
    browser: dict[str, Any] | None  # the WebCPM browser's state (ponder.search.BrowserState), when browsing
    final: dict[str, Any] | None  # StrategyResult, once finished
    verify: str | None  # a claimed success awaits its check: "check" (one tool call now), then "checked"


class Inbox:
    """Messages a person sends to a running plan: suggestions, taken at the next step, and pause requests, which
    stop the run at the next step with a question (answered with :meth:`Planner.resume`)."""

    def __init__(self) -> None:
        self._suggestions: list[str] = []
        self._pause = asyncio.Event()

    def suggest(self, text: str) -> None:
        self._suggestions.append(text)

    def pause(self) -> None:
        self._pause.set()

    def drain(self) -> list[str]:
        out, self._suggestions = self._suggestions, []
        return out

    def take_pause(self) -> bool:
        if self._pause.is_set():
            self._pause.clear()
            return True
        return False


@dataclass
class Deps:
    """What the nodes use besides the state; rebuilt on every run or resume, never checkpointed."""

    model: ChatModel
    tools: list[AgentTool]
    limits: PlannerLimits
    sandbox: SandboxLink | None = None
    browser: Any = None  # ponder.search.Browser, when the run browses
    inbox: Inbox = field(default_factory=Inbox)
    temperature: float = 0.0
    max_tokens: int = 512
    think: str = "json"  # "free": each step reasons in plain text first, then the call is constrained (issue 39)
    verify: bool = False  # a claimed success is checked by one tool call before it is accepted (issue 35)

    def tool(self, name: str) -> AgentTool | None:
        return next((t for t in self.tools if t.name == name), None)
