"""The tool-calling union (``ponder.llm.tool_calling``): parameter types clients write that JSON Schema lacks are
translated, tool_choice and parallel_tool_calls shape the schema, and a reply reads back as calls. The schemas are
compiled by the real llguidance (the embedded engine's constraint compiler)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ponder.errors import InputError
from ponder.llm import Message
from ponder.llm.tool_calling import (
    FunctionSpec,
    ToolCall,
    ToolSpec,
    decide_tool_choice,
    grounded,
    json_schema_of,
    parse_reply,
    reply_schema,
    tool_messages,
    tool_request_parts,
    written_calls,
)
from tests.fakes import FunctionModel

BFCL_STYLE = {
    "type": "dict",
    "properties": {
        "base": {"type": "integer"},
        "ratio": {"type": "float"},
        "point": {"type": "tuple", "items": {"type": "float"}},
        "options": {"type": "dict", "properties": {"unit": {"type": "string"}}},
        "anything": {"type": "any"},
    },
    "required": ["base", "ratio", "missing"],
}


def tool(name: str, parameters: dict[str, Any] | None = None) -> ToolSpec:
    return ToolSpec(function=FunctionSpec(name=name, parameters=parameters or {"type": "object", "properties": {}}))


def test_python_type_names_become_json_schema_types() -> None:
    schema = json_schema_of(BFCL_STYLE)
    assert schema["type"] == "object"
    props = schema["properties"]
    assert props["base"] == {"type": "integer"} and props["ratio"] == {"type": "number"}
    assert props["point"] == {"type": "array", "items": {"type": "number"}}
    assert props["options"]["type"] == "object" and props["anything"] == {}
    assert schema["required"] == ["base", "ratio"]  # a required name with no property could never be given
    assert BFCL_STYLE["type"] == "dict"  # the client's schema is not modified


def test_an_unknown_type_name_is_an_error_naming_it() -> None:
    with pytest.raises(InputError, match="'decimal'"):
        json_schema_of({"type": "object", "properties": {"x": {"type": "decimal"}}})


def test_tool_choice_and_parallel_shape_the_union() -> None:
    tools = [tool("a"), tool("b")]
    auto = reply_schema(tools, "auto", None)
    assert auto is not None
    message, calls = auto["anyOf"]
    assert message["properties"]["type"] == {"const": "message"}
    items = calls["properties"]["calls"]
    assert items["minItems"] == 1 and "maxItems" not in items
    assert [b["properties"]["name"]["const"] for b in items["items"]["anyOf"]] == ["a", "b"]
    one = reply_schema(tools, {"type": "function", "function": {"name": "b"}}, None, parallel=False)
    assert one is not None and "anyOf" not in one  # a call is required: no text branch
    assert one["properties"]["calls"]["maxItems"] == 1
    assert one["properties"]["calls"]["items"]["properties"]["name"] == {"const": "b"}
    assert reply_schema(tools, "none", None) is None and reply_schema([], "auto", None) is None
    with pytest.raises(InputError, match="'c'"):
        reply_schema(tools, {"type": "function", "function": {"name": "c"}}, None)


def test_the_union_compiles_in_the_embedded_constraint_engine() -> None:
    """llguidance (the embedded backend's engine) accepts the union of BFCL-style tools, and would not accept the
    client's schema untranslated."""
    llguidance = pytest.importorskip("llguidance")
    _, constraint = tool_messages([Message(role="user", content="hi")], [tool("f", BFCL_STYLE), tool("g")], None, None)
    assert constraint is not None
    grammar = llguidance.grammar_from("json_schema", json.dumps(constraint.json_schema))
    assert llguidance.LLMatcher.validate_grammar(grammar) == ""
    raw = llguidance.grammar_from("json_schema", json.dumps(BFCL_STYLE))
    assert "dict" in llguidance.LLMatcher.validate_grammar(raw)


def test_a_reply_reads_back_as_calls_or_words() -> None:
    calls = [ToolCall(name="f", arguments={"base": 1}), ToolCall(name="g")]
    assert parse_reply(written_calls(calls)).calls == calls
    reply = parse_reply(json.dumps({"type": "message", "content": "no tool fits"}))
    assert reply.calls == [] and reply.content == "no tool fits"


def test_the_tools_prompt_goes_first_and_lists_each_signature() -> None:
    messages, constraint = tool_messages([Message(role="user", content="hi")], [tool("f", BFCL_STYLE)], "auto", None)
    assert constraint is not None and [m.role for m in messages] == ["system", "user"]
    assert '"name": "f"' in messages[0].content and '"ratio": {"type": "number"}' in messages[0].content


def probing(reply: str) -> FunctionModel:
    return FunctionModel(lambda request: reply)


@pytest.mark.parametrize(
    ("reply", "choice"),
    [
        ('<tool_call>\n{"name": "f", ', "required"),  # reaches for an offered function
        ('```json\n{\n  "name": "g",', "required"),
        ('{"name": "calculate_area", ', "none"),  # a function that was not offered: none fits
        ("The area is 25 square units.", "none"),  # words
    ],
)
async def test_the_name_probe_decides_an_auto_choice(reply: str, choice: str) -> None:
    model = probing(reply)
    messages = [Message(role="system", content="Be brief."), Message(role="user", content="area of a triangle?")]
    decided, usage = await decide_tool_choice(model, messages, [tool("f", BFCL_STYLE), tool("g")], "auto")
    assert decided == choice and usage is not None
    (probe,) = model.requests
    assert probe.constraint is None and probe.max_tokens <= 32
    assert probe.messages[0].content.startswith("Be brief.\n\n# Tools")  # the client's system message comes first
    assert [m.role for m in probe.messages] == ["system", "user"]


async def test_the_union_method_leaves_the_choice_to_the_constrained_reply() -> None:
    model = probing("unused")
    messages = [Message(role="user", content="x")]
    plan = await tool_request_parts(model, messages, [tool("f")], "auto", None, method="union")
    assert plan.messages[0].role == "system"  # the tools prompt, no probe
    assert model.requests == [] and plan.probe_usage is None and plan.words is None
    assert plan.constraint is not None and len(plan.constraint.json_schema["anyOf"]) == 2  # words or calls


async def test_a_required_or_named_choice_needs_no_probe() -> None:
    model = probing("unused")
    for choice in ("required", "none", {"type": "function", "function": {"name": "f"}}):
        assert await decide_tool_choice(model, [Message(role="user", content="x")], [tool("f")], choice) == (
            choice,
            None,
        )
    assert model.requests == []


def test_a_call_is_grounded_when_an_argument_comes_from_the_conversation() -> None:
    asked = [Message(role="system", content="weight 70"), Message(role="user", content="Area of a triangle, base 10?")]
    assert grounded([ToolCall(name="area", arguments={"base": 10, "height": 1.75})], asked)  # 10 is asked
    assert grounded([ToolCall(name="area", arguments={"shape": "Triangle"})], asked)  # a word of the request
    assert grounded([ToolCall(name="now")], asked)  # nothing to check
    points = [Message(role="user", content="Distance from A(3,4) to B(1,2), and 1,000 more?")]
    assert grounded([ToolCall(name="d", arguments={"a": [3, 4]})], points)
    assert grounded([ToolCall(name="d", arguments={"extra": 1000})], points)
    invented = ToolCall(name="bmi", arguments={"weight": 70, "height": 1.75, "unit": "kg", "strict": True})
    assert not grounded([invented], asked)  # 70 only in the system message: not the user's
    assert grounded([invented, ToolCall(name="area", arguments={"base": 10.0})], asked)  # one call is enough


async def test_an_ungrounded_call_chosen_by_the_probe_gives_way_to_words() -> None:
    """Only a call the probe chose can give way (a client that requires a call gets one)."""
    messages = [Message(role="user", content="Area of a triangle with base 10 and height 5?")]
    plan = await tool_request_parts(probing('{"name": "bmi", '), messages, [tool("bmi")], "auto", None)
    assert plan.words == messages and plan.answer_in_words(written_calls([ToolCall(name="bmi", arguments={"w": 70})]))
    assert not plan.answer_in_words(written_calls([ToolCall(name="bmi", arguments={"w": 10})]))
    required = await tool_request_parts(probing("unused"), messages, [tool("bmi")], "required", None)
    assert required.words is None and not required.answer_in_words(written_calls([ToolCall(name="bmi")]))
