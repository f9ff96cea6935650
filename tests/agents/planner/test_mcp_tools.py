"""MCP servers as the planner's tools (issue 22), with a real MCP server over stdio: its tools offered under their
schemas and allow-list, called, a hang and a crash failing one call each (not the run), an unreachable server left
out with the reason, and a private URL refused by the SSRF policy."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from ponder.agents import Context, FinalAnswer, StepStarted, Task, ToolReturned, get_strategy
from ponder.config import MCPServerSettings
from ponder.tools._mcp import mcp_tools
from tests._serving import free_port, serving
from tests.agents.planner._script import answer, call, plan, submit
from tests.fakes import ScriptedModel

SHOP = MCPServerSettings(
    name="shop",
    command=[sys.executable, "-m", "tests.agents.planner._mcp_shop"],
    allow=["price", "hang", "crash"],
    timeout_s=3,
)


async def run(model: ScriptedModel, servers: list[MCPServerSettings], tmp_path: Any) -> list[Any]:
    ctx = Context(model, mcp_servers=servers, checkpoint_url=f"sqlite:///{tmp_path / 'cp.sqlite'}")
    planner = get_strategy("planner", ask_human=False)
    return [e async for e in planner.run(Task(question="What do two apples cost?", family="number"), ctx)]


async def test_the_planner_calls_mcp_tools_and_survives_a_hang_and_a_crash(tmp_path: Any) -> None:
    model = ScriptedModel(
        [
            plan("find the price of an apple and double it"),
            call("shop_hang"),  # times out: the call fails, the run goes on
            call("shop_price", item="apple"),
            submit("an apple costs 0.5 euros, two cost 1.0"),
            answer(1.0),
        ]
    )
    events = await run(model, [SHOP], tmp_path)
    final = events[-1]
    assert isinstance(final, FinalAnswer) and final.answer == 1.0
    results = [e for e in events if isinstance(e, ToolReturned)]
    assert [r.tool for r in results] == ["shop_hang", "shop_price"]
    assert not results[0].ok and "did not answer 'hang' within 3 s" in (results[0].error or "")
    assert results[1].ok and results[1].output == {"item": "apple", "euros": 0.5}
    # the call was constrained like any other tool's: the price tool's argument schema, the secret tool not offered
    schema = model.requests[1].constraint.json_schema  # type: ignore[union-attr]
    text = str(schema)
    assert "shop_price" in text and "shop_hang" in text and "shop_secret" not in text


async def test_a_crashed_server_fails_its_calls_with_a_clear_error() -> None:
    async with mcp_tools([SHOP]) as (tools, problems):
        assert problems == []
        by_name = {t.spec.name: t for t in tools}
        assert set(by_name) == {"shop_price", "shop_hang", "shop_crash"}
        crashed = await by_name["shop_crash"].run({})
        assert not crashed.ok and "MCP server 'shop'" in (crashed.error or "")
        after = await by_name["shop_price"].run({"item": "pear"})
        assert not after.ok  # the server is gone: each later call fails, clearly, without raising


async def test_unreachable_and_private_servers_are_left_out_with_the_reason(tmp_path: Any) -> None:
    missing = MCPServerSettings(name="ghost", command=["/nonexistent/mcp-server"])
    private = MCPServerSettings(name="internal", url="http://127.0.0.1:9/mcp")
    async with mcp_tools([missing, private, SHOP]) as (tools, problems):
        assert {t.server for t in tools} == {"shop"}
        assert any("'ghost' is unavailable" in p for p in problems)
        assert any("'internal'" in p and "loopback, private or link-local" in p for p in problems)
    model = ScriptedModel([plan("price"), call("shop_price", item="pear"), submit("0.75"), answer(0.75)])
    events = await run(model, [private, SHOP], tmp_path)
    assert any(isinstance(e, StepStarted) and e.name == "tools" and "internal" in e.detail for e in events)
    assert isinstance(events[-1], FinalAnswer) and events[-1].answer == 0.75


@pytest.fixture
def shop_over_http() -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "tests.agents.planner._mcp_shop", "--port", str(port)]
    with serving(argv, f"http://127.0.0.1:{port}/mcp") as url:
        yield url


async def test_react_calls_a_tool_of_a_streamable_http_server(shop_over_http: str, tmp_path: Any) -> None:
    shop = MCPServerSettings(name="shop", url=shop_over_http, allow=["price"], allow_private=True, timeout_s=10)
    model = ScriptedModel([call("shop_price", item="pear"), submit("a pear costs 0.75"), answer(0.75)])
    ctx = Context(model, mcp_servers=[shop], checkpoint_url=f"sqlite:///{tmp_path / 'cp.sqlite'}")
    react = get_strategy("react", ask_human=False)
    events = [e async for e in react.run(Task(question="What does a pear cost?", family="number"), ctx)]
    (result,) = [e for e in events if isinstance(e, ToolReturned)]
    assert result.ok and result.output == {"item": "pear", "euros": 0.75}
    assert isinstance(events[-1], FinalAnswer) and events[-1].answer == 0.75
    # without allow_private the same loopback URL is refused by the SSRF policy, before any connection
    guarded = shop.model_copy(update={"allow_private": False})
    async with mcp_tools([guarded]) as (tools, problems):
        assert tools == [] and "loopback, private or link-local" in problems[0]
