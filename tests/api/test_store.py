"""The run store on both databases it supports: SQLite (a file) and Postgres (a real server started for the test
session); then the whole API on Postgres, restarted onto the same database."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from ponder.agents import StrategyResult, Task
from ponder.api import RunStatus, RunStore, create_app
from ponder.api._store import StoredEvent, async_url
from ponder.errors import ConfigError
from ponder.llm import Costs
from tests.api._strategies import TEST_STRATEGIES
from tests.api._support import make_settings, record, reply
from tests.api.conftest import collect, serve
from tests.fakes import FunctionModel


async def test_runs_and_events_round_trip(database_url: str) -> None:
    store = RunStore(database_url)
    await store.open()
    try:
        prefix = f"r{time.monotonic_ns()}"  # the Postgres server is shared by the module's tests
        await store.create_run(record(f"{prefix}a"))
        await store.create_run(record(f"{prefix}b", owner="bob"))
        events = [StoredEvent(f"{prefix}a", seq, "step_started", f'{{"n": {seq}}}') for seq in range(1, 6)]
        await store.write_batch(events[:3], [(f"{prefix}a", {"status": RunStatus.running})])
        await store.write_batch(events[3:], [])
        assert await store.last_seq(f"{prefix}a") == 5
        assert await store.last_seq(f"{prefix}b") == 0
        assert [e.seq for e in await store.events_after(f"{prefix}a", 2)] == [3, 4, 5]
        assert (await store.events_after(f"{prefix}a", 0))[0].data == '{"n": 1}'
        unfinished = {r.id for r in await store.unfinished_runs()}
        assert {f"{prefix}a", f"{prefix}b"} <= unfinished
        result = StrategyResult(answer=4, text="4", details={"nested": {"list": [1, 2]}})
        costs = Costs(llm_calls=2, prompt_tokens=30, completion_tokens=7)
        values = {"status": RunStatus.succeeded, "result": result, "costs": costs}
        await store.write_batch([], [(f"{prefix}a", values)])
        got = await store.get_run(f"{prefix}a")
        assert got is not None
        assert got.status is RunStatus.succeeded
        assert got.result == result and got.costs == costs and got.task == Task(question="q")
        assert got.options == {"k": 1}
        assert f"{prefix}a" not in {r.id for r in await store.unfinished_runs()}
        mine = await store.list_runs("bob")
        assert f"{prefix}b" in [r.id for r in mine]
        assert all(r.owner == "bob" for r in mine)
        with pytest.raises(Exception):  # noqa: B017 - the driver's own integrity error: a sequence number is unique
            await store.write_batch([events[0]], [])
    finally:
        await store.close()


def test_database_urls_map_to_async_drivers() -> None:
    assert async_url("sqlite:////data/p.sqlite") == "sqlite+aiosqlite:////data/p.sqlite"
    assert async_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert async_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(ConfigError, match="unsupported database URL"):
        async_url("mysql://u@h/db")


async def test_unreachable_database_is_a_config_error() -> None:
    store = RunStore("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(ConfigError, match="cannot open the run database"):
        await store.open()


async def test_the_api_on_postgres_serves_runs_after_a_restart(postgres_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=postgres_url)
    with serve(create_app(settings, model=FunctionModel(reply), strategies=TEST_STRATEGIES)) as server:
        async with server.client() as client:
            run = (await client.post("/runs", json={"strategy": "cot", "input": {"question": "2+2?"}})).json()
            first = await collect(client, run["id"])
    with serve(create_app(settings, model=FunctionModel(reply), strategies=TEST_STRATEGIES)) as server:
        async with server.client() as client:
            got = (await client.get(f"/runs/{run['id']}")).json()
            assert got["status"] == "succeeded"
            assert got["text"] == "4"
            replay = await collect(client, run["id"])
            assert [e for e in replay if "id" in e] == [e for e in first if "id" in e]  # status notes may differ


async def test_of_replicas_claiming_one_run_at_once_exactly_one_gets_it(database_url: str) -> None:
    stores = [RunStore(database_url) for _ in range(4)]  # four engines: four replicas' connection pools
    for store in stores:
        await store.open()
    try:
        run_id = f"r{time.monotonic_ns()}"
        await stores[0].create_run(record(run_id, status=RunStatus.running))  # no lease: its holder is unknown
        now, unfinished = time.time(), ["queued", "running"]
        got = await asyncio.gather(
            *(s.claim(run_id, f"replica{i}", now, 30, statuses=unfinished) for i, s in enumerate(stores))
        )
        assert sorted(got) == [False, False, False, True]
        holder = f"replica{got.index(True)}"
        other = "replica9"
        assert not await stores[1].claim(run_id, other, now + 29, 30, statuses=unfinished)  # still leased
        assert not await stores[1].claim(run_id, other, now + 31, 30, statuses=["queued"])  # wrong status
        assert run_id not in {r.id for r in await stores[1].unfinished_runs(unleased_at=now + 29)}

        held, leased, cancel = await stores[2].renew([run_id], holder, now + 60)
        assert (held, leased, cancel) == ({run_id}, {run_id}, set())
        assert not await stores[1].claim(run_id, other, now + 31, 30, statuses=unfinished)  # renewed to now+60
        assert (await stores[3].renew([run_id], other, now + 60))[0] == set()  # renewing is only for the holder
        await stores[3].request_cancel(run_id)
        assert (await stores[0].renew([run_id], holder, now + 60))[2] == {run_id}

        await stores[0].release([run_id], holder)  # a clean shutdown: claimable at once
        assert run_id in {r.id for r in await stores[1].unfinished_runs(unleased_at=now)}
        assert await stores[1].claim(run_id, other, now, 30, statuses=unfinished)
        assert (await stores[0].renew([run_id], holder, now + 60))[0] == set()  # the old holder lost it
        got_record = await stores[0].get_run(run_id)
        assert got_record is not None
        assert (got_record.replica, got_record.cancel_requested) == (other, True)
    finally:
        for store in stores:
            await store.close()


async def test_an_older_database_gets_the_lease_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:  # the table as the first release created it, with one run in it
        conn.execute(
            "CREATE TABLE ponder_runs (id VARCHAR(40) PRIMARY KEY, owner VARCHAR(64) NOT NULL, kind VARCHAR(16) "
            "NOT NULL, strategy VARCHAR(64) NOT NULL, task JSON NOT NULL, options JSON NOT NULL, status VARCHAR(16) "
            "NOT NULL, result JSON, error JSON, costs JSON, pending JSON, created_at FLOAT NOT NULL, "
            "updated_at FLOAT NOT NULL)"
        )
        insert = "INSERT INTO ponder_runs VALUES (?, 'alice', ?, 'cot', ?, '{}', ?, ?, ?, ?, ?, 1.0, 1.0)"
        conn.execute(insert, ("old", "run", '{"question": "2+2?"}', "running", None, None, None, None))
        # finished and waiting runs and an eval job, their JSON columns as the previous version wrote them
        result = '{"answer": 4.0, "text": "4", "reasoning": "2+2", "costs": {}, "tool_calls": 0, "details": {}}'
        costs = '{"llm_calls": 1, "prompt_tokens": 20, "completion_tokens": 5, "llm_seconds": 0.5}'
        failed = '{"type": "Cancelled", "message": "the run was cancelled", "hint": "", "retryable": false}'
        pending = '{"question": "who?", "interrupt_id": "x-1"}'
        conn.execute(insert, ("done", "chat", '{"question": "2+2?", "family": "number"}', "succeeded", result,
                              None, costs, None))  # fmt: skip
        conn.execute(insert, ("stopped", "run", '{"question": "q"}', "cancelled", None, failed, costs, None))
        conn.execute(insert, ("asks", "run", '{"question": "q"}', "waiting", None, None, costs, pending))
        spec = '{"dataset": "gsm8k", "strategy": "cot", "options": {}, "limit": 2, "offset": 0, "concurrency": 2}'
        summary = '{"items": 2, "resumed": 0, "ran": 2, "ok": 2, "failed": 0, "correct": 1, "tokens": 90, '
        summary += '"accuracy": 0.5, "report": {"md": "report.md"}}'
        failure = '{"type": "ValueError", "message": "bad line"}'  # the previous eval job's non-ponder error
        conn.execute(insert, ("job", "eval", spec, "succeeded", summary, None, None, None))
        conn.execute(insert, ("job2", "eval", spec, "failed", None, failure, None, None))
    store = RunStore(f"sqlite:///{path}")
    await store.open()
    try:
        old = await store.get_run("old")
        assert old is not None
        assert (old.replica, old.lease_until, old.cancel_requested) == (None, None, False)
        done, stopped, asks = [await store.get_run(i) for i in ("done", "stopped", "asks")]
        assert done is not None and done.strategy_result is not None and done.strategy_result.answer == 4
        assert done.run_task.family == "number" and done.costs is not None and done.costs.prompt_tokens == 20
        assert stopped is not None and stopped.error is not None and stopped.error.type == "Cancelled"
        assert asks is not None and asks.pending is not None and asks.pending.interrupt_id == "x-1"
        job, job2 = await store.get_run("job"), await store.get_run("job2")
        assert job is not None and job.eval_result is not None and job.eval_result.accuracy == 0.5
        assert job.eval_spec.limit == 2
        assert job2 is not None and job2.error is not None and job2.error.message == "bad line"
        assert await store.claim("old", "a", time.time(), 30, statuses=["running"])
        await store.create_run(record("new"))
        assert {r.id for r in await store.unfinished_runs()} == {"old", "new", "asks"}
        # each REST run of the older database became a conversation of its own (chat runs and eval jobs did not)
        adopted = await store.list_conversations("alice")
        assert sorted(c.title for c in adopted) == ["2+2?", "q", "q"] and all(c.turns == 1 for c in adopted)
        assert old.conversation_id in {c.id for c in adopted} and done.conversation_id is None
    finally:
        await store.close()
    await store.open()  # a second open finds the columns there and adds nothing
    try:
        titles = sorted(c.title for c in await store.list_conversations("alice"))
        assert titles == ["2+2?", "q", "q", "q"]  # nothing adopted twice; "new", stored without one, is adopted
    finally:
        await store.close()
