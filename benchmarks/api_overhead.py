"""What the API server adds per LLM call, and how many runs it carries, against a fast fake backend.

The backend is a ChatModel at the seam that answers at once, and notes when each call arrives. A strategy that
makes K calls in a row is run twice:

* **direct**: the strategy driven in this process with no server (the baseline);
* **served**: the same strategy as a run of the real API server (uvicorn on a loopback port, SQLite store), with
  its metering, events, persistence and SSE fan-out.

The interval between two consecutive calls of a run is the time the code between them took; the server's added
latency per LLM call is the median served interval minus the median direct interval (target: under 1 ms). The raw
backend call's own time is reported too. Throughput: N runs started at once over HTTP, each followed over SSE to
its end. Also reported: the round trip of one non-streaming ``/v1/chat/completions`` request.

    python benchmarks/api_overhead.py                      # 200 concurrent runs of 3 calls, 400-call latency run
    python benchmarks/api_overhead.py --runs 50 --calls 100

Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import uvicorn

from ponder.agents import Context, Event, FinalAnswer, LLMCall, StepStarted, StrategyResult, Task
from ponder.api import create_app
from ponder.config import APISettings, Settings
from ponder.llm import Capabilities, ChatRequest, ChatResponse, Choice, JsonSchemaConstraint, Usage, user


class FastModel:
    """Answers at once; records the arrival time of every call."""

    name = "fast-fake"
    capabilities = Capabilities(constraints=frozenset({"json_schema", "regex", "choice"}))

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}

    async def complete(self, request: ChatRequest) -> ChatResponse:
        key = request.messages[-1].content.split("#", 1)[0]
        self.arrivals.setdefault(key, []).append(time.perf_counter())
        text = '{"reasoning": "fast", "answer": "4"}' if isinstance(request.constraint, JsonSchemaConstraint) else "ok"
        return ChatResponse(
            model=self.name, choices=[Choice(text=text)], usage=Usage(prompt_tokens=5, completion_tokens=1)
        )


class Loop:
    """K model calls in a row, each announced and reported as events (as real strategies do)."""

    name: ClassVar[str] = "loop"
    description: ClassVar[str] = "benchmark: K calls in a row"

    def __init__(self, calls: int = 3) -> None:
        self.calls = calls

    async def run(self, task: Task, ctx: Context) -> AsyncIterator[Event]:
        text = ""
        for i in range(self.calls):
            yield StepStarted(name=f"call {i}")
            response = await ctx.model.complete(ChatRequest(messages=[user(f"{task.question}#{i}")]))
            text = response.text
            yield LLMCall(purpose="step", prompt_tokens=5, completion_tokens=1, output=text)
        result = StrategyResult(answer=text, text=text)
        yield FinalAnswer(answer=text, text=text, result=result.model_dump(mode="json"))


def intervals(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class ServerThread:
    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.app = app
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, timeout_keep_alive=60)
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.app.state.service.events.end_streams()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


async def follow(client: httpx.AsyncClient, run_id: str) -> tuple[str, list[int]]:
    ids: list[int] = []
    status = ""
    async with client.stream("GET", f"/runs/{run_id}/events") as response:
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("id:"):
                ids.append(int(line[3:]))
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "end":
                status = json.loads(line[5:])["status"]
                break
    return status, ids


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="concurrent runs for the throughput figure")
    parser.add_argument("--calls", type=int, default=400, help="LLM calls of the latency run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = FastModel()
    raw: list[float] = []
    request = ChatRequest(messages=[user("raw#0")])
    for _ in range(2000):
        t0 = time.perf_counter()
        await model.complete(request)
        raw.append(time.perf_counter() - t0)

    direct: list[float] = []
    for r in range(args.repeats):
        ctx = Context(model=model)
        async for _ in Loop(args.calls).run(Task(question=f"direct{r}"), ctx):
            pass
        direct += intervals(model.arrivals[f"direct{r}"])

    served: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), api=APISettings(database_url=f"sqlite:///{tmp}/runs.sqlite"))
        app = create_app(settings, model=model, strategies={"loop": Loop})
        with ServerThread(app) as server:
            limits = httpx.Limits(max_connections=args.runs + 10, max_keepalive_connections=args.runs + 10)
            async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
                for r in range(args.repeats):
                    body = {"strategy": "loop", "input": {"question": f"served{r}"}, "options": {"calls": args.calls}}
                    run = (await client.post("/runs", json=body)).json()
                    status, _ = await follow(client, run["id"])
                    assert status == "succeeded", status
                    served += intervals(model.arrivals[f"served{r}"])

                roundtrips = []
                for _ in range(30):
                    t0 = time.perf_counter()
                    response = await client.post(
                        "/v1/chat/completions",
                        json={"model": "ponder-cot", "messages": [{"role": "user", "content": "2+2?"}]},
                    )
                    roundtrips.append(time.perf_counter() - t0)
                    assert response.status_code == 200, response.text

                t0 = time.perf_counter()
                bodies = [
                    {"strategy": "loop", "input": {"question": f"load{i}"}, "options": {"calls": 3}}
                    for i in range(args.runs)
                ]
                created = await asyncio.gather(*(client.post("/runs", json=b) for b in bodies))
                results = await asyncio.gather(*(follow(client, c.json()["id"]) for c in created))
                elapsed = time.perf_counter() - t0
    errors = sum(1 for status, _ in results if status != "succeeded")
    gaps = sum(1 for _, ids in results if ids != list(range(1, len(ids) + 1)))

    added = statistics.median(served) - statistics.median(direct)
    figures = {
        "raw_call_p50_us": round(statistics.median(raw) * 1e6, 2),
        "direct_interval_p50_us": round(statistics.median(direct) * 1e6, 1),
        "served_interval_p50_us": round(statistics.median(served) * 1e6, 1),
        "served_interval_p90_us": round(p(served, 0.9) * 1e6, 1),
        "added_latency_per_llm_call_p50_ms": round(added * 1e3, 4),
        "target_ms": 1.0,
        "meets_target": added < 1e-3,
        "chat_completion_roundtrip_p50_ms": round(statistics.median(roundtrips) * 1e3, 2),
        "load_runs": args.runs,
        "load_errors": errors,
        "load_streams_with_gaps": gaps,
        "load_seconds": round(elapsed, 2),
        "runs_per_s": round(args.runs / elapsed, 1),
        "llm_calls_per_s": round(3 * args.runs / elapsed, 1),
    }
    print(f"raw backend call p50: {figures['raw_call_p50_us']} µs")
    print(f"interval between LLM calls, direct p50: {figures['direct_interval_p50_us']} µs")
    print(f"interval between LLM calls, served p50: {figures['served_interval_p50_us']} µs")
    ratio = statistics.median(served) / statistics.median(direct)
    print(f"added per LLM call p50: {figures['added_latency_per_llm_call_p50_ms']} ms (x{ratio:.2f} of direct)")
    print(f"/v1/chat/completions round trip p50: {figures['chat_completion_roundtrip_p50_ms']} ms")
    print(f"{args.runs} concurrent runs: {elapsed:.2f} s, {figures['runs_per_s']} runs/s, {errors} errors")
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
