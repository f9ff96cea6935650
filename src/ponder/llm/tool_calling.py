"""Tool calling by constrained generation, for any backend that takes a JSON schema: the client's tools become one
JSON schema, "reply in words or call one or more of these tools with schema-valid arguments", so a malformed call
cannot come back even from a 1.5B model. ``/v1``'s ``ponder-direct`` and the BFCL eval use this one path, so the
benchmark scores what an OpenAI client gets.

The reply is one JSON object, ``{"type": "message", "content": ...}`` or
``{"type": "tool_calls", "calls": [{"name": ..., "arguments": {...}}, ...]}`` (one call unless parallel calls are
allowed).

With ``tool_choice`` auto, whether to call at all is decided first by a *name probe* (:func:`decide_tool_choice`):
a short unconstrained generation in the tool-call layout the model was trained on, read for the name of the function
it reaches for. A name among the offered tools makes the reply a constrained call; words, or a function that was not
offered, make it a plain reply. Measured on BFCL (docs/results/bfcl): inside the constrained union a small model
answers in words when it could compute the result itself (5 of 12 simple calls made), and a reply that must be a
call calls something even when nothing fits (0 of 12 irrelevance items); the probe makes 12 of 12 and 8 of 12.
A call the probe chose whose arguments take nothing from the conversation (:func:`grounded`) gives way to a reply
in words: the model reached for a near-topic function and invented its arguments.

The tools' parameter schemas are taken as clients write them; the type names some write that are not JSON Schema
(``dict``, ``float``, ``tuple``, ``any``: Python's, as in BFCL's function docs) are translated.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ponder.errors import InputError
from ponder.llm._types import ChatModel, ChatRequest, ChatResponse, JsonSchemaConstraint, Message, Usage


class FunctionSpec(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ToolSpec(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = "function"
    function: FunctionSpec


class ToolCall(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolReply(BaseModel):
    """A generated reply: words (``content``) or tool calls."""

    content: Any = None
    calls: list[ToolCall] = Field(default_factory=list)


# Type names clients write that JSON Schema does not have (Python's, Java's, as in BFCL's function docs), and the
# JSON Schema type each means; "any" drops the type (any JSON value).
_TYPE_NAMES = {
    "dict": "object", "float": "number", "double": "number", "tuple": "array", "list": "array",
    "int": "integer", "long": "integer", "short": "integer", "byte": "integer", "bool": "boolean",
    "str": "string", "char": "string", "any": None,
}  # fmt: skip
_JSON_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_ONES = ("items", "additionalProperties", "not", "contains")


def json_schema_of(schema: Any) -> Any:
    """``schema`` with non-JSON-Schema type names translated (recursively), so a constraint engine accepts it and
    the value generated has the type the client meant; an unknown type name is an error naming it."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    kind = out.get("type")
    if isinstance(kind, str) and kind not in _JSON_TYPES:
        if kind not in _TYPE_NAMES:
            raise InputError(f"unknown parameter type {kind!r}", hint=f"use a JSON Schema type: {sorted(_JSON_TYPES)}")
        if _TYPE_NAMES[kind] is None:
            del out["type"]
        else:
            out["type"] = _TYPE_NAMES[kind]
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: json_schema_of(v) for k, v in out["properties"].items()}
    for key in _SUBSCHEMA_ONES:
        if isinstance(out.get(key), dict):
            out[key] = json_schema_of(out[key])
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [json_schema_of(s) for s in out[key]]
    if out.get("type") == "object" and isinstance(out.get("required"), list):
        # a required name that is not a property (a slip in some function docs) could never be satisfied
        known = set(out.get("properties") or {})
        if known:
            out["required"] = [r for r in out["required"] if r in known]
    return out


def _choice_name(tool_choice: Any) -> str | None:
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        if not isinstance(name, str):
            raise InputError("tool_choice names no function", hint='use {"type": "function", "function": {"name": N}}')
        return name
    return None


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def must_call(tool_choice: Any) -> bool:
    """Whether the client requires a tool call (``required`` or a named function)."""
    return tool_choice == "required" or isinstance(tool_choice, dict)


