"""OpenTelemetry traces (issue 22): a run is one trace with its model calls (GenAI attributes; content only when
asked) and tool calls inside, and the trace context reaches a model server over HTTP. Spans are read with the
SDK's in-memory exporter; the model server is a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ponder.config import Backend, LLMSettings
from ponder.llm import ChatRequest, stream_or_complete, user
from ponder.llm.openai_compat import OpenAICompatModel
from ponder.telemetry import CAPTURE_ENV, TracedModel, run_span, tool_span
from tests.api.conftest import Server, collect
from tests.fakes import FunctionModel
from tests.toolserver.conftest import docker_client  # noqa: F401 - the fixture: the Docker engine, checked

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def provider() -> None:
    """The process's tracer provider, once (OpenTelemetry allows one); spans go to memory."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        sdk = TracerProvider()
        sdk.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(sdk)
    else:
        current.add_span_processor(SimpleSpanProcessor(EXPORTER))


@pytest.fixture(autouse=True)
def clean() -> None:
    EXPORTER.clear()


def spans(name_prefix: str) -> list[Any]:
    return [s for s in EXPORTER.get_finished_spans() if s.name.startswith(name_prefix)]


async def test_a_model_call_is_a_genai_span_inside_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    model = TracedModel(FunctionModel(lambda r: "forty-two"))
    with run_span("cot", "run_1"):
        await model.complete(ChatRequest(messages=[user("6*7?")], max_tokens=9, temperature=0.2, seed=3))
    (chat,) = spans("chat ")
    (run,) = spans("invoke_agent ")
    assert chat.parent is not None and chat.parent.span_id == run.context.span_id
    assert chat.context.trace_id == run.context.trace_id
    attrs = dict(chat.attributes)
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.request.model"] == "function"
    assert attrs["gen_ai.request.max_tokens"] == 9 and attrs["gen_ai.request.seed"] == 3
    assert attrs["gen_ai.usage.output_tokens"] == 1 and list(attrs["gen_ai.response.finish_reasons"]) == ["stop"]
    assert chat.events == ()  # no prompt or completion unless asked: privacy by default
    assert dict(run.attributes)["ponder.run_id"] == "run_1"

    monkeypatch.setenv(CAPTURE_ENV, "true")
    chunks = [c async for c in stream_or_complete(model, ChatRequest(messages=[user("again?")]))]
    assert chunks[-1].response is not None
    streamed = spans("chat ")[-1]
    events = {e.name: dict(e.attributes or {}) for e in streamed.events}
    assert json.loads(events["gen_ai.content.prompt"]["gen_ai.prompt"]) == [{"role": "user", "content": "again?"}]
    assert json.loads(events["gen_ai.content.completion"]["gen_ai.completion"]) == ["forty-two"]


async def test_a_failed_call_is_an_error_span() -> None:
    from ponder.errors import ModelUnavailable

    model = TracedModel(FunctionModel(lambda r: ModelUnavailable("down")))
    with pytest.raises(ModelUnavailable):
        await model.complete(ChatRequest(messages=[user("x")]))
    (chat,) = spans("chat ")
    assert chat.status.status_code.name == "ERROR" and dict(chat.attributes)["error.type"] == "ModelUnavailable"


@pytest.fixture
def model_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"id": "x", "object": "chat.completion", "model": "m", "usage": {},
                               "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                            "finish_reason": "stop"}]}).encode()  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    server.shutdown()
    server.server_close()


