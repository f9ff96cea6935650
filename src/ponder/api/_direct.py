"""``ponder-direct`` on ``/v1``: a client's chat goes straight to the backend model, with guarantees a plain model
server does not give a small model. ``response_format`` (json_schema / json_object) becomes constrained generation,
so the reply is valid by construction even on the embedded 1.5B model; ``tools`` become a constrained choice
between a text reply and a call of one of the given tools with schema-valid arguments, returned as OpenAI
``tool_calls``. ``n``, ``logprobs``, ``top_logprobs``, ``seed``, ``stop``, ``temperature`` and ``top_p`` pass through.

The reply of a tool-enabled request is one JSON object, ``{"type": "message", "content": ...}`` or
``{"type": "tool_call", "name": ..., "arguments": {...}}``: the union's branches are the JSON schema that
constrains generation, so a malformed call cannot come back.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ponder.errors import InputError
from ponder.llm import ChatRequest, ChatResponse, JsonSchemaConstraint, Message, TokenLogprob, Usage

DIRECT = "ponder-direct"


class FunctionSpec(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ToolSpec(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = "function"
    function: FunctionSpec


def _choice_name(tool_choice: Any) -> str | None:
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        if not isinstance(name, str):
            raise InputError("tool_choice names no function", hint='use {"type": "function", "function": {"name": N}}')
        return name
    return None


def reply_schema(
    tools: list[ToolSpec], tool_choice: Any, content_schema: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The JSON schema of a reply that may call ``tools`` (None: no tools offered, a plain reply)."""
    if not tools or tool_choice == "none":
        return None
    if tool_choice not in (None, "auto", "required") and not isinstance(tool_choice, dict):
        raise InputError(f"tool_choice {tool_choice!r} is not one of none, auto, required or a named function")
    named = _choice_name(tool_choice)
    offered = [t for t in tools if named is None or t.function.name == named]
    if not offered:
        raise InputError(f"tool_choice names {named!r}, which is not among the tools")
    branches: list[dict[str, Any]] = []
    if tool_choice in (None, "auto"):
        content = content_schema if content_schema is not None else {"type": "string"}
        branches.append(_object({"type": {"const": "message"}, "content": content}))
    for tool in offered:
        params = tool.function.parameters or {"type": "object", "properties": {}}
        branches.append(
            _object({"type": {"const": "tool_call"}, "name": {"const": tool.function.name}, "arguments": params})
        )
    return branches[0] if len(branches) == 1 else {"anyOf": branches}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def tools_prompt(tools: list[ToolSpec], tool_choice: Any) -> str:
    """What the model reads about the tools and the reply format (the schema enforces the format anyway)."""
    lines = ["You can call these tools:"]
    for tool in tools:
        fn = tool.function
        lines.append(f"- {fn.name}: {fn.description or '(no description)'}; arguments: {json.dumps(fn.parameters)}")
    must = "You must call a tool. " if tool_choice == "required" or isinstance(tool_choice, dict) else ""
    lines.append(
        f"{must}Reply with one JSON object: to call a tool, "
        '{"type": "tool_call", "name": <tool>, "arguments": {...}}; to answer in words, '
        '{"type": "message", "content": <your answer>}. Call a tool when it gives you something you need; '
        "answer once the tool results you have are enough."
    )
    return "\n".join(lines)


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
            written = [
                json.dumps({"type": "tool_call", "name": c["function"]["name"],
                            "arguments": _arguments(c["function"].get("arguments"))})
                for c in calls
            ]  # fmt: skip
            text = "\n".join(filter(None, [text, *written]))
        if role == "tool":
            call_id = (m.model_extra or {}).get("tool_call_id", "")
            out.append(Message(role="user", content=f"Tool result ({call_id}):\n{text}"))
            continue
        out.append(Message(role=role, content=text))
    return out


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def build_request(body: Any) -> tuple[ChatRequest, bool]:
    """The backend request for a ``ponder-direct`` chat, and whether its reply is the tool union."""
    tools = [ToolSpec.model_validate(t) for t in body.tools or []]
    content_schema = content_constraint(body.response_format)
    union = reply_schema(tools, body.tool_choice, content_schema)
    messages = backend_messages(body.messages)
    if union is not None:
        messages.insert(0, Message(role="system", content=tools_prompt(tools, body.tool_choice)))
        constraint: JsonSchemaConstraint | None = JsonSchemaConstraint(json_schema=union, name="reply")
    elif content_schema is not None:
        name = str(((body.response_format or {}).get("json_schema") or {}).get("name") or "reply")
        constraint = JsonSchemaConstraint(json_schema=content_schema, name=name)
    else:
        constraint = None
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
    return ChatRequest(**options), union is not None


def choice_message(text: str, finish: str, union: bool) -> tuple[dict[str, Any], str]:
    """An OpenAI ``message`` and ``finish_reason`` for one generated choice."""
    if not union or finish == "length":
        return {"role": "assistant", "content": text}, finish
    reply = json.loads(text)  # valid by construction: the union constrained it
    if reply["type"] == "message":
        content = reply["content"]
        return {"role": "assistant", "content": content if isinstance(content, str) else json.dumps(content)}, finish
    call = {
        "id": "call_" + secrets.token_hex(12),
        "type": "function",
        "function": {"name": reply["name"], "arguments": json.dumps(reply["arguments"])},
    }
    return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"


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


def completion(response: ChatResponse, union: bool, *, completion_id: str, created: int) -> dict[str, Any]:
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
        "usage": openai_usage(response.usage),
    }