def reply_schema(
    tools: list[ToolSpec], tool_choice: Any, content_schema: dict[str, Any] | None, *, parallel: bool = True
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
    one_call = [
        _object({"name": {"const": t.function.name}, "arguments": json_schema_of(t.function.parameters)})
        for t in offered
    ]
    calls: dict[str, Any] = {"type": "array", "items": one_call[0] if len(one_call) == 1 else {"anyOf": one_call}}
    calls["minItems"] = 1
    if not parallel:
        calls["maxItems"] = 1
    branch = _object({"type": {"const": "tool_calls"}, "calls": calls})
    if must_call(tool_choice):
        return branch
    content = content_schema if content_schema is not None else {"type": "string"}
    return {"anyOf": [_object({"type": {"const": "message"}, "content": content}), branch]}


def _signature(tool: ToolSpec) -> str:
    fn = tool.function
    signature = {"name": fn.name, "description": fn.description, "parameters": json_schema_of(fn.parameters)}
    return json.dumps({"type": "function", "function": signature}, ensure_ascii=False)


def tools_prompt(tools: list[ToolSpec], tool_choice: Any, *, parallel: bool = True) -> str:
    """What the model reads about the tools and the reply format (the schema enforces the format anyway): the
    probe's section, then the JSON reply format, so a call after the probe reuses the probe's evaluated prompt
    (the embedded prompt cache, vLLM's prefix caching)."""
    how_many = (
        "one entry per call the request needs: several when it asks for several things, or for the same thing "
        "with several values (the weather in Paris and in Rome is two calls, one per city)"
        if parallel
        else "exactly one call"
    )
    lines = [
        probe_prompt(tools),
        "",
        'Write the calls as one JSON object: {"type": "tool_calls", "calls": [{"name": <function-name>, '
        f'"arguments": <args-json-object>}}, ...]}}, {how_many}. Take argument values from the request; give every '
        "required argument and leave out optional ones the request gives no value for.",
    ]
    if must_call(tool_choice):
        lines.append("You must call a function.")
    else:
        lines.append(
            "When a function does what the user asks, call it: do not work out its result yourself. "
            'Reply in words, {"type": "message", "content": <your reply>}, only when none of the functions fits '
            "the request, or when the function results you already have answer it."
        )
    return "\n".join(lines)


PROBE_TOKENS = 32  # enough for a code fence and the function's name


def probe_prompt(tools: list[ToolSpec]) -> str:
    """The tools in the layout Qwen2.5's chat template writes, with its own call instruction (no JSON union)."""
    lines = [
        "# Tools",
        "",
        "You may call one or more functions to assist with the user query.",
        "",
        "You are provided with function signatures within <tools></tools> XML tags:",
        "<tools>",
        *(_signature(t) for t in tools),
        "</tools>",
        "",
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:",
        "<tool_call>",
        '{"name": <function-name>, "arguments": <args-json-object>}',
        "</tool_call>",
    ]
    return "\n".join(lines)


_PROBED_NAME = re.compile(r'"name"\s*:\s*"([^"]+)"')


ChoiceMethod = Literal["probe", "union"]


async def decide_tool_choice(
    model: ChatModel,
    messages: list[Message],
    tools: list[ToolSpec],
    tool_choice: Any,
    method: ChoiceMethod = "probe",
) -> tuple[Any, Usage | None]:
    """``tool_choice`` auto resolved by the name probe: ``"required"`` when the model reaches for an offered
    function, ``"none"`` when it answers in words or reaches for one that was not offered; any other choice, or
    any choice with ``method`` union (the reply's constrained union decides), is returned as it is. Returns the
    choice and the probe's usage (None when no probe ran)."""
    if not tools or tool_choice not in (None, "auto") or method == "union":
        return tool_choice, None
    probe = [_with_system(messages, probe_prompt(tools)), *messages[_system_count(messages) :]]
    request = ChatRequest(messages=probe, max_tokens=PROBE_TOKENS, temperature=0.0, stop=['"arguments"'])
    response = await model.complete(request)
    found = _PROBED_NAME.search(response.text)
    offered = {t.function.name for t in tools}
    return ("required" if found and found.group(1) in offered else "none"), response.usage


def _system_count(messages: list[Message]) -> int:
    return 1 if messages and messages[0].role == "system" else 0


def _with_system(messages: list[Message], section: str) -> Message:
    """The conversation's own system message with ``section`` after it (as chat templates place tools), or
    ``section`` alone."""
    own = messages[0].content if _system_count(messages) else ""
    return Message(role="system", content=f"{own}\n\n{section}" if own else section)


def tool_messages(
    messages: list[Message],
    tools: list[ToolSpec],
    tool_choice: Any,
    content_schema: dict[str, Any] | None,
    *,
    parallel: bool = True,
) -> tuple[list[Message], JsonSchemaConstraint | None]:
    """The messages and constraint of a request that offers ``tools`` (unchanged messages and None when it offers
    none); the tools prompt goes first, as a system message."""
    union = reply_schema(tools, tool_choice, content_schema, parallel=parallel)
    if union is None:
        return messages, None
    prompt = _with_system(messages, tools_prompt(tools, tool_choice, parallel=parallel))
    return [prompt, *messages[_system_count(messages) :]], JsonSchemaConstraint(json_schema=union, name="reply")


def parse_reply(text: str) -> ToolReply:
    """The reply a tool union constrained (valid by construction; anything else is a bug worth a loud error)."""
    reply = json.loads(text)
    if reply["type"] == "message":
        return ToolReply(content=reply["content"])
    return ToolReply(calls=[ToolCall(name=c["name"], arguments=c["arguments"]) for c in reply["calls"]])


def written_calls(calls: list[ToolCall]) -> str:
    """Earlier tool calls as the model is asked to write them (an assistant turn of a conversation)."""
    return json.dumps({"type": "tool_calls", "calls": [c.model_dump() for c in calls]}, ensure_ascii=False)


@dataclass
class ToolPlan:
    """A request that offers tools, planned: its ``messages`` and ``constraint`` (None: a reply in words), the name
    probe's usage (to be counted with the reply's), and ``words``: the conversation to answer in words instead when
    the probe chose a call and the calls turn out ungrounded (:func:`grounded`; None when no probe chose)."""

    messages: list[Message]
    constraint: JsonSchemaConstraint | None
    probe_usage: Usage | None = None
    words: list[Message] | None = None
    words_constraint: JsonSchemaConstraint | None = None  # the client's response_format, for that reply

    def answer_in_words(self, reply_text: str) -> bool:
        """Whether the call reply ``reply_text`` should give way to a reply in words."""
        return self.words is not None and not grounded(parse_reply(reply_text).calls, self.words)


async def tool_request_parts(
    model: ChatModel,
    messages: list[Message],
    tools: list[ToolSpec],
    tool_choice: Any,
    content_schema: dict[str, Any] | None,
    *,
    parallel: bool = True,
    method: ChoiceMethod = "probe",
) -> ToolPlan:
    """The plan of a request that offers ``tools``, after ``method`` decides an ``auto`` choice."""
    choice, probe_usage = await decide_tool_choice(model, messages, tools, tool_choice, method)
    out, constraint = tool_messages(messages, tools, choice, content_schema, parallel=parallel)
    words = messages if probe_usage is not None and constraint is not None else None
    content = JsonSchemaConstraint(json_schema=content_schema, name="reply") if content_schema is not None else None
    return ToolPlan(out, constraint, probe_usage, words, content)


async def complete_with_tools(
    model: ChatModel, request: ChatRequest, plan: ToolPlan | None, *, words_max_tokens: int | None = None
) -> tuple[ChatResponse, bool, str | None]:
    """The reply to a planned request: the response, whether it is the tool union, and the call reply that gave way
    (None when none did). A one-choice call reply whose calls take nothing from the conversation (:func:`grounded`)
    gives way to a reply in words when the probe chose the call (``words_max_tokens`` caps that reply, default the
    request's); the usage counts the probe, the dropped reply and the reply."""
    response = await model.complete(request)
    union, dropped = plan is not None, None
    spent = [plan.probe_usage] if plan is not None and plan.probe_usage is not None else []
    finished = response.choices[0].finish_reason != "length"
    if plan is not None and request.n == 1 and finished and plan.answer_in_words(response.text):
        spent.append(response.usage)
        update: dict[str, Any] = {"messages": plan.words, "constraint": plan.words_constraint}
        if words_max_tokens is not None:
            update["max_tokens"] = words_max_tokens
        dropped, union = response.text, False
        response = await model.complete(request.model_copy(update=update))
    for usage in spent:
        response = response.model_copy(update={"usage": response.usage + usage})
    return response, union, dropped


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_WORD = re.compile(r"[a-z0-9]{3,}")


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        return []
    return [value]


def grounded(calls: list[ToolCall], conversation: list[Message]) -> bool:
    """Whether the calls take anything from the conversation: at least one argument value (a number equal to one in
    the text, or a string found in it, whole or by one of its words) appears there. Calls whose arguments are all
    invented (``determine_body_mass_index(weight=70, height=1.75)`` for the area of a triangle of base 10 and
    height 5) were not asked for: measured on BFCL's first 48 items per category, 9 of 22 wrong irrelevance calls
    took nothing from the request, against 2 of 190 right calls elsewhere (docs/results/bfcl). Calls without
    argument values are grounded (there is nothing to check)."""
    leaves = [leaf for c in calls for leaf in _leaves(c.arguments)]
    if not leaves:
        return True
    text = "\n".join(m.content for m in conversation if m.role != "system").lower()
    found = _NUMBER.findall(text)  # "1,000" is one number, "(3,4)" two: both readings count
    readings = [n.replace(",", "") for n in found] + [part for n in found for part in n.split(",")]
    numbers = {float(n) for n in readings if n.strip("-")}
    for leaf in leaves:
        if isinstance(leaf, int | float) and float(leaf) in numbers:
            return True
        if isinstance(leaf, str) and (leaf.lower() in text or any(w in text for w in _WORD.findall(leaf.lower()))):
            return True
    return False
