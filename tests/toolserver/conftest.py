"""Fixtures for the ToolServer tests: the real Docker engine and node image, an in-process server and a real HTTP
manager on loopback. Tests that need Docker FAIL (never skip) when it is missing, saying how to start it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import docker.errors
import pytest
import pytest_asyncio
import uvicorn
from docker.client import DockerClient

from ponder.config import ToolServerSettings
from ponder.tools import HttpToolServer, ToolSession
from ponder.toolserver import LocalToolServer, Manager, create_app
from ponder.toolserver._docker import INSTANCE_LABEL
from ponder.toolserver._image import DEFAULT_DOCKER_HOST

IMAGE = ToolServerSettings().image
HOW_TO_START = (
    "start the engine as root with `dockerd > /var/log/dockerd.log 2>&1 &` (Debian: `apt-get install docker.io "
    "mmdebstrap`), then build the sandbox image with `ponder toolserver build-image`"
)


INSTANCES: list[str] = []  # every instance label these tests used; leftovers are removed at the end


def make_settings(**overrides: Any) -> ToolServerSettings:
    """Small, fast limits for tests; a unique instance label so tests never reap anyone else's containers."""
    INSTANCES.append(f"pytest-{uuid.uuid4().hex[:8]}")
    values: dict[str, Any] = {
        "instance": INSTANCES[-1],
        "pool_size": 2,
        "call_timeout_s": 3.0,
        "call_grace_s": 1.5,
        "memory": "256m",
        "pids_limit": 64,
        "workspace_size": "16m",
        "max_output_chars": 4000,
        "max_request_bytes": 1024 * 1024,
    }
    values.update(overrides)
    return ToolServerSettings(**values)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[DockerClient]:
    try:
        client = DockerClient(base_url=DEFAULT_DOCKER_HOST)
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"the Docker engine is not reachable at {DEFAULT_DOCKER_HOST} ({exc}); {HOW_TO_START}")
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"the sandbox image {IMAGE} is missing; build it with `ponder toolserver build-image`")
    yield client
    for instance in INSTANCES:  # a failed test may leave its sandboxes behind; never leave them running
        for container in client.api.containers(all=True, filters={"label": f"{INSTANCE_LABEL}={instance}"}):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):  # auto-removal may race
                client.api.remove_container(container["Id"], force=True)
    client.close()


@dataclass
class HttpManager:
    """A real manager behind uvicorn on 127.0.0.1, and a client of it."""

    manager: Manager
    client: HttpToolServer
    url: str
    token: str


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def local_server(docker_client: DockerClient) -> AsyncIterator[LocalToolServer]:
    async with LocalToolServer(make_settings()) as server:
        yield server


@contextlib.asynccontextmanager
async def running_http_manager(settings: ToolServerSettings) -> AsyncIterator[HttpManager]:
    token = uuid.uuid4().hex
    manager = Manager(settings)
    config = uvicorn.Config(create_app(manager, token), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # start-up failed: raise its error
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    async with HttpToolServer(url, token) as client:
        yield HttpManager(manager=manager, client=client, url=url, token=token)
    server.should_exit = True
    await task


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def http_manager(docker_client: DockerClient) -> AsyncIterator[HttpManager]:
    async with running_http_manager(make_settings()) as running:
        yield running


async def assert_alive(server: Any, session: ToolSession | None = None) -> None:
    """The manager still serves: the given session answers, and a brand-new session runs code."""
    if session is not None:
        result = await session.call("python", {"code": "6 * 7"})
        assert result.ok, result
        assert result.output["result"] == "42"
    async with server.session() as fresh:
        result = await fresh.call("shell", {"command": "echo alive"})
        assert result.ok, result
        assert result.output["stdout"] == "alive\n"


def inspect(client: DockerClient, container_id: str) -> dict[str, Any]:
    attrs: dict[str, Any] = client.api.inspect_container(container_id)
    return attrs
