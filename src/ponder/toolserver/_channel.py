"""The JSON-lines link to one runner over a hijacked ``docker exec`` connection.

Docker multiplexes a non-TTY exec's stdout and stderr into frames (an 8-byte header: stream id, three zero bytes,
a big-endian payload length). The SDK only demultiplexes blocking sockets, so this small async reader does it on
the event loop: one background task reads frames, joins stdout into lines and resolves the waiting call's future.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any

from ponder.errors import SandboxError

STDOUT, STDERR = 1, 2
READ_LIMIT = 64 * 1024 * 1024


class RunnerGone(SandboxError):
    """The runner's stream ended (the process exited, was killed, or its container stopped)."""


class RunnerChannel:
    """Send one request at a time, get its reply. ``closed`` turns True as soon as the stream ends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._lines: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._stderr = bytearray()
        self._task = asyncio.get_running_loop().create_task(self._pump())
        self._next_id = 0
        self.closed = False

    @classmethod
    async def open(cls, sock: socket.socket, ready_timeout_s: float = 20.0) -> tuple[RunnerChannel, dict[str, Any]]:
        reader, writer = await asyncio.open_connection(sock=sock, limit=READ_LIMIT)
        channel = cls(reader, writer)
        try:
            hello = await channel._exchange({"hello": True}, ready_timeout_s)
        except BaseException:
            await channel.aclose()
            raise
        return channel, hello

    async def _pump(self) -> None:
        buffer = bytearray()
        try:
            while True:
                header = await self._reader.readexactly(8)
                payload = await self._reader.readexactly(int.from_bytes(header[4:8], "big"))
                if header[0] == STDERR:
                    self._stderr += payload[-4096:]
                    del self._stderr[:-4096]
                    continue
                buffer += payload
                while (end := buffer.find(b"\n")) >= 0:
                    line, buffer = bytes(buffer[:end]), buffer[end + 1 :]
                    try:
                        self._lines.put_nowait(json.loads(line))
                    except ValueError:
                        continue  # not a protocol line; the runner guards fd 1, so this is only noise
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.closed = True
            self._lines.put_nowait(None)

    def stderr_tail(self) -> str:
        return self._stderr.decode("utf-8", "replace").strip()[-1000:]

    async def _exchange(self, message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        if self.closed:
            raise RunnerGone("the sandbox runner is not running")
        self._writer.write(json.dumps(message).encode() + b"\n")
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise RunnerGone(f"the sandbox runner's input closed: {exc}") from exc
        async with asyncio.timeout(timeout_s):
            while True:
                reply = await self._lines.get()
                if reply is None:
                    raise RunnerGone("the sandbox runner exited during the call")
                if "id" not in reply or reply.get("id") == message.get("id"):
                    return reply

    async def request(
        self, tool: str, args: dict[str, Any], *, timeout_s: float, wait_s: float, max_chars: int
    ) -> dict[str, Any]:
        """Send a tool call; raise ``TimeoutError`` if no reply comes within ``wait_s``."""
        self._next_id += 1
        message = {"id": self._next_id, "tool": tool, "args": args, "timeout_s": timeout_s, "max_chars": max_chars}
        return await self._exchange(message, wait_s)

    async def aclose(self) -> None:
        self.closed = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
