"""The REST API against a real server on a loopback port: runs, SSE, resume, cancel, catalog, health, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import BaseModel

from ponder.llm import ChatRequest, StreamChunk
from ponder.tools import ToolResult, ToolSpec
from tests.api.conftest import Server, collect, make_settings, reply, wait_status
from tests.fakes import FunctionModel


def ids(events: list[dict[str, Any]]) -> list[int]:
    return [int(e["id"]) for e in events if "id" in e]


async def test_cot_run_streams_events_and_stores_result(server: Server, model: Any) -> None:
    async with server.client() as client:
        created = await client.post("/runs", json={"strategy": "cot", "input": {"question": "What is 2+2?"}})
        assert created.status_code == 201, created.text
        run = created.json()
        assert run["status"] == "queued"
        assert run["id"].startswith("run_")
        events = await collect(client, run["id"])
        types = [e["event"] for e in events if "id" in e]
        assert types[0] == "step_started"
        assert "llm_call" in types
        assert types[-1] == "final"
        assert ids(events) == list(range(1, len(types) + 1))
        assert events[-1] == {"event": "end", "data": json.dumps({"status": "succeeded"})}
        final = json.loads(next(e["data"] for e in events if e.get("event") == "final"))
        assert final["text"] == "4"

        got = (await client.get(f"/runs/{run['id']}")).json()
        assert got["status"] == "succeeded"
        assert got["text"] == "4"
        assert got["result"]["details"]["reasoning"] == "2 plus 2 is 4"
        assert got["costs"]["llm_calls"] == 1
        assert got["costs"]["completion_tokens"] > 0
        # the question reached the model through the strategy
        assert "What is 2+2?" in model.requests[-1].messages[-1].content

        listed = (await client.get("/runs")).json()["runs"]
        assert [r["id"] for r in listed] == [run["id"]]
        assert (await client.get("/runs", params={"status": "failed"})).json()["runs"] == []


async def test_reconnect_with_last_event_id_gets_only_the_rest(server: Server) -> None:
    async with server.client() as client:
        run = (
            await client.post("/runs", json={"strategy": "steps", "input": {"question": "q"}, "options": {"steps": 4}})
        ).json()
        first = await collect(client, run["id"], limit=3)
        assert ids(first) == [1, 2, 3]
        rest = await collect(client, run["id"], headers={"Last-Event-ID": "3"})
        assert ids(rest) == list(range(4, 14))  # 4 steps x 3 events (step, model_call, llm_call) + final = 13
        assert rest[-1]["event"] == "end"
        # the query parameter does the same for clients that cannot set headers
        tail = []
        async with client.stream("GET", f"/runs/{run['id']}/events", params={"after": 7}) as response:
            from tests.api.conftest import read_sse

            async for event in read_sse(response):
                tail.append(event)
                if event.get("event") == "end":
                    break
        assert ids(tail) == list(range(8, 14))
        bad = await client.get(f"/runs/{run['id']}/events", headers={"Last-Event-ID": "abc"})
        assert bad.status_code == 422
        assert "Last-Event-ID" in bad.json()["error"]["message"]


async def test_live_stream_then_human_answer_resumes_the_same_stream(server: Server) -> None:
    async with server.client() as client, server.client() as other:
        run = (await client.post("/runs", json={"strategy": "ask", "input": {"question": "hi"}})).json()
        seen: list[dict[str, Any]] = []
        async with client.stream("GET", f"/runs/{run['id']}/events") as response:
            from tests.api.conftest import read_sse

            async for event in read_sse(response):
                seen.append(event)
                if event.get("event") == "needs_human":
                    waiting = await wait_status(other, run["id"], "waiting")
                    assert waiting["pending"]["question"] == "Who is asking 'hi'?"
                    interrupt = json.loads(event["data"])["interrupt_id"]
                    answered = await other.post(
                        f"/runs/{run['id']}/answer", json={"answer": "Ada", "interrupt_id": interrupt}
                    )
                    assert answered.status_code == 200, answered.text
                    assert answered.json()["status"] in ("running", "succeeded")
                if event.get("event") == "end":
                    break
        types = [e["event"] for e in seen if "id" in e]
        assert types == ["step_started", "needs_human", "step_started", "model_call", "final"]
        assert ids(seen) == [1, 2, 3, 4, 5]
        assert json.loads(seen[-1]["data"]) == {"status": "succeeded"}
        done = (await client.get(f"/runs/{run['id']}")).json()
        assert done["text"] == "hello, Ada"
        assert done["pending"] is None
        again = await client.post(f"/runs/{run['id']}/answer", json={"answer": "Bob"})
        assert again.status_code == 409
        assert "not waiting" in again.json()["error"]["message"]


async def test_answer_with_a_stale_interrupt_or_to_a_strategy_that_cannot_resume_is_409(server: Server) -> None:
    async with server.client() as client:
        run = (await client.post("/runs", json={"strategy": "ask", "input": {"question": "hi"}})).json()
        await wait_status(client, run["id"], "waiting")
        stale = await client.post(f"/runs/{run['id']}/answer", json={"answer": "x", "interrupt_id": "old"})
        assert stale.status_code == 409
        once = (await client.post("/runs", json={"strategy": "ask-once", "input": {"question": "hi"}})).json()
        await wait_status(client, once["id"], "waiting")
        refused = await client.post(f"/runs/{once['id']}/answer", json={"answer": "x"})
        assert refused.status_code == 409
        assert "cannot be resumed" in refused.json()["error"]["message"]
        # a waiting run can still be cancelled
        cancelled = await client.post(f"/runs/{once['id']}/cancel")
        assert cancelled.json()["status"] == "cancelled"


async def test_cancel_stops_a_running_run(make_server: Callable[..., Server]) -> None:
    from tests.fakes import FunctionModel

    async def slow(request: Any) -> str:
        await asyncio.sleep(30)
        return "never"

    server = make_server(model=FunctionModel(slow))
    async with server.client() as client:
        run = (
            await client.post("/runs", json={"strategy": "steps", "input": {"question": "q"}, "options": {"steps": 2}})
        ).json()
        await wait_status(client, run["id"], "running")
        await asyncio.sleep(0.05)
        cancelled = await client.post(f"/runs/{run['id']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["error"]["type"] == "Cancelled"
        events = await collect(client, run["id"])
        assert [e["event"] for e in events if "id" in e] == ["step_started", "error"]
        assert json.loads(events[-1]["data"]) == {"status": "cancelled"}
        assert (await client.post(f"/runs/{run['id']}/cancel")).status_code == 409


async def test_a_failing_model_fails_the_run_with_a_typed_error(make_server: Callable[..., Server]) -> None:
    from ponder.errors import ModelUnavailable
    from tests.fakes import FunctionModel

    server = make_server(model=FunctionModel(lambda r: ModelUnavailable("backend is down")))
    async with server.client() as client:
        run = (await client.post("/runs", json={"strategy": "cot", "input": {"question": "q"}})).json()
        events = await collect(client, run["id"])
        error = json.loads(next(e["data"] for e in events if e.get("event") == "error"))
        assert error["fatal"] is True
        assert error["error"]["type"] == "ModelUnavailable"
        got = (await client.get(f"/runs/{run['id']}")).json()
        assert got["status"] == "failed"
        assert got["error"]["message"] == "backend is down"
        assert "server" in got["error"]["hint"]


async def test_bad_requests_get_clear_typed_errors(server: Server) -> None:
    async with server.client() as client:
        unknown = await client.post("/runs", json={"strategy": "nope", "input": {"question": "q"}})
        assert unknown.status_code == 404
        assert "cot" in unknown.json()["error"]["hint"]
        bad_option = await client.post(
            "/runs", json={"strategy": "steps", "input": {"question": "q"}, "options": {"steps": "many", "x": 1}}
        )
        assert bad_option.status_code == 422
        message = bad_option.json()["error"]["message"]
        assert "steps" in message
        assert "x" in message
        empty = await client.post("/runs", json={"strategy": "cot", "input": {"question": ""}})
        assert empty.status_code == 422
        assert "question" in empty.json()["error"]["message"]
        missing = await client.get("/runs/run_doesnotexist")
        assert missing.status_code == 404


async def test_an_unknown_or_mistyped_option_is_a_422_for_every_strategy(server: Server) -> None:
    """Every registered strategy, by POST /runs and by /v1's ponder_options: the option is named, nothing runs;
    a misspelt domain option of MCTS names what the domain takes (it used to fail the run in the background)."""
    from ponder.agents import strategy_names

    async with server.client() as client:
        for name in strategy_names():
            body = {"strategy": name, "input": {"question": "q"}, "options": {"no_such_option": 1}}
            bad = await client.post("/runs", json=body)
            assert bad.status_code == 422, name
            assert "no_such_option" in bad.json()["error"]["message"], name
            chat = {"model": f"ponder-{name}", "messages": [{"role": "user", "content": "q"}],
                    "ponder_options": {"no_such_option": 1}}  # fmt: skip
            v1 = await client.post("/v1/chat/completions", json=chat)
            assert v1.status_code in (400, 422) and "no_such_option" in v1.json()["error"]["message"], name
        typo = {"strategy": "mcts-code", "input": {"question": "q"}, "options": {"domain_options": {"modle_tests": 1}}}
        bad = (await client.post("/runs", json=typo)).json()["error"]
        assert "domain_options.modle_tests" in bad["message"] and "domain_options takes: model_tests" in bad["hint"]
        math = {"strategy": "mcts-math", "input": {"question": "q"},
                "options": {"nodes": "programs", "domain_options": {"max_steps": 3}}}  # fmt: skip
        bad = await client.post("/runs", json=math)
        assert bad.status_code == 422 and "nodes=steps" in bad.json()["error"]["message"]
        assert (await client.get("/runs")).json()["runs"] == []  # nothing was queued
        described = (await client.get("/strategies")).json()
        code = next(s for s in described if s["name"] == "mcts-code")
        assert "model_tests" in json.dumps(code)  # the domain's options are described, not a bare object


async def test_catalog_health_metrics_and_ui(make_server: Callable[..., Server], tmp_path: Any) -> None:
    class PythonArgs(BaseModel):
        code: str

    class FakeSession:
        id = "s1"

        async def call(self, tool: str, args: dict[str, Any], *, timeout_s: float | None = None) -> ToolResult:
            return ToolResult(tool=tool, ok=True, output={"value": len(args["code"])}, seconds=0.01)

    class FakeToolServer:
        """A ToolServer at the seam: sessions that answer every call (the real one is tested in toolserver/)."""

        entered = 0

        async def __aenter__(self) -> FakeToolServer:
            FakeToolServer.entered += 1
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        @contextlib.asynccontextmanager
        async def session(self) -> AsyncIterator[FakeSession]:
            yield FakeSession()

        tools = (ToolSpec(name="python", description="run python", args_model=PythonArgs),)

        def specs(self) -> list[dict[str, Any]]:
            return [t.function_spec() for t in self.tools]

    from ponder.api import create_app
    from tests.api._strategies import TEST_STRATEGIES
    from tests.api.conftest import reply, serve
    from tests.fakes import FunctionModel

    app = create_app(
        make_settings(tmp_path), model=FunctionModel(reply), toolserver=FakeToolServer(), strategies=TEST_STRATEGIES
    )
    with serve(app) as server:
        async with server.client() as client:
            strategies = {s["name"]: s for s in (await client.get("/strategies")).json()}
            assert {"cot", "steps", "ask"} <= set(strategies)
            assert strategies["cot"]["model"] == "ponder-cot"
            assert strategies["ask"]["resumable"] is True
            assert strategies["cot"]["resumable"] is False
            assert strategies["steps"]["options_schema"]["properties"]["steps"]["type"] == "integer"
            tools = (await client.get("/tools")).json()
            assert tools == [
                {
                    "name": "python",
                    "description": "run python",
                    "parameters": PythonArgs.model_json_schema(),
                }
            ]
            run = (await client.post("/runs", json={"strategy": "cot", "input": {"question": "q"}})).json()
            await collect(client, run["id"])
            tool_run = (await client.post("/runs", json={"strategy": "uses-tool", "input": {"question": "6*7"}})).json()
            await collect(client, tool_run["id"])
            assert (await client.get(f"/runs/{tool_run['id']}")).json()["text"] == "3"
            assert FakeToolServer.entered == 1  # the app opened the ToolServer for its lifetime
            health = (await client.get("/healthz")).json()
            assert health == {"status": "ok", "model": "function", "database": "ok", "runs_active": 0,
                              "context_tokens": 4096, "max_question_chars": (4096 - 1024) * 3}  # fmt: skip
            metrics = (await client.get("/metrics")).text
            assert 'ponder_runs_total{status="succeeded",strategy="cot"} 1.0' in metrics
            assert 'ponder_llm_calls_total{outcome="ok",strategy="cot"} 1.0' in metrics
            assert 'ponder_llm_call_seconds_count{strategy="cot"} 1.0' in metrics
            assert 'ponder_events_total{type="final"} 2.0' in metrics
            assert "ponder_toolserver_sessions_total 1.0" in metrics
            assert "ponder_toolserver_sessions_active 0.0" in metrics
            assert 'ponder_tool_calls_total{ok="true",tool="python"} 1.0' in metrics
            assert 'ponder_tool_call_seconds_count{tool="python"} 1.0' in metrics
            page = await client.get("/")
            assert page.status_code == 200
            assert "<title>ponder" in page.text
            docs = (await client.get("/openapi.json")).json()
            assert "/runs/{run_id}/events" in docs["paths"]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::"])
def test_an_open_server_refuses_public_addresses(tmp_path: Any, host: str) -> None:
    from ponder.api import create_app
    from ponder.errors import ConfigError

    settings = make_settings(tmp_path)
    settings.api.host = host
    with pytest.raises(ConfigError, match="without API keys"):
        create_app(settings, model=object())  # type: ignore[arg-type]
    settings = make_settings(tmp_path, keys=["k1"])
    settings.api.host = host
    create_app(settings, model=object())  # type: ignore[arg-type]


async def test_the_planner_asks_through_the_api_and_resumes_from_its_checkpoint(
    make_server: Callable[..., Server],
) -> None:
    from tests.agents.planner._script import answer, call, plan, submit
    from tests.fakes import ScriptedModel

    model = ScriptedModel([plan("ask"), call("ask_human", question="What is x?")])
    server = make_server(model=model)
    async with server.client() as client:
        run = (await client.post("/runs", json={"strategy": "planner", "input": {"question": "x?"}})).json()
        waiting = await wait_status(client, run["id"], "waiting", "failed")
        assert waiting["status"] == "waiting", waiting["error"]
        assert waiting["pending"]["question"] == "What is x?"
        model.add(submit("x is 3"), answer("3"))
        resumed = await client.post(f"/runs/{run['id']}/answer", json={"answer": "x is 3"})
        assert resumed.status_code == 200, resumed.text
        done = await wait_status(client, run["id"], "succeeded", "failed")
        assert done["status"] == "succeeded", done["error"]
        assert done["text"] == "3"
        assert done["result"]["details"]["human"] == [{"question": "What is x?", "answer": "x is 3"}]
        events = await collect(client, run["id"])
        assert ids(events) == list(range(1, len(ids(events)) + 1))
        model.assert_complete()


class _StreamingModel(FunctionModel):
    """The conftest's fake model, streaming its reply in 3-character pieces as a streaming backend does."""

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        response = await self.complete(request)
        text = response.text
        for i in range(0, len(text), 3):
            yield StreamChunk(delta=text[i : i + 3])
        yield StreamChunk(response=response)


