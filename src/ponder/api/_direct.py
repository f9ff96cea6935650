"""``ponder-direct`` on ``/v1``: a client's chat goes straight to the backend model, with guarantees a plain model
server does not give a small model. ``response_format`` (json_schema / json_object) becomes constrained generation,
so the reply is valid by construction even on the embedded 1.5B model; ``tools`` become a constrained choice
between a text reply and a call of one of the given tools with schema-valid arguments, returned as OpenAI
``tool_calls``. ``n``, ``logprobs``, ``top_logprobs``, ``seed``, ``stop``, ``temperature`` and ``top_p`` pass through.

The reply of a tool-enabled request is the union :mod:`ponder.llm.tool_calling` builds (text, or one or more calls:
``parallel_tool_calls``), so a malformed call cannot come back; the BFCL eval scores the same path.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from ponder.errors import InputError
from ponder.llm import ChatModel, ChatRequest, ChatResponse, JsonSchemaConstraint, Message, TokenLogprob, Usage
from ponder.llm.tool_calling import (
    ChoiceMethod,
    ToolCall,
    ToolSpec,
    parse_reply,
    tool_request_parts,
    written_calls,
)

DIRECT = "ponder-direct"


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
    body: Any, model: ChatModel, method: ChoiceMethod = "probe"
) -> tuple[ChatRequest, bool, Usage | None]:
    """The backend request for a ``ponder-direct`` chat, whether its reply is the tool union, and the usage of the
    name probe that decided a ``tool_choice`` auto (None when none ran)."""
    tools = [ToolSpec.model_validate(t) for t in body.tools or []]
    content_schema = content_constraint(body.response_format)
    messages, constraint, probe_usage = await tool_request_parts(
        model,
        backend_messages(body.messages),
        tools,
        body.tool_choice,
        content_schema,
        parallel=body.parallel_tool_calls,
        method=method,
    )
    union = constraint is not None
    if constraint is None and content_schema is not None:
        name = str(((body.response_format or {}).get("json_schema") or {}).get("name") or "reply")
        constraint = JsonSchemaConstraint(json_schema=content_schema, name=name)
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    options: dict[str, Any] = {
        "messages": messages,
        "constraint": constraint,
        "n": body.n,
        "stop": stop,
        "logprobs": bool(body.logprobs),
        "top_logprobs": body.top_logprobs or 0,
        "seed": body.seed,
    }
    if body.temperature is not None:
        options["temperature"] = body.temperature
    if body.top_p is not None:
        options["top_p"] = body.top_p
    if body.max_completion_tokens or body.max_tokens:
        options["max_tokens"] = body.max_completion_tokens or body.max_tokens
    return ChatRequest(**options), union, probe_usage


def openai_tool_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """Calls as OpenAI ``tool_calls`` (fresh ids; arguments as a JSON string, as OpenAI sends them)."""
    return [
        {
            "id": "call_" + secrets.token_hex(12),
            "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)},
        }
        for c in calls
    ]


def choice_message(text: str, finish: str, union: bool) -> tuple[dict[str, Any], str]:
    """An OpenAI ``message`` and ``finish_reason`` for one generated choice."""
    if not union or finish == "length":
        return {"role": "assistant", "content": text}, finish
    reply = parse_reply(text)
    if not reply.calls:
        content = reply.content
        return {"role": "assistant", "content": content if isinstance(content, str) else json.dumps(content)}, finish
    return {"role": "assistant", "content": None, "tool_calls": openai_tool_calls(reply.calls)}, "tool_calls"


def openai_logprobs(items: list[TokenLogprob] | None) -> dict[str, Any] | None:
    if items is None:
        return None
    return {
        "content": [
            {
                "token": i.token,
                "logprob": i.logprob,
                "bytes": list(i.token.encode()),
                "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in i.top.items()],
            }
            for i in items
        ]
    }


def openai_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


class Chunks:
    """The ``chat.completion.chunk`` events of one streamed completion, as sse-starlette data items."""

    def __init__(self, completion_id: str, created: int, model: str) -> None:
        self.head = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}

    def delta(self, delta: dict[str, Any], finish: str | None = None, index: int = 0, **extra: Any) -> dict[str, str]:
        choice = {"index": index, "delta": delta, "finish_reason": finish}
        return {"data": json.dumps({**self.head, "choices": [choice], **extra}, separators=(",", ":"))}

    def usage(self, usage: dict[str, Any]) -> dict[str, str]:
        return {"data": json.dumps({**self.head, "choices": [], "usage": usage}, separators=(",", ":"))}


def completion(
    response: ChatResponse, union: bool, *, completion_id: str, created: int, extra_usage: Usage | None = None
) -> dict[str, Any]:
    choices = []
    for c in response.choices:
        message, finish = choice_message(c.text, c.finish_reason, union)
        choices.append(
            {"index": c.index, "message": message, "finish_reason": finish, "logprobs": openai_logprobs(c.logprobs)}
        )
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": DIRECT,
        "choices": choices,
        "usage": openai_usage(response.usage + extra_usage if extra_usage else response.usage),
    }
