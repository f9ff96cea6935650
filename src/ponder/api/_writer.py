"""The one path events take: numbered by the run, written to the store in batches, then published to followers.

Strategies never wait for the database: :meth:`EventLog.emit` only enqueues. A single writer task drains the
queue, writes what it found in one transaction and only then tells followers, so every event a client sees is
already persisted (a reconnect after a crash cannot miss one) and ids never go backwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ponder.api._record import RunRecord, RunStatus
from ponder.api._store import RunStore, StoredEvent

log = logging.getLogger(__name__)

_MAX_BATCH = 2000
_RETRY_CAP_S = 5.0  # longest wait between two attempts to write a batch
_ISOLATE_AFTER = 5  # failed attempts of one batch before its items are written one by one


@dataclass(frozen=True)
class StatusChange:
    run_id: str
    status: RunStatus


@dataclass(frozen=True)
class _Update:
    run_id: str
    values: dict[str, Any]


Item = StoredEvent | StatusChange
_Data = RunRecord | StoredEvent | _Update
_Op = _Data | asyncio.Future[None]


class EventLog:
    def __init__(self, store: RunStore, *, poll_s: float = 0.5) -> None:
        self.store = store
        self.poll_s = poll_s
        # whether a run executes in this process; a follower of one that does not (it runs on another replica
        # sharing the database) polls the store every ``poll_s`` instead of waiting for it to be published here
        self.is_local: Callable[[str], bool] = lambda _run_id: True
        self._queue: asyncio.Queue[_Op] = asyncio.Queue()
        self._followers: dict[str, set[asyncio.Queue[Item | None]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._write_loop(), name="ponder-event-writer")

    def end_streams(self) -> None:
        """End every open stream now (clients reconnect with Last-Event-ID). Safe to call from any thread."""
        if self._loop is None or self._loop.is_closed():
            return

        def end() -> None:
            for queues in self._followers.values():
                for queue in queues:
                    queue.put_nowait(None)

        self._loop.call_soon_threadsafe(end)

    async def close(self, timeout_s: float = 10.0) -> None:
        try:
            await asyncio.wait_for(self.flush(), timeout_s)
        except TimeoutError:
            log.error("the store did not take the last %d queued items within %.0f s", self._queue.qsize(), timeout_s)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def insert_run(self, record: RunRecord) -> None:
        """Store a new run, batched with whatever else is being written; returns once it is committed."""
        self._queue.put_nowait(record)
        await self.flush()

    def emit(self, event: StoredEvent) -> None:
        self._queue.put_nowait(event)

    def update(self, run_id: str, **values: Any) -> None:
        """Change a run's record, in order with its events (a status change is published once written)."""
        self._queue.put_nowait(_Update(run_id, values))

    async def flush(self) -> None:
        """Wait until everything emitted so far is written and published."""
        if self._task is None or self._task.done():
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(done)
        await done

    async def _write_loop(self) -> None:
        carried: list[_Op] = []  # a batch that could not be written yet: retried, never dropped while the store is down
        failures = 0
        while True:
            if carried:
                await asyncio.sleep(min(_RETRY_CAP_S, 0.1 * 2**failures))
                batch = carried
            else:
                batch = [await self._queue.get()]
            while len(batch) < _MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            data: list[_Data] = [op for op in batch if not isinstance(op, asyncio.Future)]
            try:
                await self._write(data)
            except Exception:
                failures += 1
                log.exception("writing %d items failed (attempt %d); kept for the next attempt", len(data), failures)
                if failures < _ISOLATE_AFTER:
                    carried = batch
                    continue
                # the same batch keeps failing: write its items one by one, so one bad item cannot hold back the
                # rest; if none can be written the store itself is down, and everything is kept
                written = await self._write_each(data)
                if not written:
                    carried = batch
                    continue
                batch = [op for op in batch if isinstance(op, asyncio.Future) or id(op) in written]
            carried, failures = [], 0
            for op in batch:
                if isinstance(op, StoredEvent):
                    self._publish(op.run_id, op)
                elif isinstance(op, _Update):
                    status = op.values.get("status")
                    if status is not None:
                        self._publish(op.run_id, StatusChange(op.run_id, RunStatus(status)))
                elif isinstance(op, asyncio.Future) and not op.done():
                    op.set_result(None)

    async def _write(self, ops: list[_Data]) -> None:
        runs = [op for op in ops if isinstance(op, RunRecord)]
        events = [op for op in ops if isinstance(op, StoredEvent)]
        updates = [(op.run_id, op.values) for op in ops if isinstance(op, _Update)]
        await self.store.write_batch(events, updates, runs)

    async def _write_each(self, ops: list[_Data]) -> set[int]:
        """Write ``ops`` one at a time, in order; the ids of those written. When some are written, the others are
        items the store refuses (they would fail forever): those are logged and dropped."""
        written: set[int] = set()
        refused: list[_Data] = []
        for op in ops:
            try:
                await self._write([op])
            except Exception:  # noqa: BLE001 - logged below once it is clear which items the store refuses
                refused.append(op)
            else:
                written.add(id(op))
        if written:
            for op in refused:
                log.error("the store refuses %r; dropped after %d attempts", op, _ISOLATE_AFTER)
        return written

    def _publish(self, run_id: str, item: Item) -> None:
        for queue in self._followers.get(run_id, ()):
            queue.put_nowait(item)

    async def follow(self, run_id: str, after: int) -> AsyncIterator[Item]:
        """Every event of ``run_id`` with a sequence number above ``after``, then live ones and status changes,
        until the run is finished (the last item is then a :class:`StatusChange` to a finished status)."""
        queue: asyncio.Queue[Item | None] = asyncio.Queue()
        self._followers[run_id].add(queue)  # subscribe before reading, so nothing falls between the two
        try:
            record = await self.store.get_run(run_id)
            last = after
            while True:  # the persisted backlog, in pages
                page = await self.store.events_after(run_id, last, limit=1000)
                for event in page:
                    yield event
                    last = event.seq
                if len(page) < 1000:
                    break
            if record is not None and record.status.finished:
                while not queue.empty():  # events written between the two reads
                    item = queue.get_nowait()
                    if item is None:
                        return
                    if isinstance(item, StoredEvent) and item.seq > last:
                        yield item
                        last = item.seq
                yield StatusChange(run_id, record.status)
                return
            if record is None:
                return
            status = record.status
            yield StatusChange(run_id, status)
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), self.poll_s)
                except TimeoutError:
                    if self.is_local(run_id):
                        continue
                    current = await self.store.get_run(run_id)  # status first: its events are written before it
                    if current is None:
                        return
                    for event in await self.store.events_after(run_id, last):
                        yield event
                        last = event.seq
                    if current.status is not status:
                        status = current.status
                        yield StatusChange(run_id, status)
                        if status.finished:
                            return
                    continue
                if item is None:  # the server is shutting down
                    return
                if isinstance(item, StoredEvent):
                    if item.seq <= last:
                        continue
                    last = item.seq
                else:
                    status = item.status
                yield item
                if isinstance(item, StatusChange) and item.status.finished:
                    return
        finally:
            self._followers[run_id].discard(queue)
            if not self._followers[run_id]:
                self._followers.pop(run_id, None)
