"""Structured output the way each popular client asks for it, against /v1, with the client packages unchanged (issue
34): pydantic-ai (an output tool with tool_choice required by default, ``NativeOutput``: response_format, a function
tool), instructor (TOOLS mode: a named function; JSON mode: json_object plus the schema in a system message) and the
OpenAI Agents SDK over chat completions (response_format json_schema). Each asks ``ponder-cot`` (a strategy model:
it reasons its own way, then answers through the output tool or format) and ``ponder-direct``. A scripted backend
plays the model; the last tests use the embedded one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from ponder.llm import ChatRequest
from tests.api.conftest import Server
from tests.fakes import FunctionModel

MODELS = ["ponder-cot", "ponder-direct"]
FACTS = {"name": "Paris", "country": "France", "population": 2_100_000}


class City(BaseModel):
    name: str
    country: str
    population: int


def fill(schema: dict[str, Any], key: str = "") -> Any:
    """A document valid against ``schema`` holding the facts above where a field is named after one."""
    if "const" in schema:
        return schema["const"]
    if "anyOf" in schema:
        return fill(schema["anyOf"][-1], key)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {k: fill(v, k) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [fill(schema.get("items") or {"type": "string"}, key)]
    if kind == "integer":
        return FACTS.get(key, 1) if isinstance(FACTS.get(key), int) else 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    return str(FACTS.get(key, "Paris"))


def backend(request: ChatRequest) -> Any:
    system = request.messages[0].content if request.messages[0].role == "system" else ""
    if request.constraint is not None:
        schema = request.constraint.json_schema  # type: ignore[union-attr]
        if schema == {"type": "object"}:  # json_object: the shape is in the client's instructions, if they arrived
            said = "\n".join(m.content for m in request.messages)
            return dict(FACTS) if '"population"' in said else {}
        return fill(schema)
    if request.messages[-1].content.startswith("Tool result"):
        return "It is 21 degrees in Paris."
    if "<tool_call>" in system:  # the name probe: reach for the weather tool
        return '<tool_call>\n{"name": "get_weather", '
    return "Paris is the capital of France and has about 2.1 million people.\nFinal answer: Paris, France"


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server(model=FunctionModel(backend))


@pytest.fixture(autouse=True)
def no_agents_tracing() -> Iterator[None]:
    """The Agents SDK exports traces to OpenAI by default: tests send nothing off this machine."""
    from agents import set_tracing_disabled

    set_tracing_disabled(True)
    yield
    set_tracing_disabled(False)


@pytest.fixture
async def client(server: Server) -> AsyncIterator[openai.AsyncOpenAI]:
    """One openai client per test, closed after it (every client package here is given it)."""
    async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0) as opened:
        yield opened


def pydantic_ai_model(client: openai.AsyncOpenAI, name: str) -> Any:
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    return OpenAIChatModel(name, provider=OpenAIProvider(openai_client=client))


@pytest.mark.parametrize("model", MODELS)
async def test_pydantic_ai_output_type_default_and_native(client: openai.AsyncOpenAI, model: str) -> None:
    from pydantic_ai import Agent, NativeOutput

    question = "Which city is the capital of France? Give its country and population."
    by_tool = await Agent(pydantic_ai_model(client, model), output_type=City).run(question)
    assert by_tool.output == City(**FACTS)
    native = await Agent(pydantic_ai_model(client, model), output_type=NativeOutput(City)).run(question)
    assert native.output == City(**FACTS)


async def test_pydantic_ai_function_tool_on_ponder_direct(client: openai.AsyncOpenAI) -> None:
    from pydantic_ai import Agent

    agent = Agent(pydantic_ai_model(client, "ponder-direct"))
    called: list[str] = []

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city now."""
        called.append(city)
        return f"21 degrees in {city}"

    result = await agent.run("What is the weather in Paris?")
    assert called == ["Paris"] and result.output == "It is 21 degrees in Paris."


