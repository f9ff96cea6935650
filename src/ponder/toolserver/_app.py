"""The manager's HTTP API (FastAPI). Every route but ``/healthz`` needs ``Authorization: Bearer <token>``.

    GET    /healthz                    liveness and pool figures
    GET    /tools                      OpenAI-style function specs of the tools
    POST   /sessions                   open a session (a warm sandbox) -> {"id": ...}
    POST   /sessions/{id}/calls        {"tool", "args", "timeout_s"?} -> ToolResult
    DELETE /sessions/{id}              close it (the container is removed)

Errors are ``{"error": {"type", "message", "hint", "retryable"}}`` with the error's HTTP status.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ponder.errors import InputError, NotFoundError, PayloadTooLarge, PonderError, Unauthenticated, describe_validation
from ponder.telemetry import tool_span
from ponder.tools._protocols import ToolResult
from ponder.toolserver._manager import Manager


class CallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tool: str = Field(min_length=1, description="the tool's name, see GET /tools")
    args: dict[str, Any] = Field(default_factory=dict)
    # strict: a JSON boolean is not a number of seconds (lax pydantic would read `true` as 1 s)
    timeout_s: float | None = Field(
        default=None, gt=0, strict=True, description="this call's time limit; default from settings"
    )


class SessionCreated(BaseModel):
    id: str


def _error(exc: PonderError) -> JSONResponse:
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.status_code, headers=exc.headers())


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether or not they declare a Content-Length.

    Hand-written because neither Starlette nor uvicorn caps body size."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = PayloadTooLarge(f"the request body is larger than the limit of {self.limit} bytes")
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _error(too_big)(scope, receive, send)
            return
        # Read the whole body first (it is capped, so this is bounded), then replay it to the app. Raising from
        # inside receive() instead would surface as FastAPI's generic 400 "error parsing the body".
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.limit:
                await _error(too_big)(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def create_app(manager: Manager, token: str | None, *, own_manager: bool = True) -> FastAPI:
    """The API over ``manager``. With ``own_manager`` the app's lifespan starts and stops it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if own_manager:
            await manager.start()
        try:
            yield
        finally:
            if own_manager:
                await manager.stop()

    app = FastAPI(title="ponder ToolServer", lifespan=lifespan)
    app.add_middleware(BodyLimit, limit=manager.settings.max_request_bytes)
    # a server span per request, joined to the caller's trace (the client sends W3C traceparent); no-ops until a
    # tracer provider is installed (`ponder toolserver serve` installs one when OTEL_EXPORTER_OTLP_ENDPOINT is set)
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz")

    async def authenticate(request: Request) -> None:
        if token is None:
            return
        supplied = request.headers.get("authorization", "")
        scheme, _, value = supplied.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(value.encode(), token.encode()):
            raise Unauthenticated(
                "missing or wrong ToolServer token",
                hint="send `Authorization: Bearer <token>` with the token the manager was started with "
                "(PONDER_TOOLSERVER__TOKEN)",
            )

    auth = [Depends(authenticate)]

    @app.exception_handler(PonderError)
    async def ponder_error(request: Request, exc: PonderError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(InputError(f"the request is invalid: {describe_validation(exc.errors(), skip=('body',))}"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (a body that is not UTF-8 or not parseable JSON, an unknown path or method) in
        # the same envelope as every other error
        error = (NotFoundError if exc.status_code == 404 else InputError)(str(exc.detail))
        error.status_code = exc.status_code
        return JSONResponse({"error": error.to_dict()}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"ok": True, **manager.stats()}

    @app.get("/tools", dependencies=auth)
    async def tools() -> list[dict[str, Any]]:
        return [t.function_spec() for t in manager.tools]

    @app.post("/sessions", status_code=201, dependencies=auth)
    async def open_session() -> SessionCreated:
        return SessionCreated(id=await manager.open_session())

    @app.post("/sessions/{session_id}/calls", dependencies=auth, response_model=ToolResult)
    async def call(session_id: str, body: CallRequest) -> Response:
        with tool_span(body.tool, "sandbox", span_kind=SpanKind.INTERNAL) as span:
            span.set_attribute("ponder.session_id", session_id)
            result = await manager.call(session_id, body.tool, body.args, timeout_s=body.timeout_s)
            span.set_attribute("ponder.tool.ok", result.ok)
            if not result.ok:
                span.set_status(Status(StatusCode.ERROR, (result.error or "failed")[:200]))
        # Serialised once by pydantic-core; FastAPI's response-model pass would validate and encode it again.
        return Response(result.model_dump_json(), media_type="application/json")

    @app.delete("/sessions/{session_id}", status_code=204, dependencies=auth)
    async def close_session(session_id: str) -> Response:
        await manager.close_session(session_id)
        return Response(status_code=204)

    return app
