"""``ponder-direct`` on /v1 with the official openai client (issue 20): client tools as constrained tool calls, a
tool loop across requests, structured output, n, logprobs, streamed tool-call deltas, OpenAI's error shape, and a
disconnected stream cancelling its run. A scripted model plays the backend; the last tests use the real one."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from ponder.llm import ChatRequest, Choice, TokenLogprob
from tests.api.conftest import Server, wait_status
from tests.fakes import FunctionModel
from tests.llm.openai_fake import minimal_instance

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "the weather in a city now",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


def play(request: ChatRequest) -> Any:
    """A backend that calls get_weather until it has a tool result, then answers; other constraints get the
    smallest valid document; logprobs when asked. Asked in the probe's layout which function it reaches for, it
    names get_weather when offered (else the first tool), or answers in words after a tool result."""
    schema = request.constraint.json_schema if request.constraint is not None else None
    if schema is None and request.messages[-1].content.startswith("Tool result"):
        return "It is 21 degrees in Paris."
    if schema is None and "<tool_call>" in request.messages[0].content:
        names = re.findall(r'"name": "([^"]+)"', request.messages[0].content)
        return '<tool_call>\n{"name": "' + ("get_weather" if "get_weather" in names else names[0]) + '", '
    if schema is not None and ("anyOf" in schema or "type" in schema.get("properties", {})):
        branches = schema.get("anyOf", [schema])
        kinds = {b["properties"]["type"]["const"] for b in branches}
        if request.messages[-1].content.startswith("Tool result") and "message" in kinds:
            return {"type": "message", "content": "It is 21 degrees in Paris."}
        name = offered(schema)[0]
        arguments = {"city": "Paris"} if name == "get_weather" else {}
        return {"type": "tool_calls", "calls": [{"name": name, "arguments": arguments}]}
    if schema is not None:
        return minimal_instance(schema)
    if request.logprobs:
        top = {"hi": -0.1, "yo": -2.5}
        return Choice(text="hi", logprobs=[TokenLogprob(token="hi", logprob=-0.1, top=top)])
    return f"reply {request.seed}" if request.seed is not None else "hello there"


def call_branch(union: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in union.get("anyOf", [union]) if b["properties"]["type"]["const"] == "tool_calls")


def offered(union: dict[str, Any]) -> list[str]:
    """The tool names a reply constrained by ``union`` may call."""
    items = call_branch(union)["properties"]["calls"]["items"]
    return [one["properties"]["name"]["const"] for one in items.get("anyOf", [items])]


@pytest.fixture
def backend() -> FunctionModel:
    return FunctionModel(play)


@pytest.fixture
def direct(make_server: Callable[..., Server], backend: FunctionModel) -> Server:
    return make_server(model=backend)


def client_for(server: Server) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


async def test_the_openai_tool_loop_works_unchanged(direct: Server, backend: FunctionModel) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    async with client_for(direct) as client:
        first = await client.chat.completions.create(model="ponder-direct", messages=messages, tools=[WEATHER, CLOCK])
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        (call,) = choice.message.tool_calls or []
        assert call.type == "function" and call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"city": "Paris"} and call.id.startswith("call_")
        # the name probe (unconstrained, in the model's own tool layout) reached for get_weather, so the reply was
        # constrained to calls of either tool, each with its own argument schema
        probe, call_request = backend.requests[-2:]
        assert probe.constraint is None and "<tool_call>" in probe.messages[0].content
        union = call_request.constraint.json_schema  # type: ignore[union-attr]
        assert "anyOf" not in union and offered(union) == ["get_weather", "get_time"]
        weather = call_branch(union)["properties"]["calls"]["items"]["anyOf"][0]
        assert weather["properties"]["arguments"] == WEATHER["function"]["parameters"]  # type: ignore[index]
        assert (
            '"name": "get_weather", "description": "the weather in a city now"'
            in backend.requests[-1].messages[0].content
        )

        messages += [choice.message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id,
                                                                    "content": '{"celsius": 21}'}]  # fmt: skip
        second = await client.chat.completions.create(model="ponder-direct", messages=messages, tools=[WEATHER])
        assert second.choices[0].finish_reason == "stop"
        assert second.choices[0].message.content == "It is 21 degrees in Paris."
    sent = backend.requests[-1].messages
    assert sent[-1].role == "user" and sent[-1].content == f'Tool result ({call.id}):\n{{"celsius": 21}}'
    assert sent[-2].role == "assistant" and json.loads(sent[-2].content)["calls"][0]["name"] == "get_weather"


@pytest.mark.parametrize(
    ("tool_choice", "tools"),
    [
        ("required", ["get_weather", "get_time"]),
        ({"type": "function", "function": {"name": "get_time"}}, ["get_time"]),
        ("none", None),
    ],
)
async def test_tool_choice_shapes_the_constraint(
    direct: Server, backend: FunctionModel, tool_choice: Any, tools: list[str] | None
) -> None:
    async with client_for(direct) as client:
        reply = await client.chat.completions.create(
            model="ponder-direct",
            messages=[{"role": "user", "content": "hi"}],
            tools=[WEATHER, CLOCK],
            tool_choice=tool_choice,
        )
    constraint = backend.requests[-1].constraint
    if tools is None:
        assert constraint is None and reply.choices[0].message.content == "hello there"
        return
    assert constraint is not None
    assert "anyOf" not in constraint.json_schema  # a call is required: no text branch
    assert offered(constraint.json_schema) == tools
    assert reply.choices[0].finish_reason == "tool_calls"


class Person(BaseModel):
    name: str
    age: int


async def test_structured_output_n_seed_and_logprobs(direct: Server, backend: FunctionModel) -> None:
    async with client_for(direct) as client:
        parsed = await client.chat.completions.parse(
            model="ponder-direct", messages=[{"role": "user", "content": "a person"}], response_format=Person
        )
        person = parsed.choices[0].message.parsed
        assert isinstance(person, Person)
        schema = backend.requests[-1].constraint.json_schema  # type: ignore[union-attr]
        assert set(schema["properties"]) == {"name", "age"}
        obj = await client.chat.completions.create(
            model="ponder-direct",
            messages=[{"role": "user", "content": "json please"}],
            response_format={"type": "json_object"},
        )
        assert isinstance(json.loads(obj.choices[0].message.content or ""), dict)
        three = await client.chat.completions.create(
            model="ponder-direct", messages=[{"role": "user", "content": "hi"}], n=3, seed=5, stop=["\n"]
        )
        assert [c.index for c in three.choices] == [0, 1, 2]
        assert backend.requests[-1].n == 3 and backend.requests[-1].seed == 5 and backend.requests[-1].stop == ["\n"]
        probed = await client.chat.completions.create(
            model="ponder-direct", messages=[{"role": "user", "content": "hi"}], logprobs=True, top_logprobs=2
        )
        content = probed.choices[0].logprobs.content  # type: ignore[union-attr]
        assert content is not None and content[0].token == "hi"
        assert [t.token for t in content[0].top_logprobs] == ["hi", "yo"]


async def test_streamed_text_and_streamed_tool_call_deltas(direct: Server) -> None:
    async with client_for(direct) as client:
        text = ""
        stream = await client.chat.completions.create(
            model="ponder-direct", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)
        assert text == "hello there"
        calls: dict[int, dict[str, str]] = {}
        finish = None
        stream = await client.chat.completions.create(
            model="ponder-direct",
            messages=[{"role": "user", "content": "weather in Paris?"}],
            tools=[WEATHER],
            stream=True,
        )
        async for chunk in stream:
            for c in chunk.choices:
                finish = c.finish_reason or finish
                for delta in c.delta.tool_calls or []:
                    entry = calls.setdefault(delta.index, {"name": "", "arguments": ""})
                    entry["name"] += (delta.function.name if delta.function else None) or ""
                    entry["arguments"] += (delta.function.arguments if delta.function else None) or ""
        assert finish == "tool_calls"
        assert calls[0]["name"] == "get_weather" and json.loads(calls[0]["arguments"]) == {"city": "Paris"}


async def test_errors_come_in_openai_shape(direct: Server) -> None:
    async with client_for(direct) as client:
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(
                model="ponder-direct", messages=[{"role": "user", "content": "x"}], n=0
            )
        assert bad.value.body["param"] == "n" and bad.value.body["type"] == "invalid_request_error"  # type: ignore[index]
        with pytest.raises(openai.BadRequestError, match="ponder-direct does"):
            await client.chat.completions.create(
                model="ponder-cot", messages=[{"role": "user", "content": "x"}], tools=[WEATHER]
            )
        with pytest.raises(openai.BadRequestError, match="image_url"):
            await client.chat.completions.create(
                model="ponder-direct",
                messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}],
            )
        with pytest.raises(openai.BadRequestError, match="at most 4"):
            await client.chat.completions.create(
                model="ponder-direct", messages=[{"role": "user", "content": "x"}], stop=list("abcde")
            )
        assert (await client.models.retrieve("ponder-direct")).id == "ponder-direct"
        with pytest.raises(openai.NotFoundError, match="unknown model"):
            await client.models.retrieve("gpt-9")
    async with httpx.AsyncClient(base_url=direct.url) as http:
        missing = await http.post("/v1/completions", json={"model": "ponder-direct", "prompt": "x"})
        assert missing.status_code == 404
        error = missing.json()["error"]
        assert error["type"] == "not_found_error" and "/v1/completions" in error["message"]


async def test_a_call_that_takes_nothing_from_the_request_gives_way_to_words(
    direct: Server, backend: FunctionModel
) -> None:
    """The probe reached for get_weather, but the call's city is nowhere in the request: ponder-direct answers in
    words (the conversation alone, no tools), and the usage counts the probe, the dropped call and the reply."""
    async with client_for(direct) as client:
        reply = await client.chat.completions.create(
            model="ponder-direct", messages=[{"role": "user", "content": "How are you today?"}], tools=[WEATHER]
        )
    assert reply.choices[0].finish_reason == "stop" and reply.choices[0].message.content == "hello there"
    probe, call, words = backend.requests[-3:]
    assert probe.constraint is None and call.constraint is not None
    assert words.constraint is None and [m.content for m in words.messages] == ["How are you today?"]
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == sum(len(m.content.split()) for r in (probe, call, words) for m in r.messages)


async def test_parallel_tool_calls_come_back_as_several_calls(make_server: Callable[..., Server]) -> None:
    """One reply that calls get_weather twice: two tool_calls with their own ids, streamed with indices 0 and 1;
    parallel_tool_calls false allows one call only (the schema says so); the probe's tokens count in the usage."""

    def two_cities(request: ChatRequest) -> Any:
        if request.constraint is None:
            return '<tool_call>\n{"name": "get_weather", '
        return {"type": "tool_calls", "calls": [{"name": "get_weather", "arguments": {"city": c}} for c in "AB"]}

    backend = FunctionModel(two_cities)
    server = make_server(model=backend)
    ask: dict[str, Any] = {"model": "ponder-direct", "tools": [WEATHER],
                           "messages": [{"role": "user", "content": "Weather in A and in B?"}]}  # fmt: skip
    async with client_for(server) as client:
        reply = await client.chat.completions.create(**ask)
        calls = reply.choices[0].message.tool_calls or []
        assert [json.loads(c.function.arguments)["city"] for c in calls] == ["A", "B"]
        assert len({c.id for c in calls}) == 2
        probe, answer = backend.requests[-2:]
        assert reply.usage is not None
        words = sum(len(m.content.split()) for m in [*probe.messages, *answer.messages])  # the fake's "tokens"
        assert reply.usage.prompt_tokens == words
        indices = []
        async for chunk in await client.chat.completions.create(**ask, stream=True):
            for c in chunk.choices:
                indices += [d.index for d in c.delta.tool_calls or []]
        assert indices == [0, 1]
        await client.chat.completions.create(**ask, parallel_tool_calls=False)
    assert backend.requests[-1].constraint.json_schema["properties"]["calls"]["maxItems"] == 1  # type: ignore[union-attr]


