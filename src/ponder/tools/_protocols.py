"""The tool seam: what strategies see of the ToolServer (sessions with ``call(tool, args)``)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from ponder.tools._spec import ToolSpec


class ToolResult(BaseModel):
    """The outcome of one tool call. ``ok`` is False when the tool itself reported a failure (an exception in
    user code, a non-zero exit); infrastructure failures raise :class:`ponder.errors.ToolError` instead."""

    tool: str
    ok: bool
    output: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    truncated: bool = False
    seconds: float = 0.0
    timed_out: bool = False
    reset: bool = Field(default=False, description="the session's state was lost (runner or sandbox replaced)")


@runtime_checkable
class ToolSession(Protocol):
    """One sandbox (one container); state such as Python variables persists across calls."""

    @property
    def id(self) -> str: ...

    async def call(self, tool: str, args: dict[str, Any], *, timeout_s: float | None = None) -> ToolResult: ...


@runtime_checkable
class ToolServer(Protocol):
    """Hands out sessions: ``async with toolserver.session() as s: await s.call("python", {"code": "1+1"})``.
    ``tools`` are the tools a session offers, with their exact argument models."""

    @property
    def tools(self) -> Sequence[ToolSpec]: ...

    def session(self) -> AbstractAsyncContextManager[ToolSession]: ...

    def specs(self) -> list[dict[str, Any]]:
        """OpenAI-style function specs of the tools a session offers."""
        ...
