"""``ponder mcp``: the hardened sandbox as an MCP server, so an MCP client (Claude Desktop, an IDE, another agent)
can run Python and shell commands and edit files in it. Built on the official ``mcp`` SDK (its ``MCPServer``); the
tools are thin typed wrappers over a ToolServer session, so every call runs in the same unprivileged, offline,
resource-limited container as ponder's own strategies use, and nothing runs on the host.

One sandbox session per server process (stdio: one client), opened on the first call and closed when the server
stops. Over streamable HTTP the API's keys guard the endpoint.

With ``--strategies`` it also offers ``ask_ponder``: a question answered by one of ponder's strategies (``mcts-code``
writing a function against the examples in its docstring, ``pot-sc`` computing a number, the planner working with
its tools...), on ponder's configured model, loaded on the first question.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError as MCPToolError

from ponder.config import Settings, ToolServerSettings
from ponder.errors import PonderError
from ponder.llm import ChatModel
from ponder.tools import ToolSession

INSTRUCTIONS = (
    "A sandboxed Linux workspace (no network): run Python (numpy, pandas, scipy, matplotlib, sympy installed) in a "
    "stateful interpreter, run bash commands, and list, read or write text files. State persists between calls."
)


class SandboxLink:
    """A ToolServer and one session, opened on the first call (a client that only lists tools starts nothing)."""

    def __init__(self, settings: ToolServerSettings) -> None:
        self.settings = settings
        self._stack = contextlib.AsyncExitStack()
        self._session: ToolSession | None = None
        self._lock = asyncio.Lock()

    async def call(self, tool: str, args: dict[str, Any]) -> Any:
        async with self._lock:
            if self._session is None:
                from ponder.tools import ToolServer
                from ponder.toolserver import build_toolserver

                server: ToolServer = await self._stack.enter_async_context(build_toolserver(self.settings))
                self._session = await self._stack.enter_async_context(server.session())
            session = self._session
        try:
            result = await session.call(tool, args)
        except PonderError as exc:  # a failed call is the client's news, not the server's end
            raise MCPToolError(str(exc)) from exc
        if not result.ok:
            raise MCPToolError(result.error or json.dumps(result.output)[:2000])
        return result.output

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._session = None


class StrategyRunner:
    """ponder's strategies for an MCP client: the run context (model, ToolServer, search) is built on the first
    question and kept for the next ones; runs never ask a human (an MCP tool call cannot answer one)."""

    def __init__(self, settings: Settings, model: ChatModel | None = None) -> None:
        self.settings = settings
        self.model = model
        self._stack = contextlib.AsyncExitStack()
        self._ctx: Any = None
        self._lock = asyncio.Lock()

    async def ask(self, strategy: str, task: Any) -> dict[str, Any]:
        from ponder.agents import drive, get_strategy, run_to_result, strategy_class, strategy_names

        if strategy not in strategy_names():
            raise MCPToolError(f"unknown strategy {strategy!r}; choose one of: {', '.join(sorted(strategy_names()))}")
        async with self._lock:
            if self._ctx is None:
                from ponder.wiring import open_context

                self._ctx = await self._stack.enter_async_context(open_context(self.settings, self.model))
        try:
            # nobody is there to answer a question: a strategy that may ask one is told not to
            options = {"ask_human": False} if strategy_class(strategy).asks_humans else {}
            chosen = get_strategy(strategy, **options)
            result = await run_to_result(drive(chosen, task, self._ctx))
        except PonderError as exc:
            raise MCPToolError(f"{type(exc).__name__}: {exc}") from exc
        costs = result.costs
        return {
            "answer": result.answer,
            "text": result.text,
            "strategy": strategy,
            "llm_calls": costs.llm_calls if costs else 0,
            "tokens": costs.tokens if costs else 0,
            "seconds": round(result.seconds or 0.0, 2),
        }

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._ctx = None


def build_mcp_server(
    settings: ToolServerSettings, link: SandboxLink | None = None, *, strategies: StrategyRunner | None = None
) -> MCPServer:
    sandbox = link or SandboxLink(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_server: MCPServer) -> AsyncIterator[None]:
        try:
            yield None
        finally:
            await sandbox.aclose()  # the container goes with the server
            if strategies is not None:
                await strategies.aclose()

    server = MCPServer(name="ponder-sandbox", instructions=INSTRUCTIONS, lifespan=lifespan)

    @server.tool(description="Run Python 3 code in the sandbox's stateful interpreter; returns what it printed.")
    async def python(code: str) -> dict[str, Any]:
        return dict(await sandbox.call("python", {"code": code}))

    @server.tool(description="Run a bash command in the sandbox's workspace (no network); exit code and output.")
    async def shell(command: str) -> dict[str, Any]:
        return dict(await sandbox.call("shell", {"command": command}))

    @server.tool(description="List (op=list), read (op=read) or write (op=write, with content) workspace files.")
    async def files(op: Literal["list", "read", "write"], path: str = ".", content: str | None = None) -> Any:
        args: dict[str, Any] = {"op": op, "path": path}
        if content is not None:
            args["content"] = content
        return await sandbox.call("files", args)

    if strategies is not None:
        runner = strategies

        @server.tool(
            description="Ask ponder: a question answered by one of its reasoning strategies (cot, sc, pot, pot-sc, "
            "mcts-code, mcts-math, planner, react, ...). answer_type types the answer; for code, put the function's "
            "signature and a docstring with examples in the question and name the function in entry_point."
        )
        async def ask_ponder(
            question: str,
            strategy: str = "cot",
            answer_type: Literal["open", "number", "yes_no", "code"] = "open",
            entry_point: str | None = None,
            context: str | None = None,
        ) -> dict[str, Any]:
            from ponder.agents import Task

            metadata = {"entry_point": entry_point} if entry_point else {}
            task = Task(question=question, family=answer_type, context=context, metadata=metadata)
            return await runner.ask(strategy, task)

    return server


def guarded(app: Any, allowed: Callable[[str | None], Awaitable[bool]]) -> Any:
    """An ASGI wrapper that answers 401 unless ``allowed(bearer token)`` (the API's key ring)."""

    async def guard(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            raw = headers.get(b"authorization", b"").decode()
            token = raw.removeprefix("Bearer ").strip() if raw.startswith("Bearer ") else None
            if not await allowed(token):
                body = b'{"error": {"type": "Unauthenticated", "message": "this MCP endpoint needs an API key"}}'
                headers_out = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
                await send({"type": "http.response.start", "status": 401, "headers": headers_out})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guard
