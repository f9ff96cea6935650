"""The OpenAI-compatible endpoint: each strategy is a model (``ponder-cot``, ``ponder-cok``, ...).

The last user message is the question; the user and assistant turns before it reach the strategy's model as turns
(system messages as the question's context). A chat completion is a run
like any other (listed, persisted, owned by the key), so its reasoning can be inspected later through
``/runs/{id}``. Streaming sends the reasoning as ``reasoning_content`` deltas (the field DeepSeek's API and most
clients read; vLLM 0.33 itself emits ``reasoning``) and the answer as ``content``. With ``response_format`` the
answer is written in the client's JSON schema after the run (one constrained call: valid by construction).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

import ponder.errors as errors
from ponder.agents import (
    ErrorRaised,
    Event,
    LLMCall,
    NeedsHuman,
    StepStarted,
    Task,
    TaskFamily,
    TextDelta,
    ToolCalled,
    ToolReturned,
    Turn,
    event_adapter,
)
from ponder.api._deps import OwnerDep, ServiceDep
from ponder.api._direct import (
    DIRECT,
    Chunks,
    build_request,
    choice_message,
    completion,
    content_constraint,
    openai_tool_calls,
    openai_usage,
)
from ponder.api._metrics import MeasuredModel
from ponder.api._openai_errors import openai_error_of
from ponder.api._schemas import ErrorBody
from ponder.api._store import RunRecord, RunStatus, StoredEvent
from ponder.errors import InputError, NotFoundError
from ponder.llm import ChatRequest, ChatResponse, JsonSchemaConstraint, Message, stream_or_complete, system, user
from ponder.llm.tool_calling import ToolSpec, must_call, parse_reply, reply_schema, tool_messages

router = APIRouter(prefix="/v1", tags=["openai"])

PREFIX = "ponder-"
PING_S = 15  # keep-alive comments on long streams, so proxies and clients do not time out a thinking run


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


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "ponder"
    description: str = ""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def _cards(service: ServiceDep) -> list[ModelCard]:
    direct = ModelCard(
        id=DIRECT,
        description="the backend model itself: response_format and tools enforced by constrained generation, "
        "n, logprobs, seed, stop",
    )
    return [direct, *(ModelCard(id=PREFIX + name, description=d) for name, d in service.catalog.names().items())]


@router.get("/models", response_model=ModelList, summary="The strategies, as models; ponder-direct: the model itself")
async def list_models(service: ServiceDep, _owner: OwnerDep) -> ModelList:
    return ModelList(data=_cards(service))


@router.get("/models/{model_id}", response_model=ModelCard, summary="One model")
async def get_model(model_id: str, service: ServiceDep, _owner: OwnerDep) -> ModelCard:
    for card in _cards(service):
        if card.id == model_id:
            return card
    raise NotFoundError(f"unknown model {model_id!r}", hint="GET /v1/models lists them")


def _task(messages: list[ChatMessage], family: TaskFamily) -> Task:
    """The last user message is the question; the user and assistant turns before it are the conversation the
    strategy's model reads as turns; system and developer messages are the question's context (instructions)."""
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last_user is None or not messages[last_user].text().strip():
        raise InputError("the messages need a non-empty user message: it is the question")
    earlier = messages[:last_user]
    turns = [
        Turn(role=m.role, content=m.text()) for m in earlier if m.role in ("user", "assistant") and m.text().strip()
    ]
    instructions = [m.text() for m in earlier if m.role in ("system", "developer") and m.text().strip()]
    return Task(
        question=messages[last_user].text(),
        family=family,
        context="\n".join(instructions) or None,
        conversation=turns,
    )


def _options(service: ServiceDep, strategy: str, body: ChatCompletionRequest) -> dict[str, Any]:
    options = dict(body.ponder_options)
    accepted = service.catalog.options_model(strategy).model_fields
    max_tokens = body.max_completion_tokens or body.max_tokens
    if body.temperature is not None and "temperature" in accepted:
        options.setdefault("temperature", body.temperature)
    if max_tokens is not None and "max_tokens" in accepted:
        options.setdefault("max_tokens", max_tokens)
    return options


def _usage(record: RunRecord) -> dict[str, int]:
    costs = record.costs or {}
    prompt, completion = int(costs.get("prompt_tokens", 0)), int(costs.get("completion_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _error_status(error: dict[str, Any] | None) -> int:
    cls = getattr(errors, str((error or {}).get("type", "")), None)
    if isinstance(cls, type) and issubclass(cls, errors.PonderError):
        return cls.status_code
    return 500


def _content(record: RunRecord) -> str:
    if record.status is RunStatus.succeeded:
        return str((record.result or {}).get("text", ""))
    if record.status is RunStatus.waiting:
        return str((record.pending or {}).get("question", ""))
    return ""


@router.post(
    "/chat/completions",
    summary="Chat completion by a strategy",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "a completion, or chunks when streaming"},
        404: {"model": ErrorBody},
    },
)
async def chat_completions(body: ChatCompletionRequest, service: ServiceDep, owner: OwnerDep) -> Any:
    if body.model == DIRECT:
        return await _direct(body, service)
    if not body.model.startswith(PREFIX) or body.model.removeprefix(PREFIX) not in service.catalog.names():
        raise NotFoundError(
            f"unknown model {body.model!r}",
            hint="choose one of: " + ", ".join(c.id for c in _cards(service)),
        )
    strategy = body.model.removeprefix(PREFIX)
    takes_tools = bool(getattr(service.catalog.strategy_class(strategy), "accepts_client_tools", False))
    _strategy_fields_only(body, takes_tools)
    after = 0
    resumed = _tool_results(body.messages)
    if resumed is not None:  # the client's result of a tool the run called: the same run goes on
        run_id, result = resumed
        record = await service.runs.get(run_id, owner)
        pending = record.pending or {}
        if record.status is not RunStatus.waiting or not pending.get("tool_call"):
            raise errors.Conflict(
                f"run {run_id!r} is {record.status.value}, not waiting for a tool result",
                hint="send a tool message only in answer to the last tool_calls reply",
            )
        after = await service.store.last_seq(run_id)
        await service.runs.answer(run_id, owner, result, pending.get("interrupt_id") or None)
    else:
        task = _task(body.messages, body.family)
        options = _options(service, strategy, body)
        if body.tools and takes_tools:
            options["client_tools"] = body.tools
        record = await service.runs.create(owner, strategy, task, options, kind="chat")
    completion_id = "chatcmpl-" + record.id.removeprefix("run_")
    created = int(time.time())
    if body.stream:
        chunks = _stream(service, owner, record.id, completion_id, created, body, takes_tools, after)
        return EventSourceResponse(chunks, ping=PING_S, headers={"Cache-Control": "no-cache"})
    await service.runs.wait(record.id)
    record = await service.runs.get(record.id, owner)
    if record.status in (RunStatus.failed, RunStatus.cancelled):
        error = dict(record.error or {"type": "StrategyError", "message": "the run failed"})
        error["run_id"] = record.id
        status = _error_status(record.error)
        return JSONResponse({"error": openai_error_of(status, error)}, status_code=status)
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": _content(record),
        "reasoning_content": _reasoning(record),
    }
    usage = _usage(record)
    calls = _tool_calls(record)
    if calls:
        reply.update(content=None, tool_calls=calls)
    elif record.status is RunStatus.succeeded and _output_tool(body, takes_tools):
        calls, extra = await _as_tool_call(service, record, body)
        reply.update(content=None, tool_calls=calls)
        usage = _add_usage(usage, extra)
    elif record.status is RunStatus.succeeded and _structured(body):
        reply["content"], extra = await _as_json(service, record, body)
        usage = _add_usage(usage, extra)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [{"index": 0, "message": reply, "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": usage,
        "ponder": {"run_id": record.id, "status": record.status.value, "answer": (record.result or {}).get("answer")},
    }


FORMAT_SYSTEM = (
    "You write an answer that was already worked out as a JSON object that follows the given schema. Keep the "
    "answer's content exactly; only its form changes. Fill fields the answer does not give with empty values."
)


async def _write_answer(
    service: ServiceDep, record: RunRecord, body: ChatCompletionRequest, messages: list[Message], constraint: Any
) -> tuple[str, dict[str, int]]:
    """One constrained call of the backend model after the run that writes the strategy's answer in the form the
    client asked for (valid by construction); the strategy's reasoning and typed answer stay as they were."""
    request = ChatRequest(
        messages=messages,
        constraint=constraint,
        temperature=0.0,
        max_tokens=body.max_completion_tokens or body.max_tokens or 512,
    )
    response = await MeasuredModel(service.context.model, service.metrics, record.strategy).complete(request)
    if response.choices[0].finish_reason == "length":
        raise errors.OutputTruncated(
            "the answer, written as JSON, ran past max_completion_tokens",
            hint="raise max_completion_tokens",
            raw=response.text,
        )
    return response.text, openai_usage(response.usage)


