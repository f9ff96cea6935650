"""Runs: start a strategy as a task, feed its events to the log, answer human questions, cancel, recover.

A run's life: ``queued -> running -> (waiting -> running)* -> succeeded | failed | cancelled``. After a restart,
runs that were queued or running start again: from the strategy's checkpoint when it is resumable, otherwise from
the beginning; either way their events continue the same numbering, so a follower sees no gap.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any, TypeVar

from ponder.agents import (
    Context,
    ErrorRaised,
    Event,
    FinalAnswer,
    LiveModel,
    NeedsHuman,
    StepStarted,
    StrategyResult,
    Task,
    drive,
)
from ponder.agents._run import Mode  # start, answer (a human's, or a client tool's result), recover
from ponder.api._catalog import StrategyCatalog
from ponder.api._lease import Leases
from ponder.api._live_run import LiveRun, log_event
from ponder.api._metrics import Metrics
from ponder.api._models import service_model
from ponder.api._record import Conversation, ErrorInfo, Kind, PendingQuestion, RunRecord, RunStatus
from ponder.api._store import RunStore, StoredEvent
from ponder.api._writer import EventLog
from ponder.errors import Cancelled, Conflict, NotFoundError, PermissionDenied, PonderError, RateLimited, StrategyError
from ponder.llm import Costs

log = logging.getLogger(__name__)


Owned = TypeVar("Owned", RunRecord, Conversation)


def owned(found: Owned | None, owner: str, what: str, ident: str, hint: str) -> Owned:
    """``found`` if it exists and is ``owner``'s: 404 when it does not exist, 403 when another key owns it."""
    if found is None:
        raise NotFoundError(f"no {what} {ident!r}", hint=hint)
    if found.owner != owner:
        raise PermissionDenied(f"{what} {ident!r} belongs to another API key")
    return found


