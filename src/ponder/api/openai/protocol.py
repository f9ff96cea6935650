"""The OpenAI chat-completions wire format as ponder speaks it: typed requests, responses, streamed chunks, usage and
tool calls (the shape vLLM's ``entrypoints/openai/protocol.py`` takes), so ``/docs`` describes every ``/v1`` answer
and every envelope is built in one place (:func:`completion_envelope`, :class:`Chunks`)."""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ponder.agents import TaskFamily
from ponder.llm import TokenLogprob, Usage
from ponder.llm.tool_calling import ToolCall

DIRECT = "ponder-direct"
PREFIX = "ponder-"


# ---- requests ----------------------------------------------------------------------------------------------------


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(examples=["ponder-cot"])
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, description="deprecated by OpenAI: max_completion_tokens")
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int = Field(default=1, ge=1, le=16, description="choices (ponder-direct; strategy models answer one)")
    stop: str | Annotated[list[str], Field(max_length=4)] | None = Field(default=None, description="at most 4")
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: dict[str, Any] | None = Field(default=None, description="text, json_object or json_schema")
    tools: list[dict[str, Any]] | None = Field(default=None, description="functions the model may call")
    tool_choice: str | dict[str, Any] | None = Field(default=None, description="none, auto, required or a function")
    parallel_tool_calls: bool = Field(default=True, description="several tool calls in one reply (ponder-direct)")
    family: TaskFamily = Field(default=TaskFamily.open, description="ponder extension: the answer type")
    ponder_options: dict[str, Any] = Field(default_factory=dict, description="ponder extension: strategy options")

    def completion_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


# ---- responses ---------------------------------------------------------------------------------------------------


class FunctionCall(BaseModel):
    name: str
    arguments: str = Field(description="a JSON object, as a string (OpenAI's form)")


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    reasoning_content: str | None = Field(default=None, description="a strategy's reasoning (DeepSeek's field)")
    tool_calls: list[ToolCallOut] | None = None


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class TokenLogprobOut(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobOut]


class CompletionChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str = "stop"
    logprobs: ChoiceLogprobs | None = None


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0


class CompletionUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None

    def __add__(self, other: CompletionUsage) -> CompletionUsage:
        return CompletionUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


class PonderInfo(BaseModel):
    """ponder's extension of a strategy model's answer: the run behind it (``GET /runs/{id}`` shows its reasoning)."""

    run_id: str
    status: str
    answer: Any = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage
    ponder: PonderInfo | None = None


class ChunkDelta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[dict[str, Any]] | None = Field(default=None, description="calls with their index in the reply")


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    ponder: PonderInfo | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "ponder"
    description: str = ""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# ---- builders ----------------------------------------------------------------------------------------------------


def usage_of(usage: Usage) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=usage.cached_tokens),
    )


def tool_calls_out(calls: list[ToolCall]) -> list[ToolCallOut]:
    """Calls as OpenAI ``tool_calls`` (fresh ids; arguments as a JSON string, as OpenAI sends them)."""
    return [
        ToolCallOut(
            id="call_" + secrets.token_hex(12),
            function=FunctionCall(name=c.name, arguments=json.dumps(c.arguments, ensure_ascii=False)),
        )
        for c in calls
    ]


def logprobs_out(items: list[TokenLogprob] | None) -> ChoiceLogprobs | None:
    if items is None:
        return None
    return ChoiceLogprobs(
        content=[
            TokenLogprobOut(
                token=i.token,
                logprob=i.logprob,
                bytes=list(i.token.encode()),
                top_logprobs=[TopLogprob(token=t, logprob=lp, bytes=list(t.encode())) for t, lp in i.top.items()],
            )
            for i in items
        ]
    )


def completion_envelope(
    completion_id: str,
    created: int,
    model: str,
    choices: list[CompletionChoice],
    usage: CompletionUsage,
    ponder: PonderInfo | None = None,
) -> ChatCompletion:
    """The one ``chat.completion`` envelope both paths answer with."""
    return ChatCompletion(id=completion_id, created=created, model=model, choices=choices, usage=usage, ponder=ponder)


class Chunks:
    """The ``chat.completion.chunk`` events of one streamed completion, as sse-starlette data items."""

    def __init__(self, completion_id: str, created: int, model: str) -> None:
        self.head = {"id": completion_id, "created": created, "model": model}

    def _event(self, chunk: ChatCompletionChunk) -> dict[str, str]:
        data = chunk.model_dump(mode="json", exclude_none=True)
        data["object"] = chunk.object
        for choice in data["choices"]:
            choice.setdefault("finish_reason", None)  # OpenAI sends it, null until the last chunk
        return {"data": json.dumps(data, separators=(",", ":"), ensure_ascii=False)}

    def delta(
        self, finish: str | None = None, index: int = 0, ponder: PonderInfo | None = None, **delta: Any
    ) -> dict[str, str]:
        choice = ChunkChoice(index=index, delta=ChunkDelta(**delta), finish_reason=finish)
        return self._event(ChatCompletionChunk(**self.head, choices=[choice], ponder=ponder))

    def usage(self, usage: CompletionUsage) -> dict[str, str]:
        return self._event(ChatCompletionChunk(**self.head, choices=[], usage=usage))

    @staticmethod
    def done() -> dict[str, str]:
        return {"data": "[DONE]"}