def _answer_prompt(record: RunRecord, ask: str) -> list[Message]:
    """The question, the client's instructions (they may say how the JSON is shaped: instructor's JSON mode puts
    the schema there) and the strategy's answer."""
    question = str(record.task.get("question", ""))
    answer = str((record.result or {}).get("text", ""))
    context = record.task.get("context")
    instructions = f"Instructions:\n{context}\n\n" if context else ""
    return [system(FORMAT_SYSTEM), user(f"{instructions}Question:\n{question}\n\nAnswer:\n{answer}\n\n{ask}")]


async def _as_json(service: ServiceDep, record: RunRecord, body: ChatCompletionRequest) -> tuple[str, dict[str, int]]:
    """The run's answer written as the JSON ``response_format`` asks for. Returns the JSON text and the usage."""
    schema = content_constraint(body.response_format)
    assert schema is not None
    name = str(((body.response_format or {}).get("json_schema") or {}).get("name") or "answer")
    messages = _answer_prompt(record, "Write this answer as a JSON object.")
    return await _write_answer(service, record, body, messages, JsonSchemaConstraint(json_schema=schema, name=name))


async def _as_tool_call(
    service: ServiceDep, record: RunRecord, body: ChatCompletionRequest
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The run's answer as a call of the client's output tool: how pydantic-ai, instructor and the OpenAI Agents
    SDK ask for structured output (a tool, ``tool_choice`` required or named). One call, constrained to the
    offered tools' schemas, as ``response_format`` is."""
    tools = [ToolSpec.model_validate(t) for t in body.tools or []]
    messages = _answer_prompt(record, "Call the tool with this answer as its arguments.")
    messages, constraint = tool_messages(messages, tools, body.tool_choice, None, parallel=False)
    text, usage = await _write_answer(service, record, body, messages, constraint)
    return openai_tool_calls(parse_reply(text).calls), usage


def _output_tool(body: ChatCompletionRequest, takes_tools: bool) -> bool:
    """The client's tools are an output format, not actions: the strategy cannot act with them and the client
    requires a call."""
    return bool(body.tools) and not takes_tools and must_call(body.tool_choice)


def _add_usage(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}


def _structured(body: ChatCompletionRequest) -> bool:
    return content_constraint(body.response_format) is not None


_CALL_ID = re.compile(r"^call__(run_[0-9a-f]+)__")


def _tool_calls(record: RunRecord) -> list[dict[str, Any]]:
    """The client tool a waiting run called, as OpenAI ``tool_calls`` (its id names the run, to resume it)."""
    call = (record.pending or {}).get("tool_call") if record.status is RunStatus.waiting else None
    if not call:
        return []
    step = re.sub(r"[^A-Za-z0-9]", "-", str(call.get("id", "")))
    return [
        {
            "id": f"call__{record.id}__{step}",
            "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments") or {})},
        }
    ]