async def test_run_streams_the_reasoning_token_by_token_when_the_model_streams(
    make_server: Callable[..., Server],
) -> None:
    model = _StreamingModel(reply)
    server = make_server(model=model)
    async with server.client() as client:
        run = (await client.post("/runs", json={"strategy": "cot", "input": {"question": "What is 2+2?"}})).json()
        events = await collect(client, run["id"])
    deltas = [json.loads(e["data"]) for e in events if e.get("event") == "text_delta"]
    reasoning = [d["text"] for d in deltas if d["field"] == "reasoning"]
    assert len(reasoning) > 1, deltas  # pieces as they arrive, not the whole reasoning in one event
    assert "".join(reasoning) == "2 plus 2 is 4"
    async with server.client() as client:
        text = (await client.get("/metrics")).text
    assert 'ponder_llm_calls_total{outcome="ok",strategy="cot"} 1.0' in text


async def test_a_slow_model_call_streams_progress_and_the_log_has_a_line_per_step(
    make_server: Callable[..., Server], caplog: pytest.LogCaptureFixture
) -> None:
    async def slow(request: ChatRequest) -> Any:
        await asyncio.sleep(2.3)  # the run reports each second while a call runs
        return reply(request)

    server = make_server(model=FunctionModel(slow))
    with caplog.at_level("INFO", logger="ponder.api._runs"):
        async with server.client(timeout=30) as client:
            run = (
                await client.post(
                    "/runs", json={"strategy": "steps", "input": {"question": "q"}, "options": {"steps": 2}}
                )
            ).json()
            events = await collect(client, run["id"])
    progress = [json.loads(e["data"]) for e in events if e.get("event") == "progress"]
    by_call = {p["call"]: [q["phase"] for q in progress if q["call"] == p["call"]] for p in progress}
    assert sorted(by_call) == [1, 2]
    for phases in by_call.values():  # this fake cannot tell how far it is: it waits, then it is done
        assert phases[-1] == "done" and set(phases[:-1]) == {"waiting"} and len(phases) >= 2
    assert all(p["seconds"] >= 0.9 for p in progress)
    lines = [r.getMessage() for r in caplog.records if run["id"] in r.getMessage()]
    assert any("step step 1" in line for line in lines) and any("step step 2" in line for line in lines)
    assert any("llm step 2:" in line for line in lines) and any("answered:" in line for line in lines)
    assert not any("progress" in line for line in lines)  # ticks stay in the stream, out of the log
