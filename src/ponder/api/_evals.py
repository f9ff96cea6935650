"""Eval jobs: a benchmark run (dataset, strategy, limit, concurrency) started through the API.

A job is a run record of kind ``eval``: it has an owner, a status and an event stream (one ``step_started`` event
per finished item), and survives a restart (the batch runner resumes its folder, so finished items are not asked
again). Items run through :class:`ponder.evals.EvalRunner` on the executor given to the app: in process by
default, or any other implementation of the :class:`ponder.evals.Executor` seam (e.g. Ray).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ponder.agents import Context, ErrorRaised, StepStarted
from ponder.api._metrics import Metrics
from ponder.api._models import service_model
from ponder.api._record import CreateEval, ErrorInfo, EvalResult, RunRecord, RunStatus
from ponder.api._runs import RunManager
from ponder.api._store import StoredEvent
from ponder.errors import Conflict, NotFoundError, PonderError

log = logging.getLogger(__name__)


class EvalProgress(BaseModel):
    total: int
    done: int
    correct: int
    failed: int
    accuracy: float | None = Field(description="correct / done so far")


class EvalView(BaseModel):
    id: str
    status: RunStatus
    spec: CreateEval
    progress: EvalProgress
    result: EvalResult | None = None
    error: ErrorInfo | None = None
    files: dict[str, str] = Field(default_factory=dict, description="report and plot downloads, once finished")
    created_at: float
    updated_at: float


class _ProgressExecutor:
    """Wraps the executor to report each finished item as an event of the job's stream."""

    def __init__(self, inner: Any, jobs: EvalJobs, run_id: str, seq: list[int]) -> None:
        self.inner = inner
        self.jobs = jobs
        self.run_id = run_id
        self.seq = seq

    async def map(self, jobs: Sequence[Any], solve: Any, concurrency: int) -> AsyncIterator[Any]:
        done = 0
        async for outcome in self.inner.map(jobs, solve, concurrency):
            done += 1
            state = "failed" if outcome.error else "answered"
            self.jobs.emit(self.run_id, self.seq, StepStarted(name="item", detail=f"{outcome.item_id} {state}"))
            yield outcome