def _tool_results(messages: list[ChatMessage]) -> tuple[str, str] | None:
    """(run id, the tool's result) when the conversation ends with the result of a tool a ponder run called."""
    if not messages or messages[-1].role != "tool":
        return None
    call_id = str((messages[-1].model_extra or {}).get("tool_call_id", ""))
    match = _CALL_ID.match(call_id)
    if match is None:
        raise InputError(
            f"tool_call_id {call_id!r} names no tool call of a ponder run",
            hint="send the tool message in answer to a tool_calls reply of this endpoint, with its id unchanged",
        )
    return match.group(1), messages[-1].text()


def _strategy_fields_only(body: ChatCompletionRequest, takes_tools: bool) -> None:
    """What a strategy model cannot honour yet is refused, not silently ignored (a malformed response_format or
    output tool too, before the run starts)."""
    content_constraint(body.response_format)
    if _output_tool(body, takes_tools):
        reply_schema([ToolSpec.model_validate(t) for t in body.tools or []], body.tool_choice, None)
    unsupported = [
        name
        for name, given in (
            ("tools with tool_choice auto", bool(body.tools) and not takes_tools and not must_call(body.tool_choice)),
            ("n > 1", body.n > 1),
            ("logprobs", body.logprobs),
        )
        if given
    ]
    if unsupported:
        raise InputError(
            f"{body.model} does not take {', '.join(unsupported)}",
            hint=f"{DIRECT} does (the backend model with constrained tools and structured output); strategy models "
            "answer through an output tool when tool_choice is required or names it, through response_format, or "
            "in the family ponder extension's type",
        )


