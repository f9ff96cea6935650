"""A few ToolServer sessions shared by a search's concurrent evaluations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from ponder.tools import ToolServer, ToolSession


class SessionPool:
    """Opens up to ``size`` sessions lazily and lends them out one evaluation at a time.

    Candidates run in child processes of the session (see ``_sandbox``), so one session serves many evaluations;
    more sessions only add parallelism. Use as ``async with SessionPool(ts) as pool``.
    """

    def __init__(self, toolserver: ToolServer, size: int = 1) -> None:
        self.toolserver = toolserver
        self.size = max(size, 1)
        self._stack = AsyncExitStack()
        self._idle: asyncio.Queue[ToolSession] = asyncio.Queue()
        self._opened = 0
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> SessionPool:
        await self._stack.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[ToolSession]:
        session: ToolSession
        async with self._lock:
            if self._idle.empty() and self._opened < self.size:
                self._opened += 1
                session = await self._stack.enter_async_context(self.toolserver.session())
            else:
                session = await self._idle.get() if self._idle.empty() else self._idle.get_nowait()
        try:
            yield session
        finally:
            self._idle.put_nowait(session)
