"""The ToolServer client over HTTP (talks to `ponder toolserver serve`).

The in-process one lives on the server side (``ponder.toolserver.LocalToolServer``);
``ponder.toolserver.build_toolserver`` picks one of the two from the settings. Entering the HTTP one opens its
connection pool; sessions are async context managers too::

    async with build_toolserver(settings.toolserver) as ts:
        async with ts.session() as s:
            result = await s.call("python", {"code": "print(1)"})
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from opentelemetry import propagate

from ponder import errors
from ponder.errors import PonderError, SandboxUnavailable, ToolError
from ponder.tools._builtin import BUILTIN_TOOLS
from ponder.tools._protocols import ToolResult, ToolSession
from ponder.tools._spec import ToolSpec


def error_from_response(response: httpx.Response) -> PonderError:
    """Rebuild the manager's typed error from its JSON body ({"error": {"type", "message", "hint", ...}})."""
    try:
        body = response.json().get("error") or {}
    except ValueError:
        body = {}
    cls = getattr(errors, str(body.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, PonderError)):
        cls = ToolError
    message = body.get("message") or f"the ToolServer answered HTTP {response.status_code}: {response.text[:300]}"
    exc = cls.__new__(cls)
    PonderError.__init__(exc, message, hint=body.get("hint"), retryable=body.get("retryable"))
    return exc


class HttpToolSession:
    def __init__(self, client: httpx.AsyncClient, session_id: str) -> None:
        self._client = client
        self._id = session_id

    @property
    def id(self) -> str:
        return self._id

    async def call(self, tool: str, args: dict[str, Any], *, timeout_s: float | None = None) -> ToolResult:
        body = {"tool": tool, "args": args, "timeout_s": timeout_s}
        response = await _send(self._client, "POST", f"/sessions/{self._id}/calls", json=body)
        return ToolResult.model_validate_json(response.content)


async def _request(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> Any:
    response = await _send(client, method, url, **kwargs)
    return response.json() if response.content else None


async def _send(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    headers = dict(kwargs.pop("headers", None) or {})
    propagate.inject(headers)  # the W3C trace context: the ToolServer's spans join the caller's trace
    try:
        response = await client.request(method, url, headers=headers, **kwargs)
    except httpx.TransportError as exc:
        raise SandboxUnavailable(
            f"cannot reach the ToolServer at {client.base_url}: {exc!r}",
            hint="start it with `ponder toolserver serve` or fix PONDER_TOOLSERVER__URL",
            retryable=True,
        ) from exc
    if response.status_code >= 400:
        raise error_from_response(response)
    return response


class HttpToolServer:
    """A client of a remote manager (``ponder toolserver serve``), authenticated with a bearer token."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        call_timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        tools: tuple[ToolSpec, ...] = BUILTIN_TOOLS,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # The HTTP timeout leaves room for the manager's own time limit, its grace period and a sandbox swap.
        timeout = httpx.Timeout(call_timeout_s * 10 + 30, connect=10)
        self._client = httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout, transport=transport)
        self.tools = tools

    async def __aenter__(self) -> HttpToolServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await _request(self._client, "GET", "/healthz")
        return result

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[ToolSession]:
        data = await _request(self._client, "POST", "/sessions")
        session_id = str(data["id"])
        try:
            yield HttpToolSession(self._client, session_id)
        finally:
            with contextlib.suppress(errors.NotFoundError, SandboxUnavailable):
                await _request(self._client, "DELETE", f"/sessions/{session_id}")

    def specs(self) -> list[dict[str, Any]]:
        return [t.function_spec() for t in self.tools]
