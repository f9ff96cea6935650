"""``ponder mcp`` (issue 22): the sandbox tools over MCP, with the official SDK's client, in process, over stdio
(a real subprocess) and over streamable HTTP behind an API key. Every call runs in the real Docker sandbox."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest
from mcp import Client, StdioServerParameters

from ponder.config import ToolServerSettings
from ponder.mcp_server import build_mcp_server
from tests._serving import free_port, serving


def sandbox_settings() -> ToolServerSettings:
    return ToolServerSettings(instance=f"mcp-{uuid.uuid4().hex[:8]}", pool_size=1, call_timeout_s=60.0)


async def test_the_sandbox_tools_over_mcp_in_process() -> None:
    server = build_mcp_server(sandbox_settings())
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"python", "shell", "files"}
        assert tools["python"].input_schema["required"] == ["code"]
        assert set(tools["files"].input_schema["properties"]["op"]["enum"]) == {"list", "read", "write"}
        ran = await client.call_tool("python", {"code": "x = 6 * 7\nprint(x)"})
        assert not ran.is_error and "42" in str(ran.structured_content)
        again = await client.call_tool("python", {"code": "print(x + 1)"})  # one stateful session per server
        assert "43" in str(again.structured_content)
        wrote = await client.call_tool("files", {"op": "write", "path": "notes.txt", "content": "hello"})
        assert not wrote.is_error
        listed = await client.call_tool("shell", {"command": "cat notes.txt && whoami && id -u"})
        assert "hello" in str(listed.structured_content) and "root" not in str(listed.structured_content)
        offline = await client.call_tool("shell", {"command": "getent hosts example.com || echo no-network"})
        assert "no-network" in str(offline.structured_content)
        bad = await client.call_tool("files", {"op": "read", "path": "../../etc/shadow"})
        assert bad.is_error  # a refused call is an error result, and the server keeps serving
        assert not (await client.call_tool("python", {"code": "print(1)"})).is_error


async def test_ponder_mcp_over_stdio_is_a_real_mcp_server() -> None:
    env = {**os.environ, "PONDER_TOOLSERVER__INSTANCE": f"mcp-{uuid.uuid4().hex[:8]}"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "ponder.cli", "mcp"], env=env)
    async with Client(params) as client:
        assert {t.name for t in (await client.list_tools()).tools} == {"python", "shell", "files"}
        result = await client.call_tool("shell", {"command": "echo $((2 + 3))"})
        assert "5" in str(result.structured_content)


@pytest.fixture
def http_server() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PONDER_API__API_KEYS": '["mcp-key"]', "PONDER_TOOLSERVER__INSTANCE": f"mcp-{port}"}
    argv = [sys.executable, "-m", "ponder.cli", "mcp", "--http", "--port", str(port)]
    with serving(argv, f"http://127.0.0.1:{port}/mcp", env=env) as url:
        yield url


async def test_mcp_over_http_needs_the_api_key(http_server: str) -> None:
    from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

    async with httpx.AsyncClient() as http:
        refused = await http.post(http_server, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert refused.status_code == 401 and "needs an API key" in refused.text
    async with (
        create_mcp_http_client(headers={"Authorization": "Bearer mcp-key"}) as http2,
        Client(streamable_http_client(http_server, http_client=http2)) as client,  # type: ignore[arg-type]
    ):
        result = await client.call_tool("python", {"code": "print(sum(range(5)))"})
        assert "10" in str(result.structured_content)


async def test_ask_ponder_runs_a_strategy_for_an_mcp_client() -> None:
    from ponder.config import Settings
    from ponder.llm import ChatRequest
    from ponder.mcp_server import StrategyRunner
    from tests.fakes import FunctionModel

    def model(request: ChatRequest) -> str:  # pot's program; the sandbox computes what it prints
        return "```python\napples = 3 * 4\nprint(apples - 2)\n```"

    settings = Settings()
    settings.toolserver = sandbox_settings()
    runner = StrategyRunner(settings, model=FunctionModel(model))
    server = build_mcp_server(settings.toolserver, strategies=runner)
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"python", "shell", "files", "ask_ponder"}
        assert "number" in tools["ask_ponder"].input_schema["properties"]["answer_type"]["enum"]
        asked = {"question": "3 bags of 4 apples, 2 eaten: how many left?", "strategy": "pot", "answer_type": "number"}
        result = await client.call_tool("ask_ponder", asked)
        assert not result.is_error, result
        out = result.structured_content
        assert out is not None and out["answer"] == 10.0 and out["llm_calls"] == 1 and out["strategy"] == "pot"
        unknown = await client.call_tool("ask_ponder", {"question": "x", "strategy": "oracle"})
        assert unknown.is_error and "unknown strategy 'oracle'" in str(unknown.content)