async def test_a_disconnected_stream_cancels_its_run(make_server: Callable[..., Server]) -> None:
    async def slow(request: ChatRequest) -> str:
        await asyncio.sleep(1.0)
        return "step"

    server = make_server(model=FunctionModel(slow))
    async with server.client(timeout=30) as http:
        body = {"model": "ponder-steps", "messages": [{"role": "user", "content": "q"}], "stream": True,
                "ponder_options": {"steps": 20}}  # fmt: skip
        async with http.stream("POST", "/v1/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if "reasoning_content" in line:  # the run is under way
                    break
        runs = (await http.get("/runs")).json()["runs"]
        run = await wait_status(http, runs[0]["id"], "cancelled", within_s=10)
        assert run["status"] == "cancelled" and run["costs"]["llm_calls"] < 20


async def test_the_embedded_model_returns_valid_tool_calls_and_objects(
    make_server: Callable[..., Server], embedded_model: object
) -> None:
    server = make_server(model=embedded_model)
    async with client_for(server) as client:
        reply = await client.chat.completions.create(
            model="ponder-direct",
            messages=[{"role": "user", "content": "What is the weather in Paris right now?"}],
            tools=[WEATHER],
            tool_choice="required",
            max_completion_tokens=48,
        )
        (call,) = reply.choices[0].message.tool_calls or []
        assert call.function.name == "get_weather"
        assert isinstance(json.loads(call.function.arguments)["city"], str)  # valid by construction
        parsed = await client.chat.completions.parse(
            model="ponder-direct",
            messages=[{"role": "user", "content": "Invent a person: a name and an age."}],
            response_format=Person,
            max_completion_tokens=48,
        )
        assert isinstance(parsed.choices[0].message.parsed, Person)
        # tool_choice auto: the name probe sees the model reach for get_weather, so the reply is that call
        auto = await client.chat.completions.create(
            model="ponder-direct",
            messages=[{"role": "user", "content": "What is the weather in Paris right now?"}],
            tools=[WEATHER, CLOCK],
            max_completion_tokens=48,
        )
        assert [c.function.name for c in auto.choices[0].message.tool_calls or []] == ["get_weather"]


async def test_a_client_tool_inside_a_react_run_pauses_and_resumes_across_requests(
    make_server: Callable[..., Server],
) -> None:
    from tests.agents.planner._script import answer, call, submit
    from tests.fakes import ScriptedModel

    model = ScriptedModel(
        [call("get_weather", city="Paris"), submit("it is 21 degrees in Paris"), answer("It is 21 degrees in Paris.")]
    )
    server = make_server(model=model)
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    async with client_for(server) as client:
        first = await client.chat.completions.create(model="ponder-react", messages=messages, tools=[WEATHER])
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        (tool_call,) = choice.message.tool_calls or []
        assert tool_call.function.name == "get_weather" and json.loads(tool_call.function.arguments) == {
            "city": "Paris"
        }
        run_id = first.model_extra["ponder"]["run_id"]  # type: ignore[index]
        assert first.model_extra["ponder"]["status"] == "waiting"  # type: ignore[index]
        messages += [choice.message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": tool_call.id, "content": "21 degrees, sunny"}]  # fmt: skip
        second = await client.chat.completions.create(model="ponder-react", messages=messages, tools=[WEATHER])
        assert second.choices[0].finish_reason == "stop"
        assert second.choices[0].message.content == "It is 21 degrees in Paris."
        assert second.model_extra["ponder"]["run_id"] == run_id  # type: ignore[index]  # the same durable run
        with pytest.raises(openai.ConflictError, match="not waiting for a tool result"):
            await client.chat.completions.create(model="ponder-react", messages=messages, tools=[WEATHER])
        with pytest.raises(openai.BadRequestError, match="names no tool call of a ponder run"):
            await client.chat.completions.create(
                model="ponder-react",
                messages=[*messages[:2], {"role": "tool", "tool_call_id": "call_abc", "content": "x"}],
            )
    # the tool's result reached the model as the tool call's output, in the same run
    seen = "\n".join(m.content for m in model.requests[1].messages)
    assert "21 degrees, sunny" in seen
    model.assert_complete()


class Product(BaseModel):
    value: int
    unit: str


async def test_a_strategy_model_answers_in_the_clients_schema(make_server: Callable[..., Server]) -> None:
    """ponder-cot reasons in its own way; response_format then writes its answer in the client's schema (one
    constrained call after the run, valid by construction), streamed or not; a malformed format is a 400 first."""

    def fn(request: ChatRequest) -> Any:
        if request.constraint is None:  # cot's free reasoning on an open question
            return "Six bags of seven apples: 6 * 7 = 42 apples.\nFinal answer: 42 apples"
        assert request.constraint.name == "Product" and request.temperature == 0.0
        assert "42 apples" in request.messages[-1].content  # the strategy's answer is what gets written
        return {"value": 42, "unit": "apples"}

    model = FunctionModel(fn)
    server = make_server(model=model)
    question = [{"role": "user", "content": "How many apples are in 6 bags of 7?"}]
    async with client_for(server) as client:
        parsed = await client.chat.completions.parse(model="ponder-cot", messages=question, response_format=Product)
        assert parsed.choices[0].message.parsed == Product(value=42, unit="apples")
        assert parsed.usage is not None and parsed.usage.completion_tokens > 0
        stream = await client.chat.completions.create(
            model="ponder-cot",
            messages=question,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "Product", "schema": Product.model_json_schema()},
            },
            stream=True,
        )
        content = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert json.loads(content) == {"value": 42, "unit": "apples"}
        with pytest.raises(openai.BadRequestError, match="needs a schema object"):
            await client.chat.completions.create(
                model="ponder-cot", messages=question, response_format={"type": "json_schema", "json_schema": {}}
            )
    assert len([r for r in model.requests if r.constraint is not None]) == 2  # the bad format started no run
