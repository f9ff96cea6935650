"""A small MCP server for the planner's MCP tests: over stdio (``python -m tests.agents.planner._mcp_shop``) or
over streamable HTTP on loopback (``... --port N``, at ``http://127.0.0.1:N/mcp``)."""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer(name="shop")


@server.tool(description="The price of an item in the shop, in euros.")
def price(item: str) -> dict[str, object]:
    return {"item": item, "euros": {"apple": 0.5, "pear": 0.75}.get(item, 1.0)}


@server.tool(description="Never answers.")
async def hang() -> str:
    await asyncio.sleep(3600)
    return "never"


@server.tool(description="Kills the server.")
def crash() -> str:
    os._exit(3)


@server.tool(description="Not offered: the allow-list leaves it out.")
def secret() -> str:
    return "the vault code"


if __name__ == "__main__":
    if "--port" in sys.argv:
        import uvicorn

        port = int(sys.argv[sys.argv.index("--port") + 1])
        uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")
    else:
        asyncio.run(server.run_stdio_async())
