"""Per-key limits (issue 20): requests per window, runs at once, a run's token budget; 429 with Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import openai
import pytest

from ponder.api._limits import KeyLimits
from ponder.errors import ConfigError
from ponder.llm import ChatRequest
from tests.api._support import reply
from tests.api.conftest import Server, wait_status
from tests.fakes import FunctionModel


async def test_a_key_past_its_rate_gets_429_with_retry_after_and_others_do_not(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(keys=["k1", "k2"], api={"rate_limit": "3/minute"})
    async with server.client("k1") as one, server.client("k2") as two:
        assert [(await one.get("/runs")).status_code for _ in range(3)] == [200, 200, 200]
        refused = await one.get("/runs")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert (
            refused.json()["error"]["type"] == "RateLimited" and "3 per 1 minute" in refused.json()["error"]["message"]
        )
        assert (await two.get("/runs")).status_code == 200  # counted per key
        metrics = (await two.get("/metrics")).text
    assert 'ponder_limited_total{limit="rate"} 1.0' in metrics
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="k1", max_retries=0)
    async with client:
        with pytest.raises(openai.RateLimitError):  # OpenAI's shape and status on /v1
            await client.models.list()


async def test_runs_at_once_per_key(make_server: Callable[..., Server]) -> None:
    async def slow(request: ChatRequest) -> object:
        await asyncio.sleep(1.5)
        return reply(request)

    server = make_server(keys=["k1", "k2"], model=FunctionModel(slow), api={"max_active_runs_per_key": 1})
    body = {"strategy": "steps", "input": {"question": "q"}, "options": {"steps": 1}}
    async with server.client("k1", timeout=30) as one, server.client("k2", timeout=30) as two:
        first = (await one.post("/runs", json=body)).json()
        second = await one.post("/runs", json=body)
        assert second.status_code == 429 and "Retry-After" in second.headers
        assert "1 runs queued or running" in second.json()["error"]["message"]
        assert (await two.post("/runs", json=body)).status_code == 201  # another key is not held back
        await wait_status(one, first["id"], "succeeded")
        assert (await one.post("/runs", json=body)).status_code == 201  # room again once it finished


async def test_a_run_stops_at_its_token_budget(make_server: Callable[..., Server]) -> None:
    server = make_server(api={"run_token_budget": 10})
    async with server.client() as client:
        run = (
            await client.post("/runs", json={"strategy": "steps", "input": {"question": "q"}, "options": {"steps": 8}})
        ).json()
        done = await wait_status(client, run["id"], "failed", "succeeded")
    assert done["status"] == "failed" and done["error"]["type"] == "BudgetExhausted"
    assert 1 <= done["costs"]["llm_calls"] < 8  # stopped when the budget was spent, not before the first call


async def test_a_direct_request_is_held_to_the_token_budget_and_traced(make_server: Callable[..., Server]) -> None:
    """ponder-direct goes through the API's one model decorator: the name probe's tokens count against the
    request's budget, so the call after it is refused (429, OpenAI's answer to a spent quota); each call is metered
    under the "direct" label."""
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    server = make_server(api={"run_token_budget": 10})
    async with server.client() as client:
        body = {"model": "ponder-direct", "messages": [{"role": "user", "content": "weather?"}], "tools": [weather]}
        refused = await client.post("/v1/chat/completions", json=body)
        assert refused.status_code == 429, refused.text
        assert "budget is 10" in refused.json()["error"]["message"]
        plain = await client.post("/v1/chat/completions", json={**body, "tools": None})
        assert plain.status_code == 200  # a fresh request, a fresh budget: one call fits
        metrics = (await client.get("/metrics")).text
    assert 'ponder_llm_calls_total{outcome="ok",strategy="direct"} 2.0' in metrics


def test_a_bad_rate_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a rate"):
        KeyLimits("many per minute")
    assert not KeyLimits("").enabled