async def _direct(body: ChatCompletionRequest, service: ServiceDep) -> Any:
    """``ponder-direct``: the chat goes to the backend model as it is, its constraints enforced."""
    model = MeasuredModel(service.context.model, service.metrics, "direct")
    request, union, probe_usage = await build_request(body, model, service.settings.llm.tool_choice.value)
    completion_id = "chatcmpl-" + secrets.token_hex(12)
    created = int(time.time())
    if not body.stream:
        response = await model.complete(request)
        return completion(response, union, completion_id=completion_id, created=created, extra_usage=probe_usage)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    chunk = Chunks(completion_id, created, DIRECT).delta

    async def events() -> AsyncIterator[dict[str, str]]:
        response: ChatResponse | None = None
        if request.n == 1 and not union:  # text or structured content streams as it is generated
            yield chunk({"role": "assistant", "content": ""})
            async for piece in stream_or_complete(model, request):
                if piece.delta:
                    yield chunk({"content": piece.delta})
                if piece.response is not None:
                    response = piece.response
            assert response is not None
            yield chunk({}, response.choices[0].finish_reason)
        else:  # a tool call is sent whole once it is valid (clients accumulate deltas either way)
            response = await model.complete(request)
            for c in response.choices:
                message, finish = choice_message(c.text, c.finish_reason, union)
                delta: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
                if "tool_calls" in message:
                    delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
                yield chunk(delta, None, c.index)
                yield chunk({}, finish, c.index)
        if include_usage:
            usage = response.usage + probe_usage if probe_usage else response.usage
            yield Chunks(completion_id, created, DIRECT).usage(openai_usage(usage))
        yield {"data": "[DONE]"}

    return EventSourceResponse(events(), ping=PING_S, headers={"Cache-Control": "no-cache"})


def _reasoning(record: RunRecord) -> str | None:
    """The reasoning every strategy's result carries (its chain, winning sample, program, search path or subtask
    conclusions)."""
    reasoning = (record.result or {}).get("reasoning")
    return str(reasoning) if reasoning else None


class _ReasoningText:
    """What of each event a person reading the reasoning wants to see, as text. A step's reasoning is sent once:
    as it streams (text deltas), or whole with its LLM call when it did not stream."""

    def __init__(self) -> None:
        self.streamed = False  # text deltas were sent since the last LLM call

    def __call__(self, event: Event) -> str:
        match event:
            case TextDelta(field=field, text=text) if field != "answer":
                self.streamed = True
                return text
            case StepStarted(name=name, detail=detail):
                return f"\n▸ {name}" + (f": {detail}" if detail else "") + "\n"
            case LLMCall(output=output):
                streamed, self.streamed = self.streamed, False
                if streamed:
                    return "\n"
                reasoning = output.get("reasoning") if isinstance(output, dict) else None
                return f"{reasoning}\n" if reasoning else ""
            case ToolCalled(tool=tool, args=args):
                return f"⚙ {tool} {json.dumps(args)[:500]}\n"
            case ToolReturned(ok=ok, output=output, error=error):
                return f"← {'ok' if ok else 'error'} {str(output or error)[:500]}\n"
            case NeedsHuman(question=question):
                return f"? {question}\n"
        return ""


async def _stream(
    service: ServiceDep,
    owner: str,
    run_id: str,
    completion_id: str,
    created: int,
    body: ChatCompletionRequest,
    takes_tools: bool,
    after: int = 0,
) -> AsyncIterator[dict[str, str]]:
    """The run's reasoning and answer as chunks; a client that goes away before the end cancels the run (nobody
    would read its answer)."""
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    chunks = Chunks(completion_id, created, body.model)
    chunk = chunks.delta
    ended = False
    try:
        yield chunk({"role": "assistant", "content": ""})
        reasoning_text = _ReasoningText()
        async for item in service.events.follow(run_id, after):
            if isinstance(item, StoredEvent):
                event = event_adapter.validate_json(item.data)
                text = reasoning_text(event)
                if text:
                    yield chunk({"reasoning_content": text})
                if isinstance(event, ErrorRaised) and event.fatal:
                    yield chunk({"content": f"error: {event.error.get('message')}"})
            elif item.status.finished or item.status is RunStatus.waiting:
                ended = True
                record = await service.store.get_run(run_id)
                if record is None:
                    break
                calls = _tool_calls(record)
                usage = _usage(record)
                if not calls and record.status is RunStatus.succeeded and _output_tool(body, takes_tools):
                    calls, formatting = await _as_tool_call(service, record, body)
                    usage = _add_usage(usage, formatting)
                if calls:
                    yield chunk({"tool_calls": [{"index": i, **c} for i, c in enumerate(calls)]})
                elif record.status is RunStatus.succeeded and _structured(body):
                    content, formatting = await _as_json(service, record, body)
                    usage = _add_usage(usage, formatting)
                    yield chunk({"content": content})
                elif record.status is RunStatus.succeeded or record.status is RunStatus.waiting:
                    yield chunk({"content": _content(record)})
                extra: dict[str, Any] = {"ponder": {"run_id": run_id, "status": record.status.value}}
                yield chunk({}, "tool_calls" if calls else "stop", **extra)
                if include_usage:
                    yield chunks.usage(usage)
                break
        yield {"data": "[DONE]"}
    finally:
        if not ended:  # the client disconnected mid-run (sse-starlette closed this generator)
            with contextlib.suppress(errors.PonderError):
                await asyncio.shield(service.runs.cancel(run_id, owner))
