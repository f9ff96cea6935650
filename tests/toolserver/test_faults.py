"""Faults on the real engine: a container killed from outside mid-call, a manager that crashed and restarts, a
Docker engine or image that is not there, and session TTL / idle reaping."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from docker.client import DockerClient

from ponder.errors import NotFoundError, SandboxError, SandboxUnavailable
from ponder.tools import HttpToolServer
from ponder.toolserver import LocalToolServer, Manager
from ponder.toolserver._docker import INSTANCE_LABEL

from .conftest import HttpManager, assert_alive, make_settings

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.docker]


def containers_of(client: DockerClient, instance: str) -> list[str]:
    return [str(c["Id"]) for c in client.api.containers(all=True, filters={"label": f"{INSTANCE_LABEL}={instance}"})]


async def test_container_killed_from_outside_mid_call(http_manager: HttpManager, docker_client: DockerClient) -> None:
    server, manager = http_manager.client, http_manager.manager
    async with server.session() as victim, server.session() as bystander:
        await bystander.call("python", {"code": "mine = 7"})
        await victim.call("python", {"code": "x = 1"})
        doomed = manager.container_of(victim.id)
        assert doomed is not None
        call = asyncio.create_task(victim.call("python", {"code": "import time\ntime.sleep(30)"}, timeout_s=60))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(docker_client.api.kill, doomed)
        with pytest.raises(SandboxError, match="stopped during the call") as caught:
            await call
        assert caught.value.retryable
        assert "fresh sandbox" in caught.value.hint

        again = await victim.call("python", {"code": "x"})  # replaced on the next call, and it says so
        assert again.reset
        assert again.error is not None and again.error.startswith("NameError")
        assert "fresh one" in again.output["notice"]
        assert manager.container_of(victim.id) not in (None, doomed)
        assert (await victim.call("python", {"code": "x = 2\nx"})).output["result"] == "2"

        untouched = await bystander.call("python", {"code": "mine"})
        assert untouched.output["result"] == "7" and not untouched.reset
        await assert_alive(server)
    for _ in range(50):  # the dead container is removed in the background
        if doomed not in containers_of(docker_client, manager.settings.instance):
            break
        await asyncio.sleep(0.1)
    assert doomed not in containers_of(docker_client, manager.settings.instance)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


ORPHAN_MAKER = """
import sys
from ponder.config import ToolServerSettings
from ponder.toolserver._docker import DockerEngine
engine = DockerEngine(ToolServerSettings(instance=sys.argv[1]))
engine.connect()
print(engine.start_container(), engine.start_container())
"""


@pytest_asyncio.fixture(loop_scope="module")
async def crashed_manager(docker_client: DockerClient) -> AsyncIterator[str]:
    """Sandboxes a manager process started and then died before it attached their runners: they are labelled with
    its (now dead) owner id and stay up until a restarted manager reaps them, or their PID 1 gives up on a runner
    (``runner.RUNNERLESS_EXIT_S``). A manager killed later stops its sandboxes itself: see test_races."""
    instance = make_settings().instance
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ORPHAN_MAKER, instance, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert len(out.split()) == 2
    yield instance


async def test_restarted_manager_reaps_its_orphans(crashed_manager: str, docker_client: DockerClient) -> None:
    orphans = containers_of(docker_client, crashed_manager)
    assert len(orphans) == 2
    bystander = make_settings(pool_size=1)  # another instance's containers must not be touched
    async with LocalToolServer(bystander) as other, other.session() as kept:
        restarted = LocalToolServer(make_settings(instance=crashed_manager, pool_size=1))
        async with restarted:
            assert restarted.manager.reaped_orphans == len(orphans)
            assert not set(orphans) & set(containers_of(docker_client, crashed_manager))
            await assert_alive(restarted)
        assert (await kept.call("python", {"code": "'still here'"})).ok


async def test_a_live_manager_of_the_same_instance_is_left_alone(docker_client: DockerClient) -> None:
    settings = make_settings(pool_size=0)
    async with LocalToolServer(settings) as first, first.session() as s:
        await s.call("python", {"code": "mine = 1"})
        async with LocalToolServer(settings.model_copy()) as second:
            assert second.manager.reaped_orphans == 0
            assert (await s.call("python", {"code": "mine"})).output["result"] == "1"


async def test_docker_unavailable_is_a_clear_error(tmp_path: os.PathLike[str]) -> None:
    missing = f"unix://{tmp_path}/no-such-docker.sock"
    with pytest.raises(SandboxUnavailable, match="cannot reach the Docker engine") as caught:
        async with LocalToolServer(make_settings(docker_host=missing)):
            pass
    assert missing in caught.value.message
    assert "dockerd" in caught.value.hint


async def test_missing_image_and_runtime_are_clear_errors(docker_client: DockerClient) -> None:
    with pytest.raises(SandboxUnavailable, match="is not on this Docker engine") as caught:
        async with LocalToolServer(make_settings(image="ponder-node:no-such-tag")):
            pass
    assert "ponder toolserver build-image" in caught.value.hint
    with pytest.raises(SandboxUnavailable, match="runtime 'no-such-runtime' is not configured") as caught:
        async with LocalToolServer(make_settings(runtime="no-such-runtime")):
            pass
    assert "runsc" in caught.value.hint


async def test_unreachable_manager_is_a_clear_error() -> None:
    async with HttpToolServer(f"http://127.0.0.1:{free_port()}", "token") as client:
        with pytest.raises(SandboxUnavailable, match="cannot reach the ToolServer") as caught:
            async with client.session():
                pass
    assert "ponder toolserver serve" in caught.value.hint


async def test_gvisor_runtime_when_configured(docker_client: DockerClient) -> None:
    runtimes = (await asyncio.to_thread(docker_client.info)).get("Runtimes") or {}
    if "runsc" not in runtimes:
        pytest.skip("gVisor (runsc) is optional and not configured in this Docker engine")
    async with LocalToolServer(make_settings(runtime="runsc", pool_size=1)) as server, server.session() as s:
        result = await s.call("shell", {"command": "dmesg 2>/dev/null | head -1; echo done"})
        assert result.ok and "done" in result.output["stdout"]


async def test_idle_and_expired_sessions_are_reaped(docker_client: DockerClient) -> None:
    settings = make_settings(pool_size=0, idle_timeout_s=2.0)
    async with LocalToolServer(settings) as server:
        manager: Manager = server.manager
        busy = await manager.open_session()
        idle = await manager.open_session()
        idle_container = manager.container_of(idle)
        for _ in range(80):  # the reaper runs every idle_timeout/4; keep `busy` in use meanwhile
            await manager.call(busy, "python", {"code": "1"})
            if manager.stats()["sessions"] == 1:
                break
            await asyncio.sleep(0.1)
        with pytest.raises(NotFoundError, match="closed or expired"):
            await manager.call(idle, "python", {"code": "1"})
        assert (await manager.call(busy, "python", {"code": "'alive'"})).ok
        manager.settings.session_ttl_s = 0.5  # now `busy` outlives its lifetime although it is in use
        for _ in range(40):
            await manager.call(busy, "python", {"code": "1"})
            await asyncio.sleep(0.1)
            if manager.stats()["sessions"] == 0:
                break
        with pytest.raises(NotFoundError):
            await manager.call(busy, "python", {"code": "1"})
    assert idle_container not in containers_of(docker_client, settings.instance)


async def test_serve_refuses_to_start_without_docker(tmp_path: os.PathLike[str]) -> None:
    env = {**os.environ, "PONDER_TOOLSERVER__DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    cli = ["-c", "from ponder.cli import main; main()", "toolserver", "serve", "--port", str(free_port())]
    proc = await asyncio.create_subprocess_exec(sys.executable, *cli, env=env, stdout=-1, stderr=-1)
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 1
    text = " ".join(stderr.decode().split())  # rich wraps long lines
    assert "error: cannot reach the Docker engine" in text and "hint: start it" in text
