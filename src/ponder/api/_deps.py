"""What routes get injected: the service and the caller's owner id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from ponder.agents import Context
from ponder.api._auth import KeyRing, bearer_token
from ponder.api._catalog import StrategyCatalog
from ponder.api._metrics import Metrics
from ponder.api._runs import RunManager
from ponder.api._store import RunStore
from ponder.api._writer import EventLog
from ponder.config import Settings


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


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def get_owner(
    service: ServiceDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
    x_api_key: Annotated[str | None, Header(description="the API key (alternative to Authorization)")] = None,
) -> str:
    return service.keys.owner(bearer_token(authorization, x_api_key))


OwnerDep = Annotated[str, Depends(get_owner)]
