"""Load: 200 runs started at once against a fast fake backend all finish, each stream complete and in order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from tests.api.conftest import Server, read_sse

RUNS = 200


async def follow(client: httpx.AsyncClient, run_id: str) -> tuple[str, list[int], list[str]]:
    ids: list[int] = []
    types: list[str] = []
    async with client.stream("GET", f"/runs/{run_id}/events") as response:
        assert response.status_code == 200
        async for event in read_sse(response):
            if event.get("event") == "end":
                return json.loads(event["data"])["status"], ids, types
            if "id" in event:
                ids.append(int(event["id"]))
                types.append(event["event"])
    return "stream ended early", ids, types


@pytest.mark.slow
async def test_200_concurrent_runs_complete_without_errors(make_server: Callable[..., Server]) -> None:
    server = make_server()
    limits = httpx.Limits(max_connections=RUNS + 20, max_keepalive_connections=RUNS + 20)
    async with server.client(limits=limits, timeout=120) as client:
        bodies = [{"strategy": "steps", "input": {"question": f"q{i}"}, "options": {"steps": 3}} for i in range(RUNS)]
        created = await asyncio.gather(*(client.post("/runs", json=body) for body in bodies))
        assert [c.status_code for c in created] == [201] * RUNS
        results = await asyncio.gather(*(follow(client, c.json()["id"]) for c in created))
        assert [status for status, _, _ in results] == ["succeeded"] * RUNS
        for _, ids, types in results:
            assert ids == list(range(1, 11))
            assert types == ["step_started", "model_call", "llm_call"] * 3 + ["final"]
        listed = (await client.get("/runs", params={"limit": 500, "status": "succeeded"})).json()["runs"]
        assert len(listed) == RUNS
        metrics = (await client.get("/metrics")).text
        assert f'ponder_runs_total{{status="succeeded",strategy="steps"}} {RUNS}.0' in metrics
        assert f'ponder_llm_calls_total{{outcome="ok",strategy="steps"}} {3 * RUNS}.0' in metrics
