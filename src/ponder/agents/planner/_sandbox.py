"""A run's ToolServer session: opened on first use, its workspace saved after every sandbox call and restored into
a fresh session when the run resumes in another process (Python variables do not survive; files do)."""

from __future__ import annotations

import base64
from contextlib import AsyncExitStack
from typing import Any

from ponder.agents._base import Task
from ponder.errors import InputError, PonderError
from ponder.tools import ToolResult, ToolServer, ToolSession

WORKSPACE = "/workspace"
MAX_FILE_BYTES = 1_000_000
MAX_TOTAL_BYTES = 4_000_000


# deletes every name a cell defined in the interpreter's namespace (not the dunder ones it needs)
_FORGET = "for _ponder_n in [n for n in list(globals()) if not n.startswith('__')]:\n    del globals()[_ponder_n]"


class SandboxLink:
    """Opens the session lazily inside ``stack`` (closed when the run's stream ends)."""

    def __init__(
        self, toolserver: ToolServer, stack: AsyncExitStack, *, root: str = WORKSPACE, timeout_s: float | None = None
    ) -> None:
        self.toolserver = toolserver
        self.root = root
        self.stack = stack
        self.timeout_s = timeout_s
        self._session: ToolSession | None = None
        names = {str(s.get("function", s).get("name")) for s in toolserver.specs()}
        self.can_sync = {"python", "files", "upload", "download"} <= names

    async def session(self, workspace: dict[str, dict[str, Any]]) -> ToolSession:
        if self._session is None:
            self._session = await self.stack.enter_async_context(self.toolserver.session())
            if workspace and self.can_sync:
                await self._restore(self._session, workspace)
        return self._session

    async def call(self, tool: str, args: dict[str, Any], workspace: dict[str, dict[str, Any]]) -> ToolResult:
        session = await self.session(workspace)
        return await session.call(tool, args, timeout_s=self.timeout_s)

    async def fresh_namespace(self) -> None:
        """Forget the Python names earlier subtasks defined (files stay): a later subtask must not inherit a wrong
        value through a shared name (issue 21: one subtask shadowed ``sum`` for the next). Nothing to do before
        the session's first call."""
        if self._session is not None and self.can_sync:
            await self._session.call("python", {"code": _FORGET}, timeout_s=self.timeout_s)

    async def _restore(self, session: ToolSession, workspace: dict[str, dict[str, Any]]) -> None:
        for path, entry in sorted(workspace.items()):
            if entry.get("b64") is not None:
                await session.call("upload", {"path": path, "content_base64": entry["b64"]})

    async def snapshot(self, previous: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """The workspace now (files unchanged since ``previous`` are not downloaded again), and notes on files
        left out. Returns ``previous`` unchanged when the session cannot be read."""
        if self._session is None or not self.can_sync:
            return previous, []
        try:
            listing = await self._session.call("files", {"op": "list", "path": ".", "recursive": True})
        except PonderError:
            listing = None
        if listing is None or not listing.ok:
            return previous, ["the workspace could not be listed; its snapshot is from an earlier step"]
        files = {e["name"]: (e["size"], e["mtime_ns"]) for e in listing.output.get("entries", [])}
        out: dict[str, dict[str, Any]] = {}
        notes: list[str] = []
        total = 0
        for path, (size, mtime) in sorted(files.items()):
            sig = f"{size}:{mtime}"
            if size > MAX_FILE_BYTES or total + size > MAX_TOTAL_BYTES:
                out[path] = {"sig": sig, "b64": None}
                notes.append(f"{path} ({size} bytes) is too large to keep in the run's checkpoint")
                continue
            total += size
            old = previous.get(path)
            if old is not None and old.get("sig") == sig and old.get("b64") is not None:
                out[path] = old
                continue
            try:
                got = await self._session.call("download", {"path": path})
            except PonderError:
                got = None
            if got is None or not got.ok:
                notes.append(f"{path} could not be read for the snapshot")
                continue
            out[path] = {"sig": sig, "b64": got.output.get("content_base64")}
        return out, notes


def workspace_text(workspace: dict[str, dict[str, Any]], max_chars: int = 20_000) -> dict[str, str | None]:
    """The snapshot's files as text (None for binary or left-out files), for results and checkers."""
    out: dict[str, str | None] = {}
    for path, entry in sorted(workspace.items()):
        raw = entry.get("b64")
        if raw is None:
            out[path] = None
            continue
        try:
            out[path] = base64.b64decode(raw).decode("utf-8")[:max_chars]
        except (ValueError, UnicodeDecodeError):
            out[path] = None
    return out


def seed_workspace(task: Task) -> dict[str, dict[str, Any]]:
    """The starting workspace snapshot from ``task.metadata["files"]`` ({relative path: text})."""
    files = task.metadata.get("files") or {}
    if not isinstance(files, dict):
        raise InputError('task.metadata["files"] must map relative paths to file contents')
    out: dict[str, dict[str, Any]] = {}
    for path, text in files.items():
        if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
            raise InputError(f"workspace file path {path!r} must be relative and stay inside the workspace")
        out[path] = {"sig": "seed", "b64": base64.b64encode(str(text).encode()).decode()}
    return out
