"""LangChain's ChatOpenAI against ponder's /v1, unchanged (issue 20): bind_tools gives tool calls with valid
arguments, a tool message gets the final answer, with_structured_output gives a parsed object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from ponder.llm import ChatRequest
from tests.api.conftest import Server
from tests.api.test_openai_direct import call_branch, play
from tests.fakes import FunctionModel

langchain_openai = pytest.importorskip("langchain_openai")


def get_weather(city: str) -> str:
    """The weather in a city now."""
    return f"21 degrees in {city}"


class Person(BaseModel):
    name: str
    age: int


async def test_bind_tools_then_a_tool_message_then_the_answer(make_server: Callable[..., Server]) -> None:
    from langchain_core.messages import HumanMessage, ToolMessage

    backend = FunctionModel(play)
    server = make_server(model=backend)
    llm = langchain_openai.ChatOpenAI(
        base_url=server.url + "/v1", api_key="unused", model="ponder-direct", max_retries=0, temperature=0
    )
    with_tools = llm.bind_tools([get_weather])
    question = HumanMessage("What is the weather in Paris?")
    first = await with_tools.ainvoke([question])
    assert first.tool_calls and first.tool_calls[0]["name"] == "get_weather"
    assert first.tool_calls[0]["args"] == {"city": "Paris"}
    result = ToolMessage(get_weather(**first.tool_calls[0]["args"]), tool_call_id=first.tool_calls[0]["id"])
    final = await with_tools.ainvoke([question, first, result])
    assert final.content == "It is 21 degrees in Paris." and not final.tool_calls
    schema = backend.requests[1].constraint.json_schema  # type: ignore[union-attr]  # requests[0]: the probe
    tool = call_branch(schema)["properties"]["calls"]["items"]
    assert tool["properties"]["arguments"]["required"] == ["city"]  # LangChain's schema of the function, enforced


async def test_with_structured_output_gives_a_parsed_object(make_server: Callable[..., Server]) -> None:
    backend = FunctionModel(play)
    server = make_server(model=backend)
    llm = langchain_openai.ChatOpenAI(
        base_url=server.url + "/v1", api_key="unused", model="ponder-direct", max_retries=0
    )
    person = await llm.with_structured_output(Person).ainvoke("Describe a person.")
    assert isinstance(person, Person)
    assert set(backend.requests[-1].constraint.json_schema["properties"]) == {"name", "age"}  # type: ignore[union-attr]


async def test_with_structured_output_on_a_strategy_model(make_server: Callable[..., Server]) -> None:
    """A strategy model (ponder-cot) reasons its way, then writes its answer in LangChain's schema."""

    def fn(request: ChatRequest) -> Any:
        if request.constraint is None:
            return "Ada Lovelace was born in 1815 and died in 1852, at 36.\nFinal answer: Ada Lovelace, 36"
        return {"name": "Ada Lovelace", "age": 36}

    server = make_server(model=FunctionModel(fn))
    llm = langchain_openai.ChatOpenAI(base_url=server.url + "/v1", api_key="unused", model="ponder-cot", max_retries=0)
    person = await llm.with_structured_output(Person).ainvoke(
        "Who wrote the first program, and at what age did she die?"
    )
    assert person == Person(name="Ada Lovelace", age=36)


async def test_langchain_against_the_embedded_model(make_server: Callable[..., Server], embedded_model: object) -> None:
    server = make_server(model=embedded_model)
    llm = langchain_openai.ChatOpenAI(
        base_url=server.url + "/v1", api_key="unused", model="ponder-direct", max_retries=0, max_tokens=48
    )
    called = await llm.bind_tools([get_weather], tool_choice="get_weather").ainvoke("What is the weather in Paris?")
    assert called.tool_calls and called.tool_calls[0]["name"] == "get_weather"
    assert isinstance(called.tool_calls[0]["args"]["city"], str)  # valid arguments, by construction
    person = await llm.with_structured_output(Person).ainvoke("Invent a person with a name and an age.")
    assert isinstance(person, Person)