@pytest.mark.parametrize("model", MODELS)
async def test_instructor_tools_and_json_modes(client: openai.AsyncOpenAI, model: str) -> None:
    import instructor

    question = [{"role": "user", "content": "Which city is the capital of France?"}]
    for mode in (instructor.Mode.TOOLS, instructor.Mode.JSON):
        patched = instructor.from_openai(client, mode=mode)
        city = await patched.chat.completions.create(model=model, response_model=City, messages=question)
        assert city.model_dump() == FACTS, mode  # instructor returns its own subclass of City


@pytest.mark.parametrize("model", MODELS)
async def test_openai_agents_sdk_output_type(client: openai.AsyncOpenAI, model: str) -> None:
    from agents import Agent, OpenAIChatCompletionsModel, Runner

    agent = Agent(
        name="geographer",
        instructions="Answer questions about cities.",
        model=OpenAIChatCompletionsModel(model=model, openai_client=client),
        output_type=City,
    )
    result = await Runner.run(agent, "Which city is the capital of France?")
    assert result.final_output == City(**FACTS)


async def test_a_streamed_strategy_run_ends_with_the_output_tool_call(client: openai.AsyncOpenAI) -> None:
    output = {"type": "function", "function": {"name": "final_result", "parameters": City.model_json_schema()}}
    stream = await client.chat.completions.create(
        model="ponder-cot",
        messages=[{"role": "user", "content": "Which city is the capital of France?"}],
        tools=[output],
        tool_choice={"type": "function", "function": {"name": "final_result"}},
        stream=True,
    )
    reasoning, arguments, finish = "", "", None
    async for chunk in stream:
        for c in chunk.choices:
            reasoning += getattr(c.delta, "reasoning_content", None) or ""
            arguments += "".join(d.function.arguments or "" for d in c.delta.tool_calls or [] if d.function)
            finish = c.finish_reason or finish
    assert "capital of France" in reasoning  # the strategy reasoned its own way first
    assert City.model_validate_json(arguments) == City(**FACTS) and finish == "tool_calls"


async def test_a_strategy_model_still_refuses_tools_it_cannot_use(client: openai.AsyncOpenAI) -> None:
    """Tools with tool_choice auto are actions a strategy cannot take: a 400 naming ponder-direct."""
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError, match="ponder-direct"):
        await client.chat.completions.create(
            model="ponder-cot", messages=[{"role": "user", "content": "x"}], tools=[weather], tool_choice="auto"
        )
    named = {"type": "function", "function": {"name": "get_time"}}  # not among the tools: refused before the run
    with pytest.raises(openai.BadRequestError, match="'get_time', which is not among the tools"):
        await client.chat.completions.create(
            model="ponder-cot", messages=[{"role": "user", "content": "x"}], tools=[weather], tool_choice=named
        )


@pytest.mark.embedded
@pytest.mark.parametrize("model", MODELS)
async def test_clients_get_structured_output_from_the_embedded_model(
    make_server: Callable[..., Server], embedded_model: object, model: str
) -> None:
    """The real model through each client's default structured-output path: a valid City each time (reasoning
    capped at 200 tokens to keep the test short)."""
    import instructor
    from pydantic_ai import Agent
    from pydantic_ai.settings import ModelSettings

    from agents import Agent as SdkAgent
    from agents import ModelSettings as SdkSettings
    from agents import OpenAIChatCompletionsModel, Runner

    server = make_server(model=embedded_model)
    question = "Which city is the capital of France? Give its country and population."
    async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0) as client:
        agent = Agent(pydantic_ai_model(client, model), output_type=City, model_settings=ModelSettings(max_tokens=200))
        city = (await agent.run(question)).output
        assert isinstance(city, City) and city.name
        patched = instructor.from_openai(client)
        city = await patched.chat.completions.create(
            model=model,
            response_model=City,
            messages=[{"role": "user", "content": question}],
            max_retries=0,
            max_tokens=200,
        )
        assert isinstance(city, City)
        sdk = OpenAIChatCompletionsModel(model=model, openai_client=client)
        geographer = SdkAgent(name="g", model=sdk, output_type=City, model_settings=SdkSettings(max_tokens=200))
        result = await Runner.run(geographer, question)
        assert isinstance(result.final_output, City)
