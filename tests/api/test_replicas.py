"""Several API replicas on one database: each run executes on exactly one of them (its lease holder), and any
replica streams and cancels any run. Real servers on loopback ports sharing one SQLite file or one real Postgres
(the Postgres server is shared by other tests, so each test asks its own question and counts only that)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from ponder.api import RunRecord, RunStatus, RunStore, create_app
from tests.api._strategies import TEST_STRATEGIES
from tests.api._support import make_settings, reply
from tests.api.conftest import collect, serve, wait_status
from tests.fakes import FunctionModel


def replica(
    tmp_path: Path,
    name: str,
    model: FunctionModel,
    *,
    lease_s: float = 0.8,
    renew_s: float | None = None,
    database_url: str | None = None,
) -> FastAPI:
    """An app named ``name`` on the shared database (``tmp_path/runs.sqlite`` by default), with short leases."""
    settings = make_settings(tmp_path, database_url=database_url)
    settings.api = settings.api.model_copy(
        update={"replica_id": name, "lease_s": lease_s, "lease_renew_s": renew_s or lease_s / 4, "stream_poll_s": 0.05}
    )
    return create_app(settings, model=model, strategies=TEST_STRATEGIES)


def ids(events: list[dict[str, Any]]) -> list[int]:
    return [int(e["id"]) for e in events if "id" in e]


def restarts(events: list[dict[str, Any]]) -> int:
    return sum(1 for e in events if e.get("event") == "step_started" and json.loads(e["data"])["name"] == "restarted")


def asked(model: FunctionModel, question: str) -> int:
    """How many model calls were for ``question`` (the steps strategy asks "<question> #<step>")."""
    return sum(1 for r in model.requests if str(r.messages[-1].content).startswith(question + " #"))


def live(app: FastAPI, run_id: str) -> bool:
    return bool(app.state.service.runs.is_live(run_id))


STEPS = {"strategy": "steps", "input": {"question": "q"}}


async def test_a_run_on_one_replica_streams_and_cancels_through_another(tmp_path: Path, database_url: str) -> None:
    model_a, model_b = FunctionModel(reply), FunctionModel(reply)
    question = secrets.token_hex(6)
    a_app = replica(tmp_path, "a", model_a, database_url=database_url)
    with serve(a_app) as a, serve(replica(tmp_path, "b", model_b, database_url=database_url)) as b:
        async with a.client() as ca, b.client() as cb:
            body = {**STEPS, "input": {"question": question}, "options": {"steps": 40, "pause_s": 0.1}}
            run = (await ca.post("/runs", json=body)).json()
            first = await collect(cb, run["id"], limit=4)  # B follows the run live although A executes it
            assert ids(first) == [1, 2, 3, 4]
            assert live(a.app, run["id"])
            assert not live(b.app, run["id"])

            rest = asyncio.create_task(collect(cb, run["id"], headers={"Last-Event-ID": "4"}))
            await asyncio.sleep(0.3)
            cancelled = await cb.post(f"/runs/{run['id']}/cancel")
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == "cancelled"
            assert cancelled.json()["error"]["type"] == "Cancelled"
            assert not live(a.app, run["id"])  # A stopped executing it

            events = await asyncio.wait_for(rest, 5)
            assert events[-1] == {"event": "end", "data": json.dumps({"status": "cancelled"})}
            numbers = ids(events)
            assert numbers == list(range(5, numbers[-1] + 1))  # no gap after the reconnect
            assert numbers[-1] < 81  # 40 steps would be 81 events: it stopped early
            assert [e["event"] for e in events if "id" in e][-1] == "error"
            assert 4 <= asked(model_a, question) < 40
            assert asked(model_b, question) == 0
            record = (await cb.get(f"/runs/{run['id']}")).json()
            assert record["status"] == "cancelled"


async def test_start_up_recovery_leaves_a_run_whose_lease_is_renewed_alone(tmp_path: Path) -> None:
    model_a, model_b = FunctionModel(reply), FunctionModel(reply)
    with serve(replica(tmp_path, "a", model_a, lease_s=0.6)) as a:
        async with a.client() as ca:
            run = (await ca.post("/runs", json={**STEPS, "options": {"steps": 12, "pause_s": 0.2}})).json()
            await asyncio.sleep(1.0)  # longer than a lease: only A's renewals keep it
            with serve(replica(tmp_path, "b", model_b, lease_s=0.6)) as b:
                for _ in range(10):  # B's start-up recovery and its periodic sweeps
                    assert not live(b.app, run["id"])
                    await asyncio.sleep(0.1)
                async with b.client() as cb:
                    events = await collect(cb, run["id"])
            assert events[-1]["data"] == json.dumps({"status": "succeeded"})
            assert restarts(events) == 0
            assert ids(events) == list(range(1, 38))  # 12 steps x 3 events (step, model_call, llm_call) + final, once
            assert len(model_a.requests) == 12
            assert model_b.requests == []


async def test_a_run_whose_replica_died_is_recovered_exactly_once(tmp_path: Path, database_url: str) -> None:
    store = RunStore(database_url)
    await store.open()
    now = time.time()
    question = secrets.token_hex(6)
    orphan = RunRecord(
        id=f"run_{question}", owner="local", kind="run", strategy="steps", task={"question": question},
        options={"steps": 3, "pause_s": 0.0}, status=RunStatus.running, result=None, error=None, costs=None,
        pending=None, created_at=now, updated_at=now, replica="dead", lease_until=now - 1,
    )  # fmt: skip
    await store.create_run(orphan)
    await store.close()

    models = [FunctionModel(reply) for _ in range(3)]
    servers = [serve(replica(tmp_path, n, m, database_url=database_url)) for n, m in zip("bcd", models, strict=True)]
    with ThreadPoolExecutor(len(servers)) as pool:  # three replicas start at the same time
        started = list(pool.map(lambda cm: cm.__enter__(), servers))
    try:
        async with started[0].client() as client:
            await wait_status(client, orphan.id, "succeeded")
            events = await collect(client, orphan.id)
        assert restarts(events) == 1
        assert ids(events) == list(range(1, 12))  # restarted + 3 steps x 3 + final
        assert sorted(asked(m, question) for m in models) == [0, 0, 3]
    finally:
        for cm in servers:
            cm.__exit__(None, None, None)


async def test_a_cleanly_stopped_replica_hands_its_runs_over_at_once(tmp_path: Path) -> None:
    model_a, model_b = FunctionModel(reply), FunctionModel(reply)
    with serve(replica(tmp_path, "b", model_b, lease_s=60, renew_s=0.2)) as b:
        with serve(replica(tmp_path, "a", model_a, lease_s=60, renew_s=0.2)) as a:
            async with a.client() as ca:
                run = (await ca.post("/runs", json={**STEPS, "options": {"steps": 30, "pause_s": 0.1}})).json()
                await collect(ca, run["id"], limit=2)
        # A shut down: its lease is released, so B's sweep takes the run long before 60 s
        async with b.client() as cb:
            got = await wait_status(cb, run["id"], "succeeded", within_s=15)
            events = await collect(cb, run["id"])
    assert got["text"] == "hello"
    assert restarts(events) == 1
    assert ids(events) == list(range(1, ids(events)[-1] + 1))
    assert model_b.requests


async def test_a_planner_run_continues_on_another_replica_from_its_postgres_checkpoint(
    tmp_path: Path, postgres_url: str
) -> None:
    """Two hosts (their own data folders) on one Postgres: the planner's checkpoints live in that database, so the
    run A started and paused is resumed by B from where it stopped (no second plan, no repeated tool call)."""
    from tests.agents.planner._script import answer, call, plan, submit
    from tests.fakes import ScriptedModel

    model_a = ScriptedModel([plan("ask for x"), call("ask_human", question="What is x?")])
    model_b = ScriptedModel([submit("x is 3"), answer("3")])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with serve(replica(tmp_path / "a", "a", model_a, database_url=postgres_url)) as a:
        async with a.client() as ca:
            body = {"strategy": "planner", "input": {"question": f"x? {secrets.token_hex(4)}"}}
            run = (await ca.post("/runs", json=body)).json()
            waiting = await wait_status(ca, run["id"], "waiting", "failed")
            assert waiting["status"] == "waiting", waiting["error"]
    assert not list((tmp_path / "a").glob("checkpoints*"))  # nothing kept on host A's disk
    with serve(replica(tmp_path / "b", "b", model_b, database_url=postgres_url)) as b:
        async with b.client() as cb:
            resumed = await cb.post(f"/runs/{run['id']}/answer", json={"answer": "x is 3"})
            assert resumed.status_code == 200, resumed.text
            done = await wait_status(cb, run["id"], "succeeded", "failed")
    assert done["status"] == "succeeded", done["error"]
    assert done["text"] == "3"
    model_a.assert_complete()
    model_b.assert_complete()  # B made exactly the two remaining calls: it did not plan again


async def test_planner_runs_share_the_apps_pooled_checkpointer(tmp_path: Path, postgres_url: str) -> None:
    """The app opens one pooled checkpointer: runs (and their state reads) open no database sessions of their own,
    where a checkpointer per run opened one session each (counted by Postgres itself)."""
    import psycopg

    from tests.agents.planner._script import answer, plan, submit
    from tests.fakes import ScriptedModel

    async def sessions() -> int:
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            row = await (
                await conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            ).fetchone()
            assert row is not None
            return int(row[0])

    model = ScriptedModel([plan("add"), submit("2"), answer("2")] * 4)
    with serve(replica(tmp_path, "a", model, database_url=postgres_url)) as a:
        async with a.client() as client:
            await client.get("/healthz")
            before = await sessions()
            for _ in range(4):
                run = (await client.post("/runs", json={"strategy": "planner", "input": {"question": "1+1?"}})).json()
                assert (await wait_status(client, run["id"], "succeeded", "failed"))["status"] == "succeeded"
            opened = await sessions() - before - 1  # less the counting connection itself
    assert opened <= 2, f"{opened} database sessions opened by 4 runs"  # the pools may add one each at most
    model.assert_complete()
