"""The events every strategy streams: one typed union feeds SSE, the chat UI, the CLI and the batch runner."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter


class _Event(BaseModel):
    ts: float = Field(default_factory=time.time)


class StepStarted(_Event):
    type: Literal["step_started"] = "step_started"
    name: str
    detail: str = ""


class LLMCall(_Event):
    """A step of the strategy made of model calls (the calls since the previous LLMCall); ``group`` names the part
    of the run it belongs to (the planner's subtask), as on tool calls."""

    type: Literal["llm_call"] = "llm_call"
    purpose: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    output: Any = None
    group: str | None = None


class ModelProgress(_Event):
    """How far a model call that has run for a while has got: sent about once a second while it runs (calls that
    end sooner send none), then once with ``phase="done"``. ``call`` numbers the run's calls from 1."""

    type: Literal["progress"] = "progress"
    call: int
    phase: Literal["waiting", "reading", "writing", "done"]
    seconds: float
    prompt_tokens: int = 0
    prompt_done: int = 0
    tokens: int = 0
    tokens_per_s: float | None = None
    field: str | None = Field(default=None, description="the JSON field being written, for constrained output")


class ModelCalled(_Event):
    """One model call as the model saw it: the messages, the parameters, what came back (the prompt-level trace of a
    run; sent when the run records prompts)."""

    type: Literal["model_call"] = "model_call"
    call: int
    model: str
    messages: list[dict[str, str]]
    params: dict[str, Any] = Field(default_factory=dict)
    outputs: list[str] = Field(default_factory=list)
    finish_reasons: list[str] = Field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0
    error: str | None = None


class TextDelta(_Event):
    """A piece of streamed text (e.g. the reasoning of a chain of thought) as it is produced."""

    type: Literal["text_delta"] = "text_delta"
    field: str = "text"
    text: str


class ToolCalled(_Event):
    type: Literal["tool_call"] = "tool_call"
    call_id: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    group: str | None = Field(default=None, description="the step the call belongs to (the planner's subtask id)")


class ToolReturned(_Event):
    type: Literal["tool_result"] = "tool_result"
    call_id: str
    tool: str
    ok: bool
    output: Any = None
    error: str | None = None
    seconds: float = 0.0
    group: str | None = None


class EvidenceChecked(_Event):
    """Evidence triples and how well each is supported (Chain-of-Knowledge)."""

    type: Literal["evidence"] = "evidence"
    round: int = 0
    triples: list[dict[str, Any]] = Field(default_factory=list)
    factuality: float | None = None
    faithfulness: float | None = None


class PlanUpdated(_Event):
    type: Literal["plan"] = "plan"
    plan: dict[str, Any]
    change: str = ""
    outcomes: dict[str, str] = Field(
        default_factory=dict, description="what each finished subtask (by id) found, or why it failed"
    )


class TreeUpdated(_Event):
    """A search tree (MCTS) or a change to it, serialisable for drawing."""

    type: Literal["tree"] = "tree"
    tree: dict[str, Any]


class NeedsHuman(_Event):
    type: Literal["needs_human"] = "needs_human"
    question: str
    interrupt_id: str = ""
    tool_call: dict[str, Any] | None = Field(
        default=None, description="when the run waits for the client to run one of its tools: id, name, arguments"
    )


class FinalAnswer(_Event):
    type: Literal["final"] = "final"
    answer: Any
    text: str
    result: dict[str, Any] = Field(default_factory=dict)


class ErrorRaised(_Event):
    type: Literal["error"] = "error"
    error: dict[str, Any]
    fatal: bool = False


Event = Annotated[
    StepStarted
    | LLMCall
    | ModelProgress
    | ModelCalled
    | TextDelta
    | ToolCalled
    | ToolReturned
    | EvidenceChecked
    | PlanUpdated
    | TreeUpdated
    | NeedsHuman
    | FinalAnswer
    | ErrorRaised,
    Field(discriminator="type"),
]

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)
