"""The real sandbox for the MCTS domain tests: the in-process ToolServer over the local Docker engine."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ponder.config import ToolServerSettings
from ponder.tools import ToolResult, ToolServer, ToolSession


@pytest.fixture
async def toolserver() -> AsyncIterator[ToolServer]:
    from ponder.tools import build_toolserver

    # a unique instance label: this manager never reaps containers of other test runs
    settings = ToolServerSettings(instance=f"mcts-{uuid.uuid4().hex[:8]}", pool_size=1, call_timeout_s=60.0)
    async with build_toolserver(settings) as ts:
        yield ts


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

    def specs(self) -> list[dict[str, Any]]:
        return self.inner.specs()
