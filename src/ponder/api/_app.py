"""The app factory: every dependency comes in as an argument, so tests inject fakes at the seams."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from ponder.api._auth import KeyRing, check_binding
from ponder.api._catalog import StrategyCatalog, StrategyClass
from ponder.api._deps import Service
from ponder.api._evals import EvalJobs
from ponder.api._lease import Leases
from ponder.api._limits import KeyLimits
from ponder.api._metrics import MeasuredToolServer, Metrics
from ponder.api._openai_errors import openai_error_of
from ponder.api._runs import RunManager
from ponder.api._store import RunStore
from ponder.api._writer import EventLog
from ponder.config import Settings
from ponder.errors import PonderError, ServiceBusy, describe_validation
from ponder.llm import ChatModel

log = logging.getLogger(__name__)

DESCRIPTION = """Run reasoning strategies over HTTP.

* `POST /runs` starts a run, `GET /runs/{id}/events` streams its events (Server-Sent Events; reconnect with
  `Last-Event-ID` to resume where you left off), `POST /runs/{id}/answer` answers a human question,
  `POST /runs/{id}/cancel` stops it.
* `/v1/chat/completions` and `/v1/models` speak the OpenAI API: each strategy is a model (`ponder-cot`, ...).
* Authenticate with `Authorization: Bearer <API key>` when the server has keys; each run belongs to its key.
"""


def create_app(
    settings: Settings,
    model: ChatModel | None = None,
    *,
    toolserver: Any = None,
    search: Any = None,
    kb: Any = None,
    strategies: Mapping[str, StrategyClass] | None = None,
    eval_executor: Any = None,
    recover: bool = True,
) -> FastAPI:
    """The API app. ``model`` replaces the configured backend (tests pass a scripted one); ``strategies`` adds
    strategy classes by name next to the registry's; ``eval_executor`` runs eval items (in process by default)."""
    from ponder.wiring import build_context

    keys = KeyRing(settings.api.api_keys)
    check_binding(settings.api.host, keys)
    metrics = Metrics()
    context = build_context(settings, model=model)
    if settings.checkpoint_url is None and settings.api.database_url.startswith(("postgresql://", "postgres://")):
        # replicas on one Postgres keep the planner's checkpoints there too, so any of them resumes any run (a
        # per-host SQLite file would make a run recovered elsewhere start again from scratch)
        context.checkpoint_url = settings.api.database_url
    if toolserver is not None:
        context.toolserver = toolserver
    resources: list[Any] = [context.toolserver] if context.toolserver is not None else []  # entered while it runs
    if context.toolserver is not None:
        context.toolserver = MeasuredToolServer(context.toolserver, metrics)
    if search is not None:
        context.search = search
    if kb is not None:
        context.kb = kb
    store = RunStore(
        settings.api.database_url,
        pool_size=settings.api.db_pool_size,
        max_overflow=settings.api.db_max_overflow,
        pool_timeout_s=settings.api.db_pool_timeout_s,
    )
    events = EventLog(store, poll_s=settings.api.stream_poll_s)
    catalog = StrategyCatalog(strategies)
    leases = Leases(store, settings.api.replica_id, lease_s=settings.api.lease_s, renew_s=settings.api.lease_renew_s)
    runs = RunManager(
        store,
        events,
        catalog,
        context,
        metrics,
        leases,
        max_active_per_key=settings.api.max_active_runs_per_key,
        token_budget=settings.api.run_token_budget,
        record_prompts=settings.api.record_prompts,
    )
    events.is_local = runs.is_live
    if eval_executor is None:
        from ponder.evals import LocalExecutor

        eval_executor = LocalExecutor()
    service = Service(
        settings=settings,
        keys=keys,
        store=store,
        events=events,
        runs=runs,
        catalog=catalog,
        metrics=metrics,
        context=context,
        limits=KeyLimits(settings.api.rate_limit, settings.api.rate_limit_storage),
        evals=EvalJobs(runs, context, metrics, settings.data_dir, eval_executor),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.open()
        events.start()
        stack = AsyncExitStack()
        for resource in resources:
            if hasattr(resource, "__aenter__"):
                try:
                    await stack.enter_async_context(resource)
                except PonderError as exc:  # e.g. no Docker engine: serve without tools, say why
                    log.warning("%s is unavailable: %s", type(resource).__name__, exc)
                    context.toolserver = None
        if context.checkpoint_url:  # one checkpointer (pooled on Postgres) for every run of this app
            from ponder.agents.planner import open_checkpointer

            context.checkpointer = await stack.enter_async_context(
                open_checkpointer(context.checkpoint_url, pool_size=settings.api.db_pool_size)
            )
        try:
            if recover:
                count = await service.runs.recover(startup=True)
                if count:
                    log.info("recovered %d unfinished runs", count)
                await service.evals.recover(startup=True)
                leases.on_sweep(service.runs.recover)  # later, runs of replicas that died
                leases.on_sweep(service.evals.recover)
            leases.start()
            yield
        finally:
            held = leases.held()
            await service.runs.close()
            await service.evals.close()
            await events.flush()  # their last writes first, then the leases go
            await leases.close(release=held)
            await events.close()
            await store.close()
            await stack.aclose()

    # /docs and /redoc from assets in a kept package (fastapi-offline), not a CDN: they work offline
    app = FastAPIOffline(
        title="ponder", version="0.1.0", description=DESCRIPTION, lifespan=lifespan, static_url="/static-docs"
    )
    app.state.service = service
    # server spans for every request, joined to the caller's trace (W3C traceparent); no-ops without a provider
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,metrics,static")

    @app.exception_handler(PonderError)
    async def _ponder_error(request: Request, exc: PonderError) -> JSONResponse:
        body = exc.to_dict()
        status = exc.status_code
        if _openai_path(request):  # OpenAI's shape; its clients show only `message`: put the hint in it
            status = 400 if status == 422 else status  # OpenAI answers any invalid request with 400
            body = openai_error_of(status, body)
        headers = exc.headers()
        if headers is None and exc.status_code == 503 and exc.retryable:  # any retryable 503 is a capacity answer
            headers = ServiceBusy("").headers()
        return JSONResponse({"error": body}, status_code=status, headers=headers)

    @app.exception_handler(sa_exc.TimeoutError)
    async def _pool_exhausted(request: Request, exc: sa_exc.TimeoutError) -> JSONResponse:
        log.warning("database pool exhausted on %s %s: %s", request.method, request.url.path, exc)
        busy = ServiceBusy("every database connection is in use: the service is at capacity")
        return await _ponder_error(request, busy)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        body = {
            "type": "InputError",
            "message": f"invalid request: {describe_validation(exc.errors())}",
            "hint": "see /docs for the request schema",
            "retryable": False,
            "detail": jsonable(exc.errors()),
        }
        if _openai_path(request):  # OpenAI answers a malformed request with 400 and names the parameter
            first = exc.errors()[0] if exc.errors() else {}
            param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
            body = openai_error_of(400, body, param=param, hint_in_message=False)
            return JSONResponse({"error": body}, status_code=400)
        return JSONResponse({"error": body}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Unknown paths and wrong methods answer in the same error shape as everything else."""
        message = f"{request.method} {request.url.path}: {exc.detail}"
        hint = "see /docs for the API's paths" if exc.status_code in (404, 405) else ""
        body: dict[str, Any] = {"type": "HTTPError", "message": message, "hint": hint, "retryable": False}
        if _openai_path(request):
            body = openai_error_of(exc.status_code, body, hint_in_message=False)
        return JSONResponse({"error": body}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    from ponder.api.openai import router as openai_router
    from ponder.api.routes import catalog as catalog_routes
    from ponder.api.routes import conversations as conversations_routes
    from ponder.api.routes import evals as evals_routes
    from ponder.api.routes import runs as runs_routes
    from ponder.api.routes import ui as ui_routes

    app.include_router(runs_routes.router)
    app.include_router(conversations_routes.router)
    app.include_router(catalog_routes.router)
    app.include_router(openai_router)
    app.include_router(evals_routes.router)
    app.include_router(ui_routes.router)
    ui_routes.mount(app)
    return app


def _openai_path(request: Request) -> bool:
    return request.url.path == "/v1" or request.url.path.startswith("/v1/")


def jsonable(value: Any) -> Any:
    from fastapi.encoders import jsonable_encoder

    try:
        return jsonable_encoder(value)
    except Exception:  # noqa: BLE001 - validation details that do not encode are dropped, the message stays
        return None