async def test_the_trace_context_reaches_the_model_server(model_server: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = model_server
    settings = LLMSettings(backend=Backend.vllm, base_url=url, model="m", max_retries=0)
    inner = OpenAICompatModel.from_settings(settings)
    with run_span("cot", "run_2"):
        await TracedModel(inner).complete(ChatRequest(messages=[user("hi")]))
    (chat,) = spans("chat ")
    _version, trace_id, span_id, _flags = seen[-1]["traceparent"].split("-")
    assert int(trace_id, 16) == chat.context.trace_id  # vLLM's own spans would join this trace
    assert int(span_id, 16) == chat.context.span_id


async def test_an_api_run_is_one_trace_with_its_model_calls(make_server: Callable[..., Server]) -> None:
    server = make_server()
    async with server.client() as client:
        run = (
            await client.post("/runs", json={"strategy": "steps", "input": {"question": "q"}, "options": {"steps": 2}})
        ).json()
        await collect(client, run["id"])
    (root,) = [s for s in spans("invoke_agent steps") if dict(s.attributes)["ponder.run_id"] == run["id"]]
    calls = [s for s in spans("chat ") if s.context.trace_id == root.context.trace_id]
    assert len(calls) == 2
    assert [e.attributes["name"] for e in root.events if e.name == "step"] == ["step 1", "step 2"]  # type: ignore[index]
    # each step is a span under the run's, holding the model call made in it
    steps = [s for s in spans("step ") if s.context.trace_id == root.context.trace_id]
    assert [s.name for s in steps] == ["step step 1", "step step 2"]
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in steps)
    assert [c.parent.span_id for c in calls if c.parent] == [s.context.span_id for s in steps]


async def test_a_direct_chat_is_a_genai_span(make_server: Callable[..., Server]) -> None:
    server = make_server()
    async with server.client() as client:
        reply = await client.post(
            "/v1/chat/completions", json={"model": "ponder-direct", "messages": [{"role": "user", "content": "hi"}]}
        )
    assert reply.status_code == 200
    (call,) = spans("chat ")
    attributes = dict(call.attributes)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.usage.output_tokens"] == reply.json()["usage"]["completion_tokens"]


def test_a_tool_span_names_the_tool() -> None:
    with tool_span("python") as span:
        span.set_attribute("ponder.tool.ok", True)
    (tool,) = spans("execute_tool ")
    assert dict(tool.attributes)["gen_ai.tool.name"] == "python"


@pytest.mark.docker
@pytest.mark.usefixtures("docker_client")
async def test_the_toolserver_joins_the_callers_trace() -> None:
    """A tool call over HTTP: the ToolServer's own spans (its request, the tool it ran) sit in the caller's trace,
    linked only by the traceparent header (the server task does not share the caller's context)."""
    from opentelemetry.trace import SpanKind

    from tests.toolserver.conftest import make_settings, running_http_manager

    async with running_http_manager(make_settings()) as running, running.client.session() as session:
        with tool_span("python") as caller:
            result = await session.call("python", {"code": "6 * 7"})
        failed = await session.call("shell", {"command": "exit 3"})
    assert result.ok and not failed.ok
    ran = [s for s in spans("execute_tool ") if s.kind == SpanKind.INTERNAL]
    assert [s.name for s in ran] == ["execute_tool python", "execute_tool shell"]
    assert ran[0].context.trace_id == caller.context.trace_id
    request = next(s for s in EXPORTER.get_finished_spans() if s.kind == SpanKind.SERVER and s.context.trace_id
                   == caller.context.trace_id)  # fmt: skip
    assert ran[0].parent is not None and request.parent is not None
    assert request.parent.span_id == caller.context.span_id  # the HTTP server span hangs under the caller's span
    assert dict(ran[0].attributes)["ponder.tool.ok"] is True
    assert dict(ran[1].attributes)["ponder.tool.ok"] is False and not ran[1].status.is_ok


