"""MCP servers as tools: each configured server (a stdio command or a streamable-HTTP URL) is connected with the
official ``mcp`` SDK's client, its tools (filtered by the server's allow-list) become :class:`ToolSpec` s whose JSON
schemas constrain the model's calls like any other tool's, and a call goes to the server with a time limit. A server
that cannot be reached leaves its tools out (the reason is reported); one that dies or hangs fails that call, never
the run. Remote URLs obey the browsing SSRF policy."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from ponder.config import MCPServerSettings
from ponder.errors import PonderError
from ponder.netguard import AddressGuard
from ponder.tools._protocols import ToolResult
from ponder.tools._spec import ToolSpec, spec_from_function

Runner = Callable[[dict[str, Any]], Awaitable[ToolResult]]


@dataclass(frozen=True)
class MCPTool:
    server: str
    spec: ToolSpec
    run: Runner


async def _target(server: MCPServerSettings, stack: contextlib.AsyncExitStack) -> Any:
    if server.command:
        return StdioServerParameters(command=server.command[0], args=server.command[1:], env=server.env or None)
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    # the SDK does not close an HTTP client it is given: the stack does, after the session
    http = await stack.enter_async_context(create_mcp_http_client(headers=server.headers))
    return streamable_http_client(str(server.url), http_client=http)


def _output(result: Any) -> dict[str, Any]:
    if isinstance(result.structured_content, dict):
        return dict(result.structured_content)
    texts = [c.text for c in result.content if getattr(c, "type", "") == "text"]
    return {"text": "\n".join(texts)}


def _runner(server: MCPServerSettings, client: Client, tool: str, exposed: str) -> Runner:
    async def run(args: dict[str, Any]) -> ToolResult:
        start = time.perf_counter()
        from ponder.telemetry import tool_span

        try:
            with tool_span(exposed, "mcp"), anyio.fail_after(server.timeout_s):
                result = await client.call_tool(tool, args)
        except TimeoutError:
            error: str | None = f"MCP server {server.name!r} did not answer {tool!r} within {server.timeout_s:g} s"
            return ToolResult(tool=exposed, ok=False, error=error, seconds=time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - a dead server or a protocol error fails this call only
            error = f"MCP server {server.name!r} failed on {tool!r}: {type(exc).__name__}: {exc}"
            return ToolResult(tool=exposed, ok=False, error=error, seconds=time.perf_counter() - start)
        output = _output(result)
        error = str(output.get("text") or "the tool reported an error") if result.is_error else None
        return ToolResult(
            tool=exposed, ok=not result.is_error, output=output, error=error, seconds=time.perf_counter() - start
        )

    return run


@contextlib.asynccontextmanager
async def mcp_tools(servers: Sequence[MCPServerSettings]) -> AsyncIterator[tuple[list[MCPTool], list[str]]]:
    """Connect every server for the block's duration: (the tools offered, why some server is left out). A URL
    server must resolve to public addresses unless it allows private ones (the same policy as browsing)."""

    tools: list[MCPTool] = []
    problems: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        for server in servers:
            try:
                if server.url:
                    await AddressGuard(server.allow_private).check_public(server.url)
                client = Client(await _target(server, stack), read_timeout_seconds=server.timeout_s)
                await stack.enter_async_context(_quiet_exit(client))
                listed = (await client.list_tools()).tools
            except PonderError as exc:
                problems.append(f"MCP server {server.name!r}: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - a server that cannot start leaves its tools out
                problems.append(f"MCP server {server.name!r} is unavailable: {type(exc).__name__}: {exc}")
                continue
            for tool in listed:
                if server.allow and tool.name not in server.allow:
                    continue
                exposed = f"{server.name}_{tool.name}"
                spec = _spec(exposed, tool)
                tools.append(MCPTool(server.name, spec, _runner(server, client, tool.name, exposed)))
        yield tools, problems


def _spec(exposed: str, tool: Any) -> ToolSpec:
    function = {"name": exposed, "description": tool.description or "", "parameters": tool.input_schema or {}}
    return spec_from_function(function)


@contextlib.asynccontextmanager
async def _quiet_exit(client: Client) -> AsyncIterator[Client]:
    """The client's context; a server that died is not an error when the run closes it."""
    await client.__aenter__()
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            await client.__aexit__(None, None, None)
