"""The batch runner: every unfinished item of a dataset through one strategy, with bounded concurrency, a
progress bar, scoring and a resumable record per item.

The :class:`Executor` seam decides where items run. :class:`LocalExecutor` runs them as asyncio tasks in this
process; a distributed executor (e.g. Ray) implements the same ``map`` over the same serialisable :class:`Job`
objects. Gold answers never enter a job: the runner scores outcomes itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ponder.agents import (
    Context,
    Event,
    StrategyResult,
    Task,
    TaskFamily,
    TextDelta,
    drive,
    get_strategy,
    parse_options,
    run_to_result,
    strategy_class,
)
from ponder.errors import ConfigError, InputError, InternalError
from ponder.evals._datasets import Dataset, EvalItem
from ponder.evals._scoring import CodeChecker, Score, score_item
from ponder.evals._store import ItemRecord, RunMeta, RunStore
from ponder.llm import MeteredModel


class Job(BaseModel):
    """What a worker needs to answer one item: no gold answer."""

    item_id: str
    strategy: str
    options: dict[str, Any] = Field(default_factory=dict)
    task: Task


class Outcome(BaseModel):
    item_id: str
    result: StrategyResult | None = None
    error: dict[str, Any] | None = None
    events: list[dict[str, Any]] = Field(default_factory=list)
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


Solver = Callable[[Job], Awaitable[Outcome]]
Scorer = Callable[[EvalItem, StrategyResult], Score]


class Executor(Protocol):
    """Where jobs run. A remote executor (e.g. Ray) ships the :class:`Job` objects (plain data) to workers that
    build their own context from settings and call :func:`make_solver` there; ``solve`` is the local solver."""

    def map(self, jobs: Sequence[Job], solve: Solver, concurrency: int) -> AsyncIterator[Outcome]:
        """Outcomes in completion order; at most ``concurrency`` jobs at once."""
        ...


class LocalExecutor:
    """Jobs as asyncio tasks in this process, ``concurrency`` workers pulling from a queue."""

    async def map(self, jobs: Sequence[Job], solve: Solver, concurrency: int) -> AsyncIterator[Outcome]:
        pending: asyncio.Queue[Job] = asyncio.Queue()
        for job in jobs:
            pending.put_nowait(job)
        done: asyncio.Queue[Outcome | BaseException] = asyncio.Queue()

        async def worker() -> None:
            while True:
                try:
                    job = pending.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    done.put_nowait(await solve(job))
                except Exception as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
                    done.put_nowait(exc)
                    return

        workers = [asyncio.create_task(worker()) for _ in range(max(1, min(concurrency, len(jobs))))]
        try:
            for _ in range(len(jobs)):
                item = await done.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)


def error_dict(exc: BaseException) -> dict[str, Any]:
    """An item's error as the API shows errors (PonderError.to_dict; any other exception as an InternalError)."""
    return InternalError.of(exc).to_dict()


def make_solver(ctx: Context, *, keep_events: bool = True, timeout_s: float | None = None) -> Solver:
    """Run one job in a copy of ``ctx`` whose model is metered, so calls and tokens count even when it fails.
    A :class:`ConfigError` stops the whole run (every item would fail the same way); any other error fails the
    item only. ``timeout_s``: a job still running then is stopped and fails as a ``TimeoutError``, keeping the
    calls, tokens and events it spent."""

    async def solve(job: Job) -> Outcome:
        metered = MeteredModel(ctx.model)
        item_ctx = dataclasses.replace(ctx, model=metered, run_id=job.item_id)
        strategy = get_strategy(job.strategy, **job.options)
        events: list[dict[str, Any]] = []

        def collect(event: Event) -> None:
            if keep_events and not isinstance(event, TextDelta):
                events.append(event.model_dump(mode="json"))

        start = time.perf_counter()
        result: StrategyResult | None = None
        error: dict[str, Any] | None = None
        try:
            run = run_to_result(drive(strategy, job.task, item_ctx), on_event=collect)
            result = await (run if timeout_s is None else asyncio.wait_for(run, timeout=timeout_s))
        except TimeoutError as exc:  # the job's own limit, or a timeout inside it (recorded as any error is)
            if timeout_s is not None and time.perf_counter() - start >= timeout_s:
                error = {"type": "TimeoutError", "message": f"the task ran past {timeout_s:g} s"}
            else:
                error = error_dict(exc)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - one failing item must not stop the run; the error is recorded
            error = error_dict(exc)
        return outcome_of(job, metered, start, result, error, events)

    return solve


def outcome_of(
    job: Job,
    metered: MeteredModel,
    start: float,
    result: StrategyResult | None,
    error: dict[str, Any] | None,
    events: list[dict[str, Any]] | None = None,
) -> Outcome:
    """One job's outcome: its result or error, and what its metered model spent since ``start``."""
    return Outcome(
        item_id=job.item_id,
        result=result,
        error=error,
        events=events or [],
        calls=metered.costs.llm_calls,
        prompt_tokens=metered.costs.prompt_tokens,
        completion_tokens=metered.costs.completion_tokens,
        seconds=time.perf_counter() - start,
    )