def test_a_run_trace_reaches_an_otlp_receiver_on_loopback() -> None:
    """The exporter the standard OTEL_* variables configure, end to end (in a child process: a process has one
    tracer provider, and this one's belongs to the in-memory exporter)."""
    import os
    import subprocess
    import sys

    received: list[tuple[str, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script = (
        "from opentelemetry import trace\n"
        "from ponder.telemetry import run_span, setup_tracing, tool_span\n"
        "assert setup_tracing()\n"
        "with run_span('cot', 'run_otlp'), tool_span('python'):\n"
        "    pass\n"
        "trace.get_tracer_provider().shutdown()\n"
    )
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}"}
    try:
        subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    paths = {path for path, _ in received}
    body = b"".join(data for _, data in received)
    assert paths == {"/v1/traces"}
    assert b"invoke_agent cot" in body and b"execute_tool python" in body and b"run_otlp" in body


async def test_a_planner_run_is_one_trace_and_prompts_are_events_only_when_asked(
    make_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.agents.planner._script import answer, plan, submit
    from tests.fakes import ScriptedModel

    model = ScriptedModel([plan("multiply six by seven"), submit("42"), answer("42")] * 2)
    server = make_server(model=model)
    traces = []
    async with server.client() as client:
        for capture in ("false", "true"):
            monkeypatch.setenv(CAPTURE_ENV, capture)
            body = {"strategy": "planner", "input": {"question": "6 times 7?"}}
            run = (await client.post("/runs", json=body)).json()
            assert "final" in [e["event"] for e in await collect(client, run["id"])]
            (root,) = [s for s in spans("invoke_agent planner") if dict(s.attributes)["ponder.run_id"] == run["id"]]
            calls = [s for s in spans("chat ") if s.context.trace_id == root.context.trace_id]
            traces.append((root, calls))
    for root, calls in traces:
        assert len(calls) == 3  # plan, act (submit), answer
        (start,) = [s for s in spans("step start") if s.context.trace_id == root.context.trace_id]
        assert start.parent is not None and start.parent.span_id == root.context.span_id
        assert all(c.parent is not None and c.parent.span_id == start.context.span_id for c in calls)
        assert all(dict(c.attributes)["gen_ai.usage.output_tokens"] > 0 for c in calls)
    assert all(c.events == () for c in traces[0][1])  # off by default
    prompts = [dict(c.events[0].attributes or {})["gen_ai.prompt"] for c in traces[1][1]]
    assert "multiply six by seven" in prompts[1]  # the act step's prompt names its subtask
    model.assert_complete()


@pytest.mark.docker
@pytest.mark.usefixtures("docker_client")
async def test_an_mcts_run_traces_its_model_and_sandbox_calls() -> None:
    from ponder.agents import Context, run_to_result
    from ponder.agents import get_strategy as strategy_named
    from ponder.api._metrics import MeasuredToolServer, Metrics
    from ponder.config import ToolServerSettings
    from ponder.toolserver import build_toolserver
    from tests.agents.mcts.test_math import TASK, math_model, step

    plan = {0: [step("3 bags of 4", "3 * 4", False)] * 2, 1: [step("minus 2", "12 - 2", True)] * 2}
    settings = ToolServerSettings(instance="trace-test", pool_size=1, call_timeout_s=60.0)
    async with build_toolserver(settings) as ts:
        ctx = Context(model=TracedModel(math_model(plan)), toolserver=MeasuredToolServer(ts, Metrics()))
        with run_span("mcts-math", "run_m") as root:
            result = await run_to_result(strategy_named("mcts-math", budget=4, k=2, max_children=0).run(TASK, ctx))
    assert result.answer == 10.0
    inside = [s for s in EXPORTER.get_finished_spans() if s.context.trace_id == root.get_span_context().trace_id]
    chats = [s for s in inside if s.name.startswith("chat ")]
    tools = [s for s in inside if s.name.startswith("execute_tool ")]
    assert chats and tools  # the search's model calls and the arithmetic run in the sandbox, in one trace
    assert all(dict(s.attributes)["ponder.tool.ok"] for s in tools)
    assert {dict(s.attributes)["gen_ai.request.model"] for s in chats} == {"function"}


async def test_a_cot_run_traces_its_reasoning_and_answer_calls(make_server: Callable[..., Server]) -> None:
    server = make_server()
    async with server.client() as client:
        body = {"strategy": "cot", "input": {"question": "What is 2+2?", "family": "number"}}
        run = (await client.post("/runs", json=body)).json()
        assert "final" in [e["event"] for e in await collect(client, run["id"])]
    (root,) = [s for s in spans("invoke_agent cot") if dict(s.attributes)["ponder.run_id"] == run["id"]]
    calls = [s for s in spans("chat ") if s.context.trace_id == root.context.trace_id]
    assert len(calls) == 2  # the free reasoning, then the constrained answer
    assert all(dict(c.attributes)["gen_ai.operation.name"] == "chat" for c in calls)
    assert [dict(c.attributes)["ponder.constraint"] for c in calls] == ["none", "json_schema"]
