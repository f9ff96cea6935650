"""The ToolServer's manager in this process (no HTTP between): what ``build_toolserver`` gives when no
``PONDER_TOOLSERVER__URL`` is set. The server side of the seam; clients see only the ToolServer protocol."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ponder import errors
from ponder.config import ToolServerSettings
from ponder.tools import BUILTIN_TOOLS, ToolResult, ToolSession, ToolSpec
from ponder.toolserver._manager import Manager


class LocalToolSession:
    def __init__(self, manager: Manager, session_id: str) -> None:
        self._manager = manager
        self._id = session_id

    @property
    def id(self) -> str:
        return self._id

    async def call(self, tool: str, args: dict[str, Any], *, timeout_s: float | None = None) -> ToolResult:
        return await self._manager.call(self._id, tool, args, timeout_s=timeout_s)

    async def start_background(self, command: str) -> None:
        """A task environment's background program (see :meth:`Manager.start_background`)."""
        await self._manager.start_background(self._id, command)


class LocalToolServer:
    """Runs the manager in this process. ``async with LocalToolServer(settings) as ts``."""

    def __init__(self, settings: ToolServerSettings, tools: tuple[ToolSpec, ...] = BUILTIN_TOOLS) -> None:
        self.tools = tools
        self.manager = Manager(settings, tools)

    async def __aenter__(self) -> LocalToolServer:
        await self.manager.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.manager.stop()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[ToolSession]:
        session_id = await self.manager.open_session()
        try:
            yield LocalToolSession(self.manager, session_id)
        finally:
            with contextlib.suppress(errors.NotFoundError):
                await self.manager.close_session(session_id)

    def specs(self) -> list[dict[str, Any]]:
        return [t.function_spec() for t in self.tools]
