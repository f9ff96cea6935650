"""Runs: create, read, list, stream (SSE with Last-Event-ID), answer a human question, cancel."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from ponder.api._deps import OwnerDep, ServiceDep
from ponder.api._guide import check_question_size
from ponder.api._record import RunStatus
from ponder.api._schemas import CreateRun, ErrorBody, HumanAnswer, RunList, RunView
from ponder.api._store import StoredEvent
from ponder.errors import InputError, NotFoundError

router = APIRouter(
    prefix="/runs",
    tags=["runs"],
    responses={
        401: {"model": ErrorBody, "description": "missing or unknown API key"},
        403: {"model": ErrorBody, "description": "the run belongs to another key"},
        404: {"model": ErrorBody, "description": "no such run"},
        413: {"model": ErrorBody, "description": "the question is longer than the model can read"},
    },
)


@router.post("", status_code=201, response_model=RunView, summary="Start a run")
async def create_run(body: CreateRun, service: ServiceDep, owner: OwnerDep) -> RunView:
    """Start ``strategy`` on ``input`` in the background; follow it with ``GET /runs/{id}/events``."""
    check_question_size(body.input, service.settings)
    record = await service.runs.create(
        owner, body.strategy, body.input, body.options, conversation_id=body.conversation_id, new_conversation=True
    )
    return RunView.of(record)


@router.get("", response_model=RunList, summary="List your runs, newest first")
async def list_runs(
    service: ServiceDep,
    owner: OwnerDep,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RunList:
    records = await service.store.list_runs(owner, limit=limit, status=status, kinds=("run", "chat"))
    return RunList(runs=[RunView.of(r) for r in records])


@router.get("/{run_id}", response_model=RunView, summary="A run's status, result and costs")
async def get_run(run_id: str, service: ServiceDep, owner: OwnerDep) -> RunView:
    record = await service.runs.get(run_id, owner)
    if record.kind == "eval":
        raise NotFoundError(f"{run_id!r} is an eval job", hint=f"see GET /evals/{run_id}")
    return RunView.of(record)


@router.get(
    "/{run_id}/events",
    summary="Stream a run's events (Server-Sent Events)",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "the event stream"}},
)
async def stream_events(
    run_id: str,
    service: ServiceDep,
    owner: OwnerDep,
    last_event_id: Annotated[str | None, Header(description="resume after this event id")] = None,
    after: Annotated[
        int | None, Query(ge=0, description="resume after this event id (for clients without headers)")
    ] = None,
) -> EventSourceResponse:
    """Each strategy event is sent with ``id`` (its sequence number in the run, 1, 2, ...), ``event`` (its type)
    and ``data`` (its JSON). ``status`` events report changes of the run's status; the stream ends with an
    ``end`` event once the run is finished. Reconnect with ``Last-Event-ID`` to get only what you missed."""
    await service.runs.get(run_id, owner)
    start = after or 0
    if last_event_id:
        try:
            start = max(start, int(last_event_id))
        except ValueError as exc:
            raise InputError(f"Last-Event-ID must be an event id (an integer), not {last_event_id!r}") from exc

    async def stream() -> AsyncIterator[ServerSentEvent]:
        async for item in service.events.follow(run_id, start):
            if isinstance(item, StoredEvent):
                yield ServerSentEvent(data=item.data, id=str(item.seq), event=item.type)
            else:
                payload = json.dumps({"status": item.status.value})
                yield ServerSentEvent(data=payload, event="end" if item.status.finished else "status")

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post(
    "/{run_id}/answer",
    response_model=RunView,
    summary="Answer a run's human question and resume it",
    responses={409: {"model": ErrorBody, "description": "the run is not waiting, or its strategy cannot resume"}},
)
async def answer_run(run_id: str, body: HumanAnswer, service: ServiceDep, owner: OwnerDep) -> RunView:
    return RunView.of(await service.runs.answer(run_id, owner, body.answer, body.interrupt_id))


@router.post(
    "/{run_id}/cancel",
    response_model=RunView,
    summary="Cancel a run",
    responses={409: {"model": ErrorBody, "description": "the run is already finished"}},
)
async def cancel_run(run_id: str, service: ServiceDep, owner: OwnerDep) -> RunView:
    return RunView.of(await service.runs.cancel(run_id, owner))
