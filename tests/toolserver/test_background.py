"""A task environment's background program (``Manager.start_background``): it runs as its own unprivileged user,
keeps running across the agent's calls, and the agent's own leftovers still die after every call."""

from __future__ import annotations

import asyncio

import pytest
from docker.client import DockerClient

from ponder.errors import NotFoundError
from ponder.toolserver import LocalToolServer

from .conftest import make_settings

pytestmark = pytest.mark.docker

WRITER = 'python3 -c \'import time\nwhile True:\n    open("/workspace/log", "a").write("tick\\n"); time.sleep(0.2)\' &'


async def test_a_background_program_outlives_calls_and_the_agents_own_do_not(docker_client: DockerClient) -> None:
    async with LocalToolServer(make_settings(pool_size=0)) as server, server.session() as session:
        opened = await session.call("shell", {"command": "chmod a+rwx /workspace"})
        assert opened.ok
        await session.start_background(WRITER)  # type: ignore[attr-defined]
        await asyncio.sleep(0.8)
        first = await session.call("shell", {"command": "sleep 30 & wc -l < log; stat -c %u log"})
        lines, owner = first.output["stdout"].split()
        assert owner == "1001"  # not the sandbox user's, so the runner's cleanup leaves it alone
        await asyncio.sleep(0.8)
        second = await session.call("shell", {"command": "wc -l < log; ps -eo user:12,comm --no-headers"})
        later, *procs = second.output["stdout"].splitlines()
        assert int(later) > int(lines)  # still writing after a call ended
        assert not any(line.split()[-1] == "sleep" for line in procs)  # the agent's background job died
        assert any(line.split()[-1].startswith("python3") and line.split()[0] == "1001" for line in procs)
        # the agent cannot stop it either (another user; no capabilities)
        killed = await session.call("shell", {"command": "pkill -f 'import [t]ime'; echo $?; sleep 0.5; wc -l < log"})
        code, after = killed.output["stdout"].split()
        assert code != "0" and int(after) > int(later)


async def test_background_programs_need_an_open_session(docker_client: DockerClient) -> None:
    async with LocalToolServer(make_settings(pool_size=0)) as server:
        with pytest.raises(NotFoundError):
            await server.manager.start_background("nope", "true")
