"""What the server offers (strategies, tools) and how it is doing (health, metrics)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from ponder.api._auth import bearer_token
from ponder.api._deps import OwnerDep, ServiceDep
from ponder.api._guide import GUIDES, question_limit
from ponder.api._schemas import Health, StrategyInfo, ToolInfo

router = APIRouter()


@router.get("/strategies", response_model=list[StrategyInfo], tags=["catalog"], summary="Strategies and options")
async def list_strategies(service: ServiceDep, _owner: OwnerDep) -> list[StrategyInfo]:
    infos = []
    times = await service.store.typical_seconds()
    for name in service.catalog.names():
        info = service.catalog.describe(name)
        guide = GUIDES.get(name)
        seconds, runs = times.get(name, (None, 0))
        infos.append(
            StrategyInfo(
                model=f"ponder-{name}",
                **info,
                title=guide.title if guide else "",
                good_for=guide.good_for if guide else "",
                example=guide.example if guide else "",
                typical_seconds=seconds,
                finished_runs=runs,
            )
        )
    return infos


@router.get("/tools", response_model=list[ToolInfo], tags=["catalog"], summary="Tools and their argument schemas")
async def list_tools(service: ServiceDep, _owner: OwnerDep) -> list[ToolInfo]:
    toolserver = service.context.toolserver
    if toolserver is None:
        return []
    tools = []
    for spec in toolserver.specs():
        fn = spec.get("function", spec)
        tools.append(
            ToolInfo(
                name=str(fn.get("name", "")),
                description=str(fn.get("description", "")),
                parameters=dict(fn.get("parameters") or {}),
            )
        )
    return tools


@router.get("/healthz", response_model=Health, tags=["ops"], summary="Liveness and readiness")
async def healthz(service: ServiceDep, response: Response) -> Health:
    database = "ok"
    try:
        await service.store.last_seq("healthz")
    except Exception as exc:  # noqa: BLE001 - reported, not raised: this endpoint says what is wrong
        database = f"error: {type(exc).__name__}"
        response.status_code = 503
    context_tokens, max_question_chars = question_limit(service.settings)
    return Health(
        status="ok" if database == "ok" else "degraded",
        model=service.context.model.name,
        database=database,
        runs_active=service.runs.active_count,
        context_tokens=context_tokens,
        max_question_chars=max_question_chars,
    )


@router.get(
    "/metrics",
    tags=["ops"],
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(
    service: ServiceDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
    x_api_key: Annotated[str | None, Header(description="the API key (alternative to Authorization)")] = None,
) -> Response:
    if not service.settings.api.metrics_public:  # run counts and model names are not for anyone who asks
        service.keys.owner(bearer_token(authorization, x_api_key))
    return Response(service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