class RunSummary(BaseModel):
    run_dir: Path
    items: int
    resumed: int
    ran: int
    ok: int
    failed: int
    correct: int
    tokens: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.items if self.items else 0.0


def check_strategy(strategy: str, options: dict[str, Any]) -> None:
    """Fail before the run starts on an unknown strategy or options it does not take (its ``Options``)."""
    parse_options(strategy_class(strategy), options)


class EvalRunner:
    def __init__(
        self,
        ctx: Context,
        *,
        executor: Executor | None = None,
        concurrency: int = 1,
        keep_events: bool = True,
        code_checker: CodeChecker | None = None,
        console: Console | None = None,
        progress: bool = True,
    ) -> None:
        if concurrency < 1:
            raise InputError(f"concurrency must be at least 1, got {concurrency}")
        self.ctx = ctx
        self.executor: Executor = executor or LocalExecutor()
        self.concurrency = concurrency
        self.keep_events = keep_events
        self.code_checker = code_checker
        self.console = console or Console(stderr=True)
        self.progress = progress

    def _record(self, item: EvalItem, outcome: Outcome, score: Score | None) -> ItemRecord:
        result = outcome.result
        return ItemRecord(
            id=item.id,
            status="ok" if result is not None else "failed",
            answer=result.answer if result else None,
            text=result.text if result else "",
            gold=score.gold if score else item.gold,
            correct=bool(score and score.correct),
            reason=score.reason if score else "failed: " + str((outcome.error or {}).get("message", ""))[:300],
            calls=outcome.calls,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            seconds=round(outcome.seconds, 3),
            error=outcome.error,
            details=result.details if result else {},
            events=outcome.events,
        )

    async def run(
        self,
        dataset: Dataset,
        strategy: str,
        run_dir: Path,
        *,
        options: dict[str, Any] | None = None,
        label: str = "",
        retry_failed: bool = False,
        limit: int | None = None,
        offset: int = 0,
        solver: Solver | None = None,
        scorer: Scorer | None = None,
    ) -> RunSummary:
        """``solver`` and ``scorer`` replace the strategy's run and the family's scoring for datasets that are not
        strategy tasks (BFCL's tool calls: ``ponder.evals._bfcl``)."""
        options = options or {}
        if solver is None:
            check_strategy(strategy, options)
        if dataset.family is TaskFamily.code and self.code_checker is None:
            raise ConfigError(
                f"dataset {dataset.name!r} is scored by running code and this runner has no code checker",
                hint="give EvalRunner a code_checker (e.g. one that runs the tests in the ToolServer sandbox)",
            )
        meta = RunMeta(
            dataset=dataset.name,
            dataset_path=str(dataset.path),
            family=dataset.family.value,
            strategy=strategy,
            options=options,
            label=label,
            model=getattr(self.ctx.model, "name", ""),
            limit=limit,
            offset=offset,
        )
        store = RunStore.open(run_dir, meta)
        previous = store.records()
        finished = {i for i, r in previous.items() if r.status == "ok" or not retry_failed}
        todo = [item for item in dataset.items if item.id not in finished]
        by_id = {item.id: item for item in dataset.items}
        jobs = [Job(item_id=i.id, strategy=strategy, options=options, task=i.task) for i in todo]
        solve = solver or make_solver(self.ctx, keep_events=self.keep_events)
        resumed = len(dataset.items) - len(todo)
        correct = sum(1 for i in dataset.items if i.id in finished and previous[i.id].correct)
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[acc]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console, disable=not self.progress) as bar:
            title = f"{dataset.name} / {label or strategy}"
            task_id = bar.add_task(title, total=len(dataset.items), completed=resumed, acc="")
            seen = resumed
            async for outcome in self.executor.map(jobs, solve, self.concurrency):
                item = by_id[outcome.item_id]
                score = None
                if outcome.result is not None and scorer is not None:
                    score = scorer(item, outcome.result)
                elif outcome.result is not None:
                    score = await score_item(
                        item.task.family, outcome.result.answer, item.gold, item.gold_extra, self.code_checker
                    )
                store.append(self._record(item, outcome, score))
                seen += 1
                correct += bool(score and score.correct)
                bar.update(task_id, advance=1, acc=f"acc {correct / seen:.1%}")
        records = store.records()
        mine = [records[i.id] for i in dataset.items if i.id in records]
        return RunSummary(
            run_dir=run_dir,
            items=len(mine),
            resumed=resumed,
            ran=len(jobs),
            ok=sum(r.status == "ok" for r in mine),
            failed=sum(r.status == "failed" for r in mine),
            correct=sum(r.correct for r in mine),
            tokens=sum(r.tokens for r in mine),
        )
