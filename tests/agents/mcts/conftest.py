"""Recording wrappers around the real sandbox (``toolserver`` comes from ``tests/agents/conftest.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ponder.tools import ToolResult, ToolServer, ToolSession


class RecordingSession:
    """Wraps a real session and keeps every call's arguments (to prove what reached the sandbox)."""

    def __init__(self, inner: ToolSession, calls: list[dict[str, Any]]) -> None:
        self.inner = inner
        self.calls = calls

    @property
    def id(self) -> str:
        return self.inner.id

    async def call(self, tool: str, args: dict[str, Any], *, timeout_s: float | None = None) -> ToolResult:
        self.calls.append({"tool": tool, **args})
        return await self.inner.call(tool, args, timeout_s=timeout_s)


class RecordingToolServer:
    def __init__(self, inner: ToolServer) -> None:
        self.inner = inner
        self.calls: list[dict[str, Any]] = []

    def session(self) -> Any:
        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def _session() -> AsyncIterator[ToolSession]:
            async with self.inner.session() as s:
                yield RecordingSession(s, self.calls)

        return _session()

    @property
    def tools(self) -> Any:
        return self.inner.tools

    def specs(self) -> list[dict[str, Any]]:
        return self.inner.specs()
