"""A real API server on a real loopback port, with a fake model at the ChatModel seam."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from ponder.api import create_app
from tests.api._strategies import TEST_STRATEGIES
from tests.api._support import make_settings, reply
from tests.fakes import FunctionModel


class Server:
    def __init__(self, app: FastAPI, port: int, thread: threading.Thread, server: uvicorn.Server) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._thread = thread
        self._server = server

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, **{"timeout": 10, **kwargs})


@contextmanager
def serve(app: FastAPI) -> Iterator[Server]:
    """Run ``app`` with uvicorn in a thread on a free loopback port until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2, timeout_keep_alive=60)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield Server(app, port, thread, server)
    finally:
        service = getattr(app.state, "service", None)
        if service is not None:  # end open streams, as sse-starlette does on a signal (a thread gets none)
            service.events.end_streams()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using it runs twice: on a SQLite file, and on the session's Postgres server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def model() -> FunctionModel:
    return FunctionModel(reply)


@pytest.fixture
def make_server(tmp_path: Path, model: FunctionModel) -> Iterator[Callable[..., Server]]:
    with_servers: list[Any] = []

    def start(keys: list[str] | None = None, **kwargs: Any) -> Server:
        settings = make_settings(tmp_path, keys, **kwargs.pop("api", {}))
        app = create_app(settings, model=kwargs.pop("model", model), strategies=TEST_STRATEGIES)
        cm = serve(app)
        with_servers.append(cm)
        return cm.__enter__()

    yield start
    for cm in reversed(with_servers):
        cm.__exit__(None, None, None)


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server()


async def read_sse(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Parse a text/event-stream body into {"id", "event", "data"} dicts (comments and pings skipped)."""
    fields: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in fields:
                yield fields
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data" and "data" in fields:
            fields["data"] += "\n" + value
        else:
            fields[name] = value


async def collect(
    client: httpx.AsyncClient, run_id: str, headers: dict[str, str] | None = None, limit: int = 0
) -> list[dict[str, Any]]:
    """Read a run's stream until it ends (or ``limit`` events with ids have been read)."""
    out: list[dict[str, Any]] = []
    async with client.stream("GET", f"/runs/{run_id}/events", headers=headers or {}) as response:
        assert response.status_code == 200, await response.aread()
        async for event in read_sse(response):
            out.append(event)
            if event.get("event") == "end":
                break
            if limit and sum(1 for e in out if "id" in e) >= limit:
                break
    return out


async def wait_status(client: httpx.AsyncClient, run_id: str, *statuses: str, within_s: float = 10) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        run = (await client.get(f"/runs/{run_id}")).json()
        if run["status"] in statuses:
            return dict(run)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run {run_id} stayed {run['status']}, wanted {statuses}")
        await asyncio.sleep(0.02)