class EvalJobs:
    def __init__(self, runs: RunManager, context: Context, metrics: Metrics, data_dir: Path, executor: Any) -> None:
        self.runs = runs
        self.context = context
        self.metrics = metrics
        self.data_dir = data_dir
        self.executor = executor
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._lost: set[str] = set()  # jobs another replica took over: stopped here without a status change

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "benchmarks"

    def folder(self, run_id: str) -> Path:
        return self.data_dir / "evals" / run_id

    def emit(self, run_id: str, seq: list[int], event: Any) -> None:
        seq[0] += 1
        self.runs.events.emit(StoredEvent(run_id, seq[0], event.type, event.model_dump_json()))

    def datasets(self) -> list[dict[str, Any]]:
        from ponder.evals import BUILTIN

        return [
            {
                "name": name,
                "family": spec.family.value,
                "available": (self.datasets_dir / spec.file).is_file(),
            }
            for name, spec in sorted(BUILTIN.items())
        ]

    def _load(self, spec: CreateEval) -> Any:
        from ponder.evals import BUILTIN, load_dataset

        if spec.dataset not in BUILTIN:  # only named datasets: a request must not read arbitrary server paths
            raise NotFoundError(f"unknown dataset {spec.dataset!r}", hint=f"choose one of: {', '.join(BUILTIN)}")
        return load_dataset(spec.dataset, data_dir=self.datasets_dir, limit=spec.limit, offset=spec.offset)

    async def start(self, owner: str, spec: CreateEval) -> RunRecord:
        spec.options = self.runs.catalog.validate_options(spec.strategy, spec.options)
        from ponder.agents import strategy_names

        if spec.strategy not in strategy_names():
            raise NotFoundError(f"strategy {spec.strategy!r} is not registered, so it cannot run a benchmark")
        await asyncio.to_thread(self._load, spec)  # a missing file or a bad dataset fails the request, not the job
        leases = self.runs.leases
        record = RunRecord.new(
            "eval", owner, spec.strategy, spec, spec.options, replica=leases.replica, lease_until=leases.until()
        )
        await self.runs.events.insert_run(record)
        self._spawn(record, seq=0)
        return record

    async def get(self, run_id: str, owner: str) -> RunRecord:
        record = await self.runs.get(run_id, owner)
        if record.kind != "eval":
            raise NotFoundError(f"{run_id!r} is not an eval job", hint="eval job ids start with eval_")
        return record

    async def cancel(self, run_id: str, owner: str) -> RunRecord:
        record = await self.get(run_id, owner)
        if record.status.finished:
            raise Conflict(f"eval job {run_id!r} is already {record.status.value}")
        task = self._tasks.get(run_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        elif await self.runs.leases.claim(run_id, statuses=[record.status.value]):  # nobody executes it
            self.runs.events.update(run_id, status=RunStatus.cancelled, lease_until=None)
        else:  # another replica executes it: it cancels on its next lease renewal
            await self.runs.store.request_cancel(run_id)
        await self.runs.events.flush()
        return await self.get(run_id, owner)

    def progress(self, record: RunRecord) -> EvalProgress:
        from ponder.evals import RunStore as EvalStore

        spec = record.eval_spec
        records: dict[str, dict[str, Any]] = {}
        results = EvalStore(self.folder(record.id)).results
        if results.is_file():  # read leniently: the runner may be appending a line right now
            for line in results.read_text(encoding="utf-8").splitlines():
                try:
                    item = json.loads(line)
                    records[str(item["id"])] = item
                except (ValueError, KeyError, TypeError):
                    continue
        done = len(records)
        correct = sum(1 for r in records.values() if r.get("correct"))
        failed = sum(1 for r in records.values() if r.get("status") != "ok")
        result = record.eval_result
        total = result.items if result is not None else spec.limit or done
        return EvalProgress(
            total=max(total, done), done=done, correct=correct, failed=failed, accuracy=correct / done if done else None
        )

    def files(self, record: RunRecord) -> dict[str, str]:
        report = self.folder(record.id) / "report"
        names = {"report": "report.md", "accuracy": "accuracy.png", "tokens": "tokens.png"}
        return {k: f"/evals/{record.id}/files/{v}" for k, v in names.items() if (report / v).is_file()}

    async def recover(self, *, startup: bool = False) -> None:
        """Start again the eval jobs whose replica died (see RunManager.recover)."""
        for record in await self.runs.store.unfinished_runs(unleased_at=None if startup else time.time()):
            if record.kind != "eval" or record.id in self._tasks or self.runs.closing:
                continue
            statuses = [RunStatus.queued.value, RunStatus.running.value]
            if await self.runs.leases.claim(record.id, statuses=statuses, mine_ok=startup):
                self._spawn(record, seq=await self.runs.store.last_seq(record.id))

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, record: RunRecord, seq: int) -> None:
        task = asyncio.create_task(self._execute(record, [seq]), name=f"ponder-{record.id}")
        self._tasks[record.id] = task
        leases = self.runs.leases

        def stop(lost: bool) -> None:
            if lost:
                self._lost.add(record.id)
            task.cancel()

        def done(_t: object) -> None:
            self._tasks.pop(record.id, None)
            self._lost.discard(record.id)
            leases.drop(record.id)

        leases.hold(record.id, stop)
        task.add_done_callback(done)

    async def _execute(self, record: RunRecord, seq: list[int]) -> None:
        import dataclasses

        from ponder.evals import EvalRunner, load_run, write_report

        spec = record.eval_spec
        events = self.runs.events
        events.update(record.id, status=RunStatus.running)
        try:
            dataset = await asyncio.to_thread(self._load, spec)
            events.update(record.id, result=EvalResult(items=len(dataset.items)))
            self.emit(record.id, seq, StepStarted(name="eval", detail=f"{dataset.name}: {len(dataset.items)} items"))
            model = service_model(self.context.model, self.metrics, spec.strategy)
            runner = EvalRunner(
                dataclasses.replace(self.context, model=model),
                executor=_ProgressExecutor(self.executor, self, record.id, seq),
                concurrency=spec.concurrency,
                progress=False,
            )
            folder = self.folder(record.id)
            summary = await runner.run(
                dataset, spec.strategy, folder, options=spec.options, limit=spec.limit, offset=spec.offset
            )
            paths = await asyncio.to_thread(
                write_report, [load_run(folder)], folder / "report", title=f"{dataset.name} / {spec.strategy}"
            )
            result = EvalResult(
                **summary.model_dump(exclude={"run_dir"}),
                accuracy=summary.accuracy,
                report={k: p.name for k, p in paths.items()},
            )
            self.emit(record.id, seq, StepStarted(name="report", detail=f"accuracy {summary.accuracy:.1%}"))
            events.update(record.id, status=RunStatus.succeeded, result=result, lease_until=None)
        except asyncio.CancelledError:
            if not self.runs.closing and record.id not in self._lost:
                events.update(record.id, status=RunStatus.cancelled, lease_until=None)
            raise
        except Exception as exc:
            error = ErrorInfo.of(exc)
            if not isinstance(exc, PonderError):
                log.exception("eval job %s failed", record.id)
            self.emit(record.id, seq, ErrorRaised(error=error.model_dump(), fatal=True))
            events.update(record.id, status=RunStatus.failed, error=error, lease_until=None)
