"""What routes get injected: the service and the caller's owner id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from ponder.agents import Context
from ponder.api._auth import KeyRing, bearer_token
from ponder.api._catalog import StrategyCatalog
from ponder.api._limits import KeyLimits
from ponder.api._metrics import Metrics
from ponder.api._runs import RunManager
from ponder.api._store import RunStore
from ponder.api._writer import EventLog
from ponder.config import Settings
from ponder.errors import RateLimited


@dataclass
class Service:
    settings: Settings
    keys: KeyRing
    store: RunStore
    events: EventLog
    runs: RunManager
    catalog: StrategyCatalog
    metrics: Metrics
    context: Context
    evals: Any = None  # ponder.api._evals.EvalJobs once the app has started
    limits: KeyLimits = field(default_factory=lambda: KeyLimits(""))


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_owner(
    service: ServiceDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
    x_api_key: Annotated[str | None, Header(description="the API key (alternative to Authorization)")] = None,
) -> str:
    """The caller's owner id; each authenticated request counts against the key's rate limit."""
    owner = service.keys.owner(bearer_token(authorization, x_api_key))
    try:
        await service.limits.hit(owner)
    except RateLimited:
        service.metrics.limited.labels("rate").inc()
        raise
    return owner


OwnerDep = Annotated[str, Depends(get_owner)]
