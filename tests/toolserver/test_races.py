"""The ToolServer under races and faults (issue 19), on the real engine: the session cap holds under concurrent
opens, a session closed during a call leaks nothing, processes a call detaches from it die with the call, and a
SIGKILLed manager's sandboxes stop on their own."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

import httpx
import pytest
from docker.client import DockerClient

from .conftest import HttpManager, make_settings, running_http_manager
from .test_faults import containers_of, free_port

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.docker]


def auth(running: HttpManager) -> dict[str, str]:
    return {"Authorization": f"Bearer {running.token}"}


async def settled(docker_client: DockerClient, running: HttpManager) -> None:
    """Wait until background removals finish and warm-ups land; then every container is a session's or the pool's."""
    manager = running.manager
    for _ in range(200):
        stats = manager.stats()
        if not manager._background and stats["starting"] == 0:
            break
        await asyncio.sleep(0.05)
    stats = manager.stats()
    assert len(containers_of(docker_client, manager.settings.instance)) == stats["sessions"] + stats["pool"], stats


async def test_concurrent_opens_never_pass_the_session_cap(docker_client: DockerClient) -> None:
    async with (
        running_http_manager(make_settings(pool_size=2, max_sessions=4)) as running,
        httpx.AsyncClient(base_url=running.url, headers=auth(running), timeout=60) as raw,
    ):
        answers = await asyncio.gather(*(raw.post("/sessions") for _ in range(50)))
        opened = [a.json()["id"] for a in answers if a.status_code == 201]
        refused = [a for a in answers if a.status_code != 201]
        assert len(opened) == 4, [a.status_code for a in answers]
        for answer in refused:
            assert answer.status_code == 503
            assert answer.json()["error"]["retryable"] is True
            assert int(answer.headers["Retry-After"]) >= 1
        assert (await raw.get("/healthz")).json()["sessions"] == 4
        await settled(docker_client, running)
        for session_id in opened:
            assert (await raw.delete(f"/sessions/{session_id}")).status_code == 204
        await settled(docker_client, running)


async def test_closing_a_session_during_a_call_leaks_nothing(
    docker_client: DockerClient, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        running_http_manager(make_settings(pool_size=1)) as running,
        httpx.AsyncClient(base_url=running.url, headers=auth(running), timeout=60) as raw,
    ):
        session_id = (await raw.post("/sessions")).json()["id"]
        url = f"/sessions/{session_id}/calls"
        slow = asyncio.create_task(
            raw.post(url, json={"tool": "python", "args": {"code": "import time; time.sleep(2)"}})
        )
        await asyncio.sleep(0.3)
        queued = asyncio.create_task(raw.post(url, json={"tool": "python", "args": {"code": "print(1 + 1)"}}))
        await asyncio.sleep(0.3)
        assert (await raw.delete(f"/sessions/{session_id}")).status_code == 204

        during, after = await slow, await queued
        assert during.status_code == 409, during.text
        assert "closed while this call ran" in during.json()["error"]["message"]
        assert after.status_code == 409, after.text
        assert "closed before this call ran" in after.json()["error"]["message"]
        late = await raw.post(url, json={"tool": "python", "args": {"code": "1"}})
        assert late.status_code == 404
        await settled(docker_client, running)
        assert (await raw.get("/healthz")).json()["sessions"] == 0
    assert "was destroyed but it is pending" not in caplog.text


DETACHED = {
    "python start_new_session": (
        "python",
        {
            "code": "import subprocess\n"
            "subprocess.Popen(['python3', '-c', 'while True: pass'], start_new_session=True)\n'started'"
        },
    ),
    "python setsid + double fork": (
        "python",
        {
            "code": "import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        while True: pass\n"
            "    os._exit(0)\nos.wait()\n'started'"
        },
    ),
    "shell setsid": ("shell", {"command": "setsid python3 -c 'while True: pass' > /dev/null 2>&1 & echo started"}),
    "shell nohup in a subshell": (
        "shell",
        {"command": "( nohup sh -c 'while :; do :; done' >/dev/null 2>&1 & ) ; echo started"},
    ),
}


@pytest.mark.parametrize("how", list(DETACHED))
async def test_processes_a_call_detaches_die_with_the_call(
    how: str, http_manager: HttpManager, docker_client: DockerClient
) -> None:
    tool, args = DETACHED[how]
    async with http_manager.client.session() as session:
        container = http_manager.manager.container_of(session.id)
        assert container is not None
        for attempt in range(10):  # it was a race: a detached loop survived 6 calls in 10
            result = await session.call(tool, args)
            assert result.ok, result
            processes = (await asyncio.to_thread(docker_client.api.top, container, "-eo pid,args"))["Processes"]
            commands = [row[-1] for row in processes]
            survivors = [c for c in commands if "runner.py" not in c]
            assert not survivors, f"attempt {attempt}: still running after the call: {survivors}"


async def test_a_sigkilled_managers_sandboxes_stop_without_a_new_manager(docker_client: DockerClient) -> None:
    settings = make_settings(pool_size=1, call_timeout_s=4.0)
    port, token = free_port(), uuid.uuid4().hex
    env = {
        **os.environ,
        "PONDER_TOOLSERVER__INSTANCE": settings.instance,
        "PONDER_TOOLSERVER__TOKEN": token,
        "PONDER_TOOLSERVER__POOL_SIZE": "1",
        "PONDER_TOOLSERVER__CALL_TIMEOUT_S": "4",
    }
    serve = ["toolserver", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from ponder.cli import main; main()", *serve, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as raw:
            for _ in range(300):
                try:
                    if (await raw.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:  # not up yet
                    await asyncio.sleep(0.1)
            # two sessions left open on purpose: the manager dies with them
            idle, busy = [(await raw.post("/sessions")).json()["id"] for _ in range(2)]
            answer = await raw.post(f"/sessions/{idle}/calls", json={"tool": "python", "args": {"code": "1 + 1"}})
            assert answer.json()["output"]["result"] == "2"
            # a busy loop in flight when the manager dies: it ends at the call's limit, then the sandbox stops
            loop = {"tool": "python", "args": {"code": "while True: pass"}}
            spinning = asyncio.create_task(raw.post(f"/sessions/{busy}/calls", json=loop))
            for _ in range(100):  # the pool's warm sandbox too
                if len(containers_of(docker_client, settings.instance)) >= 3:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            assert len(containers_of(docker_client, settings.instance)) >= 3
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            await asyncio.gather(spinning, return_exceptions=True)
        for _waited in range(300):  # bounded: the call's limit (4 s) plus a few seconds, far below the 30 s backstop
            if not containers_of(docker_client, settings.instance):
                break
            await asyncio.sleep(0.1)
        assert not containers_of(docker_client, settings.instance), "sandboxes outlived their SIGKILLed manager"
        assert _waited < 200, f"took {_waited / 10:.1f} s"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_undecodable_and_absurd_bodies_get_the_error_envelope(http_manager: HttpManager) -> None:
    async with httpx.AsyncClient(base_url=http_manager.url, headers=auth(http_manager), timeout=30) as raw:
        session_id = (await raw.post("/sessions")).json()["id"]
        url = f"/sessions/{session_id}/calls"
        try:
            bodies = [b'{"tool": "python", "args": {"code": "\xff\xfe"}}', b"[" * 100_000, b'{"tool": ']
            for body in bodies:
                answer = await raw.post(url, content=body, headers={"Content-Type": "application/json"})
                assert 400 <= answer.status_code < 500, answer.text
                error = answer.json()["error"]
                assert error["message"] and error["retryable"] is False, error
            boolean = await raw.post(url, json={"tool": "python", "args": {"code": "1"}, "timeout_s": True})
            assert boolean.status_code == 422
            assert "timeout_s" in boolean.json()["error"]["message"]
            number = await raw.post(url, json={"tool": "python", "args": {"code": "1"}, "timeout_s": 2})
            assert number.status_code == 200 and number.json()["ok"]
            missing = await raw.get("/no-such-path")
            assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFoundError"
        finally:
            await raw.delete(f"/sessions/{session_id}")
