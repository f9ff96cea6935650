"""The event writer against a real SQLite store whose writes fail on purpose (a subclass at our own seam): a store
that is down loses nothing and publishes nothing unwritten; an item the store refuses is dropped alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ponder.api import RunRecord, RunStatus, RunStore
from ponder.api._store import StoredEvent
from ponder.api._writer import EventLog, StatusChange
from tests.api._support import record


class FlakyStore(RunStore):
    """Refuses every write while ``down`` is set, and any batch holding an event whose seq is in ``poison``."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.down = False
        self.poison: set[int] = set()
        self.failed = 0

    async def write_batch(
        self,
        events: Sequence[StoredEvent],
        updates: Sequence[tuple[str, dict[str, Any]]],
        runs: Sequence[RunRecord] = (),
    ) -> None:
        if self.down or any(e.seq in self.poison for e in events):
            self.failed += 1
            raise ConnectionError("the database is unavailable")
        await super().write_batch(events, updates, runs)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FlakyStore]:
    store = FlakyStore(f"sqlite:///{tmp_path / 'store.sqlite'}")
    await store.open()
    await store.create_run(record("r1"))
    yield store
    await store.close()


def event(seq: int) -> StoredEvent:
    return StoredEvent("r1", seq, "step_started", f'{{"n": {seq}}}')


async def test_a_store_that_is_down_loses_nothing_and_publishes_nothing_unwritten(store: FlakyStore) -> None:
    log = EventLog(store)
    log.start()
    seen: list[Any] = []

    async def follow() -> None:
        async for item in log.follow("r1", 0):
            seen.append(item)
            if isinstance(item, StatusChange) and item.status is RunStatus.succeeded:
                return

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.05)
    store.down = True
    for seq in range(1, 4):
        log.emit(event(seq))
    log.update("r1", status=RunStatus.succeeded)
    flushed = asyncio.create_task(log.flush())
    await asyncio.sleep(1.0)
    assert store.failed >= 3  # retried, with a growing pause
    assert not flushed.done()  # flush means written: it waits for the store
    assert [s.status for s in seen] == [RunStatus.queued]  # the stored status only: nothing unwritten is published
    store.down = False
    await asyncio.wait_for(flushed, 10)
    await asyncio.wait_for(follower, 5)
    assert [e.seq for e in await store.events_after("r1", 0)] == [1, 2, 3]
    assert [e.seq for e in seen if isinstance(e, StoredEvent)] == [1, 2, 3]
    got = await store.get_run("r1")
    assert got is not None and got.status is RunStatus.succeeded
    await log.close()


async def test_an_item_the_store_refuses_is_dropped_alone(store: FlakyStore) -> None:
    log = EventLog(store)
    log.start()
    store.poison = {3}
    for seq in range(1, 6):
        log.emit(event(seq))
    await asyncio.wait_for(log.flush(), 20)
    assert [e.seq for e in await store.events_after("r1", 0)] == [1, 2, 4, 5]
    log.emit(event(6))  # the writer goes on
    await asyncio.wait_for(log.flush(), 5)
    assert [e.seq for e in await store.events_after("r1", 0)][-1] == 6
    await log.close()


async def test_close_gives_up_waiting_for_a_dead_store(store: FlakyStore) -> None:
    log = EventLog(store)
    log.start()
    store.down = True
    log.emit(event(1))
    await asyncio.wait_for(log.close(timeout_s=0.5), 5)  # returns (and logs what is unwritten) instead of hanging
