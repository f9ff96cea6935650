"""Eval jobs: start a benchmark run, follow its progress (also as events on /runs/{id}/events), download its
report and plots."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from ponder.api._deps import OwnerDep, ServiceDep
from ponder.api._evals import EvalJobs, EvalView
from ponder.api._record import CreateEval, RunRecord, RunStatus
from ponder.api._schemas import ErrorBody
from ponder.errors import ConfigError, NotFoundError

router = APIRouter(
    prefix="/evals",
    tags=["evals"],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody}},
)

FILES = {"report.md": "text/markdown", "accuracy.png": "image/png", "tokens.png": "image/png"}


def jobs(service: ServiceDep) -> EvalJobs:
    if service.evals is None:
        raise ConfigError("eval jobs are not available in this server")
    evals: EvalJobs = service.evals
    return evals


def view(evals: EvalJobs, record: RunRecord) -> EvalView:
    return EvalView(
        id=record.id,
        status=record.status,
        spec=record.eval_spec,
        progress=evals.progress(record),
        result=record.eval_result if record.status.finished else None,
        error=record.error,
        files=evals.files(record),
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


@router.get("/datasets", summary="The benchmark datasets and whether this server has their files")
async def list_datasets(service: ServiceDep, _owner: OwnerDep) -> list[dict[str, Any]]:
    return jobs(service).datasets()


@router.post("", status_code=201, response_model=EvalView, summary="Start a benchmark run")
async def create_eval(body: CreateEval, service: ServiceDep, owner: OwnerDep) -> EvalView:
    evals = jobs(service)
    return view(evals, await evals.start(owner, body))


@router.get("", response_model=list[EvalView], summary="Your eval jobs, newest first")
async def list_evals(
    service: ServiceDep,
    owner: OwnerDep,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[EvalView]:
    evals = jobs(service)
    records = await service.store.list_runs(owner, limit=limit, status=status, kinds=("eval",))
    return [view(evals, r) for r in records]


@router.get("/{eval_id}", response_model=EvalView, summary="An eval job's status, progress and result")
async def get_eval(eval_id: str, service: ServiceDep, owner: OwnerDep) -> EvalView:
    evals = jobs(service)
    return view(evals, await evals.get(eval_id, owner))


@router.post("/{eval_id}/cancel", response_model=EvalView, summary="Cancel an eval job")
async def cancel_eval(eval_id: str, service: ServiceDep, owner: OwnerDep) -> EvalView:
    evals = jobs(service)
    return view(evals, await evals.cancel(eval_id, owner))


@router.get(
    "/{eval_id}/files/{name}",
    summary="Download the report (report.md) or a plot (accuracy.png, tokens.png)",
    response_class=FileResponse,
    responses={200: {"content": {"text/markdown": {}, "image/png": {}}}},
)
async def eval_file(eval_id: str, name: str, service: ServiceDep, owner: OwnerDep) -> FileResponse:
    evals = jobs(service)
    record = await evals.get(eval_id, owner)
    if name not in FILES:
        raise NotFoundError(f"no file {name!r}", hint=f"choose one of: {', '.join(FILES)}")
    path = evals.folder(record.id) / "report" / name
    if not path.is_file():
        raise NotFoundError(f"{name} is not written yet", hint="it is written when the job has succeeded")
    return FileResponse(path, media_type=FILES[name], filename=f"{record.id}-{name}")
