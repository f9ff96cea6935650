"""``ponder-direct`` on ``/v1``: a client's chat goes straight to the backend model, with guarantees a plain model
server does not give a small model. ``response_format`` (json_schema / json_object) becomes constrained generation,
so the reply is valid by construction even on the embedded 1.5B model; ``tools`` become the union
:mod:`ponder.llm.tool_calling` builds (words, or one or more schema-valid calls: ``parallel_tool_calls``), returned
as OpenAI ``tool_calls``; the BFCL eval scores the same path. ``n``, ``logprobs``, ``top_logprobs``, ``seed``,
``stop``, ``temperature`` and ``top_p`` pass through.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse

from ponder.api.openai.protocol import (
    DIRECT,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Chunks,
    CompletionChoice,
    completion_envelope,
    logprobs_out,
    tool_calls_out,
    usage_of,
)
from ponder.errors import InputError
from ponder.llm import ChatModel, ChatRequest, ChatResponse, JsonSchemaConstraint, Message, stream_or_complete
from ponder.llm.tool_calling import (
    ChoiceMethod,
    ToolCall,
    ToolPlan,
    ToolSpec,
    complete_with_tools,
    parse_reply,
    tool_request_parts,
    written_calls,
)

PING_S = 15  # keep-alive comments on long streams, so proxies and clients do not time out a thinking run


def content_constraint(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema ``response_format`` asks the reply's content to follow (None: free text)."""
    if not response_format or response_format.get("type") in (None, "text"):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise InputError("response_format json_schema needs a schema object", hint="json_schema.schema")
        return schema
    raise InputError(f"response_format type {kind!r} is not text, json_object or json_schema")


def backend_messages(messages: list[Any]) -> list[Message]:
    """The client's conversation for the backend model: roles kept, tool calls and their results written out the
    way the model is asked to write them, image parts refused (the backends here read text)."""
    out: list[Message] = []
    for m in messages:
        if isinstance(m.content, list) and any(p.get("type") not in ("text", None) for p in m.content):
            kinds = sorted({str(p.get("type")) for p in m.content if p.get("type") != "text"})
            raise InputError(f"content parts of type {', '.join(kinds)} are not supported", hint="send text parts")
        role = "system" if m.role == "developer" else m.role
        text = m.text()
        calls = (m.model_extra or {}).get("tool_calls") or []
        if role == "assistant" and calls:
            made = [ToolCall(name=c["function"]["name"], arguments=_arguments(c["function"].get("arguments")))
                    for c in calls]  # fmt: skip
            text = "\n".join(filter(None, [text, written_calls(made)]))
        if role == "tool":
            call_id = (m.model_extra or {}).get("tool_call_id", "")
            out.append(Message(role="user", content=f"Tool result ({call_id}):\n{text}"))
            continue
        out.append(Message(role=role, content=text))
    return out


def _arguments(raw: Any) -> dict[str, Any]:
    """A past call's arguments as the client sent them back (a JSON string by OpenAI's format, an object by some)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {"_raw": raw}
    return raw if isinstance(raw, dict) else {"_value": raw}


async def build_request(
    body: ChatCompletionRequest, model: ChatModel, method: ChoiceMethod = "probe"
) -> tuple[ChatRequest, ToolPlan | None]:
    """The backend request for a ``ponder-direct`` chat, and its tool plan (None: no tools offered, or
    ``tool_choice`` none)."""
    tools = [ToolSpec.model_validate(t) for t in body.tools or []]
    content_schema = content_constraint(body.response_format)
    plan = await tool_request_parts(
        model,
        backend_messages(body.messages),
        tools,
        body.tool_choice,
        content_schema,
        parallel=body.parallel_tool_calls,
        method=method,
    )
    constraint = plan.constraint
    if constraint is None and content_schema is not None:
        name = str(((body.response_format or {}).get("json_schema") or {}).get("name") or "reply")
        constraint = JsonSchemaConstraint(json_schema=content_schema, name=name)
    options: dict[str, Any] = {
        "messages": plan.messages,
        "constraint": constraint,
        "n": body.n,
        "stop": [body.stop] if isinstance(body.stop, str) else list(body.stop or []),
        "logprobs": bool(body.logprobs),
        "top_logprobs": body.top_logprobs or 0,
        "seed": body.seed,
    }
    if body.temperature is not None:
        options["temperature"] = body.temperature
    if body.top_p is not None:
        options["top_p"] = body.top_p
    if body.completion_limit():
        options["max_tokens"] = body.completion_limit()
    return ChatRequest(**options), plan if plan.constraint is not None else None


def choice_message(text: str, finish: str, union: bool) -> tuple[AssistantMessage, str]:
    """An OpenAI ``message`` and ``finish_reason`` for one generated choice."""
    if not union or finish == "length":
        return AssistantMessage(content=text), finish
    reply = parse_reply(text)
    if not reply.calls:
        content = reply.content
        return AssistantMessage(content=content if isinstance(content, str) else json.dumps(content)), finish
    return AssistantMessage(tool_calls=tool_calls_out(reply.calls)), "tool_calls"


def completion(response: ChatResponse, union: bool, *, completion_id: str, created: int) -> ChatCompletion:
    choices = []
    for c in response.choices:
        message, finish = choice_message(c.text, c.finish_reason, union)
        choices.append(
            CompletionChoice(index=c.index, message=message, finish_reason=finish, logprobs=logprobs_out(c.logprobs))
        )
    return completion_envelope(completion_id, created, DIRECT, choices, usage_of(response.usage))


async def serve_direct(body: ChatCompletionRequest, model: ChatModel, method: ChoiceMethod) -> Any:
    """``ponder-direct``: the chat goes to the backend model as it is, its constraints enforced. ``model`` is the
    service's decorated model (traced, measured, budgeted)."""
    request, plan = await build_request(body, model, method)
    completion_id = "chatcmpl-" + secrets.token_hex(12)
    created = int(time.time())
    if not body.stream:
        response, union, _ = await complete_with_tools(model, request, plan)
        return completion(response, union, completion_id=completion_id, created=created)
    chunks = Chunks(completion_id, created, DIRECT)

    async def events() -> AsyncIterator[dict[str, str]]:
        response: ChatResponse | None = None
        if request.n == 1 and plan is None:  # text or structured content streams as it is generated
            yield chunks.delta(role="assistant", content="")
            async for piece in stream_or_complete(model, request):
                if piece.delta:
                    yield chunks.delta(content=piece.delta)
                if piece.response is not None:
                    response = piece.response
            assert response is not None
            yield chunks.delta(response.choices[0].finish_reason)
        else:  # a tool call is sent whole once it is valid (clients accumulate deltas either way)
            response, union, _ = await complete_with_tools(model, request, plan)
            for c in response.choices:
                message, finish = choice_message(c.text, c.finish_reason, union)
                calls = [{"index": i, **call.model_dump()} for i, call in enumerate(message.tool_calls or [])]
                yield chunks.delta(None, c.index, role="assistant", content=message.content, tool_calls=calls or None)
                yield chunks.delta(finish, c.index)
        if body.include_usage():
            yield chunks.usage(usage_of(response.usage))
        yield chunks.done()

    return EventSourceResponse(events(), ping=PING_S, headers={"Cache-Control": "no-cache"})
