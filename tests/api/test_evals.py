"""Eval jobs through the API: start a benchmark run, follow it, download its report and plots."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.api.conftest import Server, collect

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "benchmarks"


@pytest.fixture
def gsm8k(tmp_path: Path) -> None:
    source = SHARED / "gsm8k.jsonl.gz"
    if not source.is_file():
        pytest.skip("needs the shared benchmark files (../shared/benchmarks)")
    (tmp_path / "benchmarks").mkdir(exist_ok=True)
    shutil.copy(source, tmp_path / "benchmarks" / "gsm8k.jsonl.gz")


@pytest.mark.usefixtures("gsm8k")
async def test_an_eval_job_runs_reports_and_plots(make_server: Callable[..., Server]) -> None:
    server = make_server(keys=["alice", "bob"])
    async with server.client("alice") as client, server.client("bob") as bob:
        datasets = {d["name"]: d for d in (await client.get("/evals/datasets")).json()}
        assert datasets["gsm8k"]["available"] is True
        assert datasets["svamp"]["available"] is False

        created = await client.post(
            "/evals", json={"dataset": "gsm8k", "strategy": "cot", "limit": 4, "concurrency": 2}
        )
        assert created.status_code == 201, created.text
        job = created.json()
        assert job["id"].startswith("eval_")
        events = await collect(client, job["id"])
        names = [json.loads(e["data"]).get("name") for e in events if e.get("event") == "step_started"]
        assert names[0] == "eval"
        assert names.count("item") == 4
        assert names[-1] == "report"
        assert json.loads(events[-1]["data"]) == {"status": "succeeded"}

        done = (await client.get(f"/evals/{job['id']}")).json()
        assert done["status"] == "succeeded"
        assert done["progress"]["done"] == done["progress"]["total"] == 4
        assert done["result"]["items"] == 4
        # the fake model always answers 4: the score is whatever the gold answers make of that
        assert done["progress"]["correct"] == done["result"]["correct"]
        assert set(done["files"]) == {"report", "accuracy", "tokens"}
        report = await client.get(done["files"]["report"])
        assert report.status_code == 200
        assert "gsm8k" in report.text
        plot = await client.get(done["files"]["accuracy"])
        assert plot.headers["content-type"] == "image/png"
        assert plot.content.startswith(b"\x89PNG")
        assert [e["id"] for e in (await client.get("/evals")).json()] == [job["id"]]

        # owned by its key, and not a chat run
        assert (await bob.get(f"/evals/{job['id']}")).status_code == 403
        assert (await bob.get(done["files"]["report"])).status_code == 403
        assert (await bob.get("/evals")).json() == []
        assert (await client.get(f"/runs/{job['id']}")).status_code == 404
        assert job["id"] not in [r["id"] for r in (await client.get("/runs")).json()["runs"]]
        assert (await client.post(f"/evals/{job['id']}/cancel")).status_code == 409


@pytest.mark.usefixtures("gsm8k")
async def test_bad_eval_requests(make_server: Callable[..., Server]) -> None:
    server = make_server()
    async with server.client() as client:
        unknown = await client.post("/evals", json={"dataset": "/etc/passwd"})
        assert unknown.status_code == 404
        assert "gsm8k" in unknown.json()["error"]["hint"]
        missing = await client.post("/evals", json={"dataset": "svamp"})
        assert missing.status_code == 404
        assert "benchmark files" in missing.json()["error"]["hint"]
        no_strategy = await client.post("/evals", json={"dataset": "gsm8k", "strategy": "nope"})
        assert no_strategy.status_code == 404
        bad_file = await client.get("/evals/eval_x/files/../../secret")
        assert bad_file.status_code == 404


@pytest.mark.usefixtures("gsm8k")
async def test_an_eval_job_can_be_cancelled(make_server: Callable[..., Server]) -> None:
    from tests.api._support import slow_reply
    from tests.fakes import FunctionModel

    server = make_server(model=FunctionModel(slow_reply(5.0)))
    async with server.client() as client:
        job = (await client.post("/evals", json={"dataset": "gsm8k", "limit": 3, "concurrency": 1})).json()
        await wait_status_eval(client, job["id"], "running")
        cancelled = await client.post(f"/evals/{job['id']}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["progress"]["done"] == 0


async def wait_status_eval(client: object, eval_id: str, status: str) -> None:
    import asyncio

    for _ in range(200):
        got = (await client.get(f"/evals/{eval_id}")).json()  # type: ignore[attr-defined]
        if got["status"] == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"eval {eval_id} never became {status}")
