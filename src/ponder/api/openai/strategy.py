"""A strategy model (``ponder-cot``, ``ponder-planner``, ...) on ``/v1``: each chat completion is a run like any other
(listed, persisted, owned by the key), so its reasoning can be inspected later through ``/runs/{id}``.

The last user message is the question; the user and assistant turns before it reach the strategy's model as turns
(system messages as the question's context). The answer is written in the form the client asks for after the run
(:mod:`ponder.api.openai.answer`); strategies that act with client tools (react, planner) end a reply with
``tool_calls`` and resume the same durable run on the ``tool`` message.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

import ponder.errors as errors
from ponder.agents import Task, TaskFamily, Turn
from ponder.api._deps import ServiceDep
from ponder.api._openai_errors import openai_error_of
from ponder.api._record import ErrorInfo, RunStatus
from ponder.api.openai.answer import check_output_forms, final_answer, output_tool, reasoning, resumed_run
from ponder.api.openai.chunks import stream_run
from ponder.api.openai.direct import PING_S
from ponder.api.openai.protocol import (
    DIRECT,
    AssistantMessage,
    ChatCompletionRequest,
    ChatMessage,
    Chunks,
    CompletionChoice,
    PonderInfo,
    completion_envelope,
)
from ponder.errors import InputError


def conversation_task(messages: list[ChatMessage], family: TaskFamily) -> Task:
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
    if body.temperature is not None and "temperature" in accepted:
        options.setdefault("temperature", body.temperature)
    if body.completion_limit() is not None and "max_tokens" in accepted:
        options.setdefault("max_tokens", body.completion_limit())
    return options


def _error_status(error: ErrorInfo) -> int:
    cls = getattr(errors, error.type, None)
    if isinstance(cls, type) and issubclass(cls, errors.PonderError):
        return cls.status_code
    return 500


def _strategy_fields_only(body: ChatCompletionRequest, takes_tools: bool) -> None:
    """What a strategy model cannot honour yet is refused, not silently ignored (a malformed response_format or
    output tool too, before the run starts)."""
    check_output_forms(body, takes_tools)
    acted_with = bool(body.tools) and not takes_tools and not output_tool(body, takes_tools)
    unsupported = [
        name
        for name, given in (
            ("tools with tool_choice auto", acted_with),
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


async def serve_strategy(body: ChatCompletionRequest, strategy: str, service: ServiceDep, owner: str) -> Any:
    takes_tools = service.catalog.strategy_class(strategy).accepts_client_tools
    _strategy_fields_only(body, takes_tools)
    after = 0
    resumed = resumed_run(body.messages)
    if resumed is not None:  # the client's result of a tool the run called: the same run goes on
        run_id, result = resumed
        record = await service.runs.get(run_id, owner)
        pending = record.pending
        if record.status is not RunStatus.waiting or pending is None or not pending.tool_call:
            raise errors.Conflict(
                f"run {run_id!r} is {record.status.value}, not waiting for a tool result",
                hint="send a tool message only in answer to the last tool_calls reply",
            )
        after = await service.store.last_seq(run_id)
        await service.runs.answer(run_id, owner, result, pending.interrupt_id or None)
    else:
        options = _options(service, strategy, body)
        if body.tools and takes_tools:
            options["client_tools"] = body.tools
        task = conversation_task(body.messages, body.family)
        record = await service.runs.create(owner, strategy, task, options, kind="chat")
    completion_id = "chatcmpl-" + record.id.removeprefix("run_")
    created = int(time.time())
    if body.stream:
        chunks = Chunks(completion_id, created, body.model)
        events = stream_run(service, owner, record.id, chunks, body, takes_tools, after)
        return EventSourceResponse(events, ping=PING_S, headers={"Cache-Control": "no-cache"})
    await service.runs.wait(record.id)
    record = await service.runs.get(record.id, owner)
    if record.status in (RunStatus.failed, RunStatus.cancelled):
        failure = record.error or ErrorInfo.of(errors.StrategyError("the run failed"))
        error: dict[str, Any] = {**failure.model_dump(), "run_id": record.id}
        status = _error_status(failure)
        return JSONResponse({"error": openai_error_of(status, error)}, status_code=status)
    answer = await final_answer(service, record, body, takes_tools)
    message = AssistantMessage(
        content=answer.content, reasoning_content=reasoning(record), tool_calls=answer.tool_calls
    )
    done = record.strategy_result
    info = PonderInfo(run_id=record.id, status=record.status.value, answer=done.answer if done else None)
    choice = CompletionChoice(message=message, finish_reason=answer.finish)
    return completion_envelope(completion_id, created, body.model, [choice], answer.usage, ponder=info)
