"""The OpenAI-compatible endpoint: each strategy is a model (``ponder-cot``, ``ponder-cok``, ...).

The last user message is the question; earlier messages become the task's context. A chat completion is a run
like any other (listed, persisted, owned by the key), so its reasoning can be inspected later through
``/runs/{id}``. Streaming sends the reasoning as ``reasoning_content`` deltas (the field DeepSeek's API and most
clients read; vLLM 0.33 itself emits ``reasoning``) and the answer as ``content``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

import ponder.errors as errors
from ponder.agents import Task, TaskFamily
from ponder.api._deps import OwnerDep, ServiceDep
from ponder.api._schemas import ErrorBody
from ponder.api._store import RunRecord, RunStatus, StoredEvent
from ponder.errors import InputError, NotFoundError

router = APIRouter(prefix="/v1", tags=["openai"])

PREFIX = "ponder-"


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
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
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


@router.get("/models", response_model=ModelList, summary="The strategies, as models")
async def list_models(service: ServiceDep, _owner: OwnerDep) -> ModelList:
    return ModelList(
        data=[ModelCard(id=PREFIX + name, description=desc) for name, desc in service.catalog.names().items()]
    )


def _task(messages: list[ChatMessage], family: TaskFamily) -> Task:
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last_user is None or not messages[last_user].text().strip():
        raise InputError("the messages need a non-empty user message: it is the question")
    before = [f"{m.role}: {m.text()}" for m in messages[:last_user] if m.text().strip()]
    return Task(question=messages[last_user].text(), family=family, context="\n".join(before) or None)


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
    if not body.model.startswith(PREFIX) or body.model.removeprefix(PREFIX) not in service.catalog.names():
        raise NotFoundError(
            f"unknown model {body.model!r}",
            hint="choose one of: " + ", ".join(PREFIX + n for n in service.catalog.names()),
        )
    strategy = body.model.removeprefix(PREFIX)
    task = _task(body.messages, body.family)
    record = await service.runs.create(owner, strategy, task, _options(service, strategy, body), kind="chat")
    completion_id = "chatcmpl-" + record.id.removeprefix("run_")
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = _stream(service, record.id, completion_id, created, body.model, include_usage)
        return StreamingResponse(chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    await service.runs.wait(record.id)
    record = await service.runs.get(record.id, owner)
    if record.status in (RunStatus.failed, RunStatus.cancelled):
        error = dict(record.error or {"type": "StrategyError", "message": "the run failed"})
        error["run_id"] = record.id
        return JSONResponse({"error": error}, status_code=_error_status(record.error))
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": _content(record), "reasoning_content": _reasoning(record)},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(record),
        "ponder": {"run_id": record.id, "status": record.status.value, "answer": (record.result or {}).get("answer")},
    }


def _reasoning(record: RunRecord) -> str | None:
    details = (record.result or {}).get("details") or {}
    reasoning = details.get("reasoning")
    return str(reasoning) if reasoning else None


class _ReasoningText:
    """What of each event a person reading the reasoning wants to see, as text. A step's reasoning is sent once:
    as it streams (text deltas), or whole with its LLM call when it did not stream."""

    def __init__(self) -> None:
        self.streamed = False  # text deltas were sent since the last LLM call

    def __call__(self, event: dict[str, Any]) -> str:
        kind = event.get("type")
        if kind == "text_delta" and event.get("field") != "answer":
            self.streamed = True
            return str(event.get("text", ""))
        if kind == "llm_call":
            streamed, self.streamed = self.streamed, False
            if streamed:
                return "\n"
        return _reasoning_text(event)


def _reasoning_text(event: dict[str, Any]) -> str:
    """The part of an event a person reading the reasoning wants to see, as text."""
    kind = event.get("type")
    if kind == "text_delta" and event.get("field") != "answer":
        return str(event.get("text", ""))
    if kind == "step_started":
        detail = f": {event['detail']}" if event.get("detail") else ""
        return f"\n▸ {event.get('name')}{detail}\n"
    if kind == "llm_call" and isinstance(event.get("output"), dict) and event["output"].get("reasoning"):
        return str(event["output"]["reasoning"]) + "\n"
    if kind == "tool_call":
        return f"⚙ {event.get('tool')} {json.dumps(event.get('args', {}))[:500]}\n"
    if kind == "tool_result":
        return f"← {'ok' if event.get('ok') else 'error'} {str(event.get('output') or event.get('error'))[:500]}\n"
    if kind == "needs_human":
        return f"? {event.get('question')}\n"
    return ""


async def _stream(
    service: ServiceDep, run_id: str, completion_id: str, created: int, model: str, include_usage: bool
) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    reasoning_text = _ReasoningText()
    async for item in service.events.follow(run_id, 0):
        if isinstance(item, StoredEvent):
            event = json.loads(item.data)
            text = reasoning_text(event)
            if text:
                yield chunk({"reasoning_content": text})
            if event.get("type") == "error" and event.get("fatal"):
                yield chunk({"content": f"error: {event['error'].get('message')}"})
        elif item.status.finished or item.status is RunStatus.waiting:
            record = await service.store.get_run(run_id)
            if record is None:
                break
            if record.status is RunStatus.succeeded or record.status is RunStatus.waiting:
                yield chunk({"content": _content(record)})
            extra: dict[str, Any] = {"ponder": {"run_id": run_id, "status": record.status.value}}
            yield chunk({}, "stop", **extra)
            if include_usage:
                usage_chunk = {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": _usage(record),
                }
                yield f"data: {json.dumps(usage_chunk)}\n\n"
            break
    yield "data: [DONE]\n\n"