class RunManager:
    def __init__(
        self,
        store: RunStore,
        events: EventLog,
        catalog: StrategyCatalog,
        base: Context,
        metrics: Metrics,
        leases: Leases | None = None,
        *,
        max_active_per_key: int = 0,
        token_budget: int = 0,
        record_prompts: bool = True,
    ):
        self.store = store
        self.leases = leases or Leases(store, "local")
        self.events = events
        self.catalog = catalog
        self.base = base  # model, tools, search and settings shared by every run
        self.metrics = metrics
        self._live: dict[str, LiveRun] = {}
        self._closing = False
        self.max_active_per_key = max_active_per_key  # 0: no limit
        self.token_budget = token_budget  # 0: no limit
        self.record_prompts = record_prompts  # each model call's messages and outputs as a model_call event

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def active_count(self) -> int:
        return len(self._live)

    # ---- creating and reading ----

    async def create(
        self,
        owner: str,
        strategy: str,
        task: Task,
        options: dict[str, Any],
        *,
        kind: Kind = "run",
        conversation_id: str | None = None,
        new_conversation: bool = False,
    ) -> RunRecord:
        """A queued run, started in the background. A run made by the REST API is a turn of a conversation: of
        ``conversation_id`` (the caller's own), or of a new one titled by its question (``new_conversation``)."""
        options = self.catalog.validate_options(strategy, options)
        self.catalog.build(strategy, options)  # fail now, not in the background, if it cannot be built
        conversation = await self.conversation(conversation_id, owner) if conversation_id else None
        if self.max_active_per_key and await self.store.count_active(owner) >= self.max_active_per_key:
            self.metrics.limited.labels("active_runs").inc()
            raise RateLimited(
                f"this API key has {self.max_active_per_key} runs queued or running, its limit",
                hint="wait for one to finish (or cancel one), then start this again",
                retry_after_s=5,
            )
        if conversation is None and new_conversation:
            conversation = Conversation.new(owner, task.question)
            await self.store.create_conversation(conversation)
        elif conversation is not None:
            await self.store.update_conversation(conversation.id, updated_at=time.time())
        record = RunRecord.new(
            kind,
            owner,
            strategy,
            task,
            options,
            replica=self.leases.replica,
            lease_until=self.leases.until(),
            conversation_id=conversation.id if conversation is not None else None,
        )
        await self.events.insert_run(record)
        self._spawn(record, "start", seq=0)
        return record

    async def get(self, run_id: str, owner: str) -> RunRecord:
        return owned(await self.store.get_run(run_id), owner, "run", run_id, "list your runs with GET /runs")

    async def conversation(self, conversation_id: str, owner: str) -> Conversation:
        found = await self.store.get_conversation(conversation_id)
        return owned(found, owner, "conversation", conversation_id, "list yours with GET /conversations")

    async def delete_conversation(self, conversation_id: str, owner: str) -> None:
        await self.conversation(conversation_id, owner)
        turns = await self.store.list_runs(owner, conversation_id=conversation_id, limit=10_000)
        busy = next((r for r in turns if not r.status.finished), None)
        if busy is not None:
            raise Conflict(
                f"conversation {conversation_id!r} has a turn still {busy.status.value} ({busy.id})",
                hint=f"stop it first (POST /runs/{busy.id}/cancel), then delete the conversation",
            )
        await self.store.delete_conversation(conversation_id)

    # ---- acting on a run ----

    async def answer(self, run_id: str, owner: str, answer: str, interrupt_id: str | None = None) -> RunRecord:
        record = await self.get(run_id, owner)
        if record.kind == "eval":
            raise Conflict(f"{run_id!r} is an eval job; it asks no questions")
        if record.status is not RunStatus.waiting or run_id in self._live:
            raise Conflict(
                f"run {run_id!r} is {record.status.value}, not waiting for a human answer",
                hint="answer a run only after its stream sent a needs_human event",
            )
        if not self.catalog.strategy_class(record.strategy).resumable:
            raise Conflict(
                f"strategy {record.strategy!r} cannot be resumed, so its question cannot be answered",
                hint="start a new run with the extra information in the task's context",
            )
        pending = record.pending.interrupt_id if record.pending is not None else ""
        if interrupt_id and pending and interrupt_id != pending:
            raise Conflict(
                f"interrupt {interrupt_id!r} is not the pending one ({pending!r})",
                hint="answer the latest needs_human event of the stream",
            )
        if not await self.leases.claim(run_id, statuses=[RunStatus.waiting.value]):
            raise Conflict(f"run {run_id!r} is being resumed already", hint="follow its event stream")
        seq = await self.store.last_seq(run_id)
        live = self._spawn(record, "answer", seq=seq, answer=answer)
        self._emit(run_id, live, StepStarted(name="human_answer", detail=answer))
        self.events.update(run_id, status=RunStatus.running, pending=None)
        await self.events.flush()
        return await self.get(run_id, owner)

    async def cancel(self, run_id: str, owner: str) -> RunRecord:
        record = await self.get(run_id, owner)
        if record.kind == "eval":
            raise Conflict(f"{run_id!r} is an eval job", hint=f"cancel it with POST /evals/{run_id}/cancel")
        if record.status.finished:
            raise Conflict(f"run {run_id!r} is already {record.status.value}")
        live = self._live.get(run_id)
        if live is not None and live.task is not None:
            live.task.cancel()
            await asyncio.gather(live.task, return_exceptions=True)
        elif await self.leases.claim(run_id, statuses=[record.status.value]):
            # waiting for a human, or left by a replica that died: nobody executes it, so end it here
            seq = await self.store.last_seq(run_id)
            self._finish_cancelled(run_id, LiveRun(seq), record.strategy)
        else:  # another replica executes it: ask it, and give it a lease renewal or two to comply
            await self.store.request_cancel(run_id)
            pause = min(0.1, self.leases.renew_s / 4)
            for _ in range(int((2 * self.leases.renew_s + 1) / pause)):  # the store is the only news from there
                if (await self.get(run_id, owner)).status.finished:
                    break
                await asyncio.sleep(pause)
        await self.events.flush()
        return await self.get(run_id, owner)

    def is_live(self, run_id: str) -> bool:
        return run_id in self._live

    async def wait(self, run_id: str) -> None:
        """Until the run's current segment ends (finished or waiting for a human)."""
        live = self._live.get(run_id)
        if live is not None and live.task is not None:
            await asyncio.gather(live.task, return_exceptions=True)
        await self.events.flush()

    # ---- lifecycle ----

    async def recover(self, *, startup: bool = False) -> int:
        """Start again the runs left queued or running by a process that died (its lease expired); at start-up
        also those this replica itself held before a restart. Returns how many."""
        count = 0
        for record in await self.store.unfinished_runs(unleased_at=None if startup else time.time()):
            if record.status is RunStatus.waiting or record.kind == "eval" or record.id in self._live:
                continue  # eval jobs are recovered by EvalJobs
            if self._closing:
                break
            statuses = [RunStatus.queued.value, RunStatus.running.value]
            if not await self.leases.claim(record.id, statuses=statuses, mine_ok=startup):
                continue  # alive on another replica, or another replica claimed it first
            seq = await self.store.last_seq(record.id)
            resumable = self.catalog.strategy_class(record.strategy).resumable
            live = self._spawn(record, "recover", seq=seq)
            detail = (
                "the server restarted; resuming from the last checkpoint"
                if resumable and seq
                else "the server restarted; running again from the start"
            )
            self._emit(record.id, live, StepStarted(name="restarted", detail=detail))
            count += 1
        return count

    async def close(self) -> None:
        """Stop executing; unfinished runs keep their status and are recovered by the next process."""
        self._closing = True
        tasks: list[asyncio.Task[None]] = [live.task for live in self._live.values() if live.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- internals ----

    def _spawn(self, record: RunRecord, mode: Mode, *, seq: int, answer: str | None = None) -> LiveRun:
        live = LiveRun(seq)
        self._live[record.id] = live
        live.task = asyncio.create_task(self._execute(record, live, mode, answer), name=f"ponder-{record.id}")
        self.leases.hold(record.id, live.stop)
        return live

    def _emit(self, run_id: str, live: LiveRun, event: Event) -> None:
        live.seq += 1
        self.events.emit(StoredEvent(run_id, live.seq, event.type, event.model_dump_json()))
        log_event(run_id, event)

    def _context(self, record: RunRecord, live: LiveRun, costs: Costs) -> Context:
        measured = service_model(self.base.model, self.metrics, record.strategy, costs=costs, budget=self.token_budget)
        live_model = LiveModel(
            measured, lambda event: self._emit(record.id, live, event), record_calls=self.record_prompts
        )
        return dataclasses.replace(self.base, model=live_model, run_id=record.id, options=dict(record.options))

    async def _execute(self, record: RunRecord, live: LiveRun, mode: Mode, answer: str | None) -> None:
        run_id, strategy = record.id, record.strategy
        costs = record.costs.model_copy() if record.costs is not None else Costs()
        start = time.perf_counter()
        self.metrics.runs_started.labels(strategy).inc()
        self.metrics.runs_active.labels(strategy).inc()
        if mode != "answer":
            self.events.update(run_id, status=RunStatus.running)
        final: FinalAnswer | None = None
        pending: NeedsHuman | None = None
        try:
            ctx = self._context(record, live, costs)
            built = self.catalog.build(record.strategy, record.options)
            async for event in drive(
                built, record.run_task, ctx, mode=mode, answer=answer, costs=costs
            ):  # metered into costs
                self._emit(run_id, live, event)
                self.metrics.events.labels(event.type).inc()
                if isinstance(event, FinalAnswer):
                    final = event
                elif isinstance(event, NeedsHuman):
                    pending = event
        except asyncio.CancelledError:
            if not self._closing and not live.lost:
                self._finish_cancelled(run_id, live, strategy, costs)
            raise
        except Exception as exc:
            if not isinstance(exc, PonderError):
                log.exception("run %s failed", run_id)
            self._fail(run_id, live, strategy, exc, costs)
        else:
            if final is not None:
                result = StrategyResult.model_validate(final.result)
                self._finish(run_id, strategy, RunStatus.succeeded, result=result, costs=costs)
            elif pending is not None:
                question = PendingQuestion(
                    question=pending.question, interrupt_id=pending.interrupt_id, tool_call=pending.tool_call
                )
                self.events.update(run_id, status=RunStatus.waiting, pending=question, costs=costs, lease_until=None)
            else:
                no_answer = StrategyError(
                    "the strategy ended without a final answer", hint="see the run's events for what it did"
                )
                self._fail(run_id, live, strategy, no_answer, costs)
        finally:
            self.metrics.runs_active.labels(strategy).dec()
            self.metrics.run_seconds.labels(strategy).observe(time.perf_counter() - start)
            if self._live.get(run_id) is live:
                del self._live[run_id]
                self.leases.drop(run_id)

    def _finish(self, run_id: str, strategy: str, status: RunStatus, *, costs: Costs, **values: Any) -> None:
        self.metrics.runs.labels(strategy, status.value).inc()
        self.events.update(run_id, status=status, pending=None, costs=costs, lease_until=None, **values)

    def _fail(
        self,
        run_id: str,
        live: LiveRun,
        strategy: str,
        exc: BaseException,
        costs: Costs,
        status: RunStatus | None = None,
    ) -> None:
        """End the run on ``exc``: its error event, then the record (failed, or ``status``)."""
        error = ErrorInfo.of(exc)
        self._emit(run_id, live, ErrorRaised(error=error.model_dump(), fatal=True))
        self._finish(run_id, strategy, status or RunStatus.failed, error=error, costs=costs)

    def _finish_cancelled(self, run_id: str, live: LiveRun, strategy: str, costs: Costs | None = None) -> None:
        cancelled = Cancelled("the run was cancelled", hint="")
        self._fail(run_id, live, strategy, cancelled, costs or Costs(), RunStatus.cancelled)
