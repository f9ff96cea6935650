"""The server as its own process: killed mid-run and restarted, the run resumes and its stream has no gap; and
schemathesis's generated requests against the OpenAPI schema never get a 5xx."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import read_sse

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    def __init__(self, data: Path, port: int, delay: float) -> None:
        self.args = [sys.executable, "-m", "tests.api._support", "--data", str(data), "--port", str(port)]
        self.args += ["--delay", str(delay)]
        self.url = f"http://127.0.0.1:{port}"
        self.log = data / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("the server did not answer within 30 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def process(tmp_path: Path) -> Iterator[Process]:
    proc = Process(tmp_path, free_port(), delay=0.15)
    yield proc
    proc.stop()


async def read_until(
    client: httpx.AsyncClient, run_id: str, last_id: int, stop_after: int | None
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with client.stream("GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": str(last_id)}) as response:
        assert response.status_code == 200
        async for event in read_sse(response):
            events.append(event)
            if event.get("event") == "end" or (stop_after and "id" in event and int(event["id"]) >= stop_after):
                break
    return events


async def test_a_killed_server_resumes_its_runs_without_a_gap_in_the_stream(process: Process) -> None:
    process.start()
    async with httpx.AsyncClient(base_url=process.url, timeout=30) as client:
        body = {"strategy": "steps", "input": {"question": "q"}, "options": {"steps": 6}}
        run = (await client.post("/runs", json=body)).json()
        done = (await client.post("/runs", json={"strategy": "cot", "input": {"question": "2+2?"}})).json()
        before = await read_until(client, run["id"], 0, stop_after=5)
        assert [int(e["id"]) for e in before if "id" in e] == [1, 2, 3, 4, 5]
        await read_until(client, done["id"], 0, stop_after=None)

    process.kill()  # a crash: no shutdown hooks run
    process.start()

    async with httpx.AsyncClient(base_url=process.url, timeout=30) as client:
        # the finished run is served as it was
        finished = (await client.get(f"/runs/{done['id']}")).json()
        assert finished["status"] == "succeeded"
        assert finished["text"] == "4"
        # the interrupted run went on: the stream continues right after the last id the client saw
        after = await read_until(client, run["id"], 5, stop_after=None)
        numbered = [e for e in after if "id" in e]
        ids = [int(e["id"]) for e in numbered]
        assert ids == list(range(6, 6 + len(ids))), ids
        restarted = [json.loads(e["data"]) for e in numbered if e["event"] == "step_started"]
        assert any(e["name"] == "restarted" and "from the start" in e["detail"] for e in restarted)
        assert after[-1]["event"] == "end"
        assert json.loads(after[-1]["data"]) == {"status": "succeeded"}
        result = (await client.get(f"/runs/{run['id']}")).json()
        assert result["status"] == "succeeded"
        assert result["text"] == "hello"
        # and the whole stream, read from the start, is one unbroken sequence
        whole = await read_until(client, run["id"], 0, stop_after=None)
        all_ids = [int(e["id"]) for e in whole if "id" in e]
        assert all_ids == list(range(1, len(all_ids) + 1))


ST = Path(sys.executable).parent / "st"


@pytest.mark.slow
@pytest.mark.skipif(not ST.exists(), reason="needs schemathesis (the dev extra)")
def test_schemathesis_finds_no_server_errors(tmp_path: Path) -> None:
    proc = Process(tmp_path, free_port(), delay=0.0)
    proc.start()
    try:
        result = subprocess.run(
            [
                str(ST), "run", proc.url + "/openapi.json",
                "--checks", "not_a_server_error",
                "--max-examples", "10",
                "--request-timeout", "20",
                "--seed", "1",
                "--exclude-path-regex", "/events$",  # an open stream never "responds"; streaming is tested above
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
    finally:
        proc.stop()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    summary = result.stdout.rsplit("SUMMARY", 1)[-1]
    assert re.search(r"\d+ generated, \d+ passed", summary), summary
    assert "failed" not in summary, summary


def test_ponder_serve_answers_through_a_model_server(tmp_path: Path) -> None:
    """The `ponder serve` command itself, on an OpenAI-compatible model endpoint (a fake one on loopback)."""
    from tests.api._support import model_server
    from tests.api.conftest import serve

    fake, seen = model_server()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PONDER_")}
    env |= {"PONDER_DATA_DIR": str(tmp_path), "PONDER_API__DATABASE_URL": f"sqlite:///{tmp_path / 'runs.sqlite'}"}
    with serve(fake) as endpoint, (tmp_path / "serve.log").open("wb") as log:
        args = ["serve", "--port", str(port), "--no-tools", "--no-search", "--base-url", endpoint.url + "/v1"]
        proc = subprocess.Popen([str(Path(sys.executable).parent / "ponder"), *args], env=env, stderr=log, cwd=tmp_path)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            body = {"model": "ponder-cot", "messages": [{"role": "user", "content": "2+2?"}], "family": "number"}
            reply = httpx.post(url + "/v1/chat/completions", json=body, timeout=60)
            assert reply.status_code == 200, reply.text
            assert reply.json()["choices"][0]["message"]["content"] == "4"
            assert len(seen) == 2  # think, then answer: the reasoning, then the constrained answer
            assert "response_format" not in seen[0] and "response_format" in seen[1]
            assert httpx.get(url + "/", timeout=5).text.startswith("<!doctype html>")
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    assert proc.returncode in (0, -signal.SIGTERM)


def test_ponder_serve_refuses_a_public_address_without_keys(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PONDER_")} | {"PONDER_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ponder"), "serve", "--host", "0.0.0.0", "--no-tools", "--no-search"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "without API keys" in result.stderr
