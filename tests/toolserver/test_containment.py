"""The containment suite: hostile code against a real manager behind HTTP on the real engine.

Every case ends with ``assert_alive``: the same session (where it should survive) and a brand-new session still
work, so no attack takes the manager down. Network probes aim only at loopback, at the manager's own port on the
host's loopback, and at 192.0.2.1 (TEST-NET-1, reserved for documentation: never routed anywhere).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from docker.client import DockerClient

from .conftest import HttpManager, assert_alive, inspect

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.docker]


async def test_container_is_locked_down(http_manager: HttpManager, docker_client: DockerClient) -> None:
    settings = http_manager.manager.settings
    async with http_manager.client.session() as s:
        attrs = inspect(docker_client, http_manager.manager.container_of(s.id) or "")
        host = attrs["HostConfig"]
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert host["CapAdd"] is None
        assert host["Privileged"] is False
        assert host["SecurityOpt"] == ["no-new-privileges"]  # and no seccomp=unconfined: the default profile
        assert host["Memory"] == 256 * 1024**2 and host["MemorySwap"] == 256 * 1024**2
        assert host["PidsLimit"] == settings.pids_limit
        assert host["NanoCpus"] == int(settings.cpus * 1e9)
        assert "size=16m" in host["Tmpfs"]["/workspace"]
        assert not host["Binds"] and attrs["Mounts"] == [m for m in attrs["Mounts"] if m["Type"] == "tmpfs"]
        assert attrs["Config"]["User"] == "1000:1000"

        # The same limits, seen from inside.
        status = await s.call(
            "shell", {"command": "grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status"}
        )
        fields = dict(line.split(":\t", 1) for line in status.output["stdout"].splitlines())
        assert fields["Uid"].split()[0] == "1000"
        assert fields["CapEff"] == fields["CapBnd"] == "0000000000000000"
        assert fields["NoNewPrivs"] == "1"
        assert fields["Seccomp"] == "2"  # filter mode: Docker's default profile is loaded
        limits = await s.call(
            "shell",
            {
                "command": "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max 2>/dev/null || "
                "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
            },
        )
        memory, pids = limits.output["stdout"].split()
        assert int(memory) == 256 * 1024**2
        assert int(pids) == settings.pids_limit
        mounts = await s.call(
            "shell", {"command": 'awk \'$2=="/" || $2=="/workspace" {print $2, $3, $4}\' /proc/mounts'}
        )
        lines = sorted(mounts.output["stdout"].splitlines())
        assert lines[0].split()[:2] == ["/", "overlay"] and lines[0].split()[2].startswith("ro,")
        assert lines[1].split()[:2] == ["/workspace", "tmpfs"] and "size=16384k" in lines[1]


async def test_no_network_from_inside(http_manager: HttpManager) -> None:
    manager_port = int(http_manager.url.rsplit(":", 1)[1])  # listening on the HOST's loopback right now
    code = f"""
import errno, socket
report = {{"interfaces": sorted(name for _, name in socket.if_nameindex())}}
report["routes"] = open("/proc/net/route").read().splitlines()[1:]
report["routes6"] = [l for l in open("/proc/net/ipv6_route").read().splitlines() if not l.endswith("lo")]
def connect(host, port):
    s = socket.socket(); s.settimeout(2)
    try:
        s.connect((host, port)); return "connected"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))
    finally:
        s.close()
report["manager_port"] = connect("127.0.0.1", {manager_port})
report["test_net"] = connect("192.0.2.1", 80)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b"x", ("192.0.2.1", 53)); report["udp"] = "sent"
except OSError as e:
    report["udp"] = errno.errorcode.get(e.errno, str(e))
try:
    socket.getaddrinfo("ponder-probe.invalid", 80); report["dns"] = "resolved"
except socket.gaierror as e:
    report["dns"] = "failed"
report
"""
    async with http_manager.client.session() as s:
        result = await s.call("python", {"code": code})
        assert result.ok, result
        report = eval(result.output["result"])  # a dict literal printed by repr
        assert report["interfaces"] == ["lo"]
        assert report["routes"] == []
        assert report["routes6"] == []
        assert report["manager_port"] == "ECONNREFUSED"  # the container's loopback is its own
        assert report["test_net"] == "ENETUNREACH"
        assert report["udp"] == "ENETUNREACH"
        assert report["dns"] == "failed"
        await assert_alive(http_manager.client, s)


async def test_fork_bomb_is_contained(http_manager: HttpManager) -> None:
    async with http_manager.client.session() as s:
        await s.call("python", {"code": "kept = 'state'"})
        shell_bomb = await s.call("shell", {"command": ":(){ :|:& };:"}, timeout_s=2)
        python_bomb = await s.call("python", {"code": "import os\nwhile True:\n    os.fork()"}, timeout_s=5)
        assert not python_bomb.ok
        await asyncio.sleep(0.2)
        count = await s.call("shell", {"command": "ls /proc | grep -c '^[0-9]'"})
        assert count.ok, count
        assert int(count.output["stdout"]) < 6  # init, runner, this shell and grep: the strays were killed
        state = await s.call("python", {"code": "kept"})
        if not (shell_bomb.reset or python_bomb.reset):  # on a slow host a bomb may outlast the grace period
            assert state.output["result"] == "'state'", (shell_bomb, python_bomb, state)
        await assert_alive(http_manager.client, s)


async def test_memory_bomb_is_contained(http_manager: HttpManager) -> None:
    async with http_manager.client.session() as s:
        result = await s.call("python", {"code": "hog = bytearray(1024**3)\nhog[::4096] = b'x' * (1024**3 // 4096)"})
        assert not result.ok
        assert result.reset or (result.error or "").startswith("MemoryError")
        await assert_alive(http_manager.client, s)


async def test_filling_the_workspace_stops_at_its_size(http_manager: HttpManager) -> None:
    async with http_manager.client.session() as s:
        fill = await s.call("shell", {"command": "dd if=/dev/zero of=big bs=1M count=64"})
        assert not fill.ok
        assert "No space left on device" in fill.output["stderr"]
        size = await s.call("shell", {"command": "stat -c %s big"})
        assert int(size.output["stdout"]) <= 16 * 1024**2
        tmp = await s.call("shell", {"command": "dd if=/dev/zero of=/tmp/big bs=1M count=64"})
        assert "No space left on device" in tmp.output["stderr"]
        await s.call("shell", {"command": "rm -f big /tmp/big"})
        await assert_alive(http_manager.client, s)


async def test_infinite_loop_is_interrupted_and_state_survives(http_manager: HttpManager) -> None:
    async with http_manager.client.session() as s:
        await s.call("python", {"code": "counter = 41"})
        loop = await s.call("python", {"code": "while True:\n    pass"}, timeout_s=1)
        assert loop.timed_out and not loop.ok and not loop.reset
        assert loop.error == "TimeoutError: the call ran past 1 s"
        state = await s.call("python", {"code": "counter + 1"})
        assert state.output["result"] == "42"
        shell = await s.call("shell", {"command": "sleep 60"}, timeout_s=1)
        assert shell.timed_out and not shell.ok
        await assert_alive(http_manager.client, s)


async def test_loop_that_swallows_the_timeout_gets_the_sandbox_replaced(http_manager: HttpManager) -> None:
    stubborn = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass"
    async with http_manager.client.session() as s:
        before = http_manager.manager.container_of(s.id)
        await s.call("python", {"code": "counter = 1"})
        result = await s.call("python", {"code": stubborn}, timeout_s=1)
        assert result.timed_out and result.reset and not result.ok
        assert "sandbox was replaced" in (result.error or "")
        assert http_manager.manager.container_of(s.id) != before
        lost = await s.call("python", {"code": "counter"})
        assert lost.error == "NameError: name 'counter' is not defined"
        await assert_alive(http_manager.client, s)


async def test_host_paths_are_invisible(http_manager: HttpManager, tmp_path: Path) -> None:
    marker = tmp_path / f"host-secret-{uuid.uuid4().hex}"
    marker.write_text("host only")
    code = f"""
import os
seen = {{}}
for path in [{str(marker)!r}, "/work", "/var/run/docker.sock", "/run/docker.sock", "/var/lib/docker"]:
    seen[path] = os.path.exists(path)
try:
    open("/etc/shadow").read(); seen["shadow"] = "read"
except PermissionError:
    seen["shadow"] = "denied"
seen["pid1"] = open("/proc/1/cmdline").read().replace("\\0", " ").strip()
seen
"""
    async with http_manager.client.session() as s:
        result = await s.call("python", {"code": code})
        seen = eval(result.output["result"])
        assert seen.pop("shadow") == "denied"
        assert seen.pop("pid1") == "python3 -I -S /opt/ponder/runner.py init"
        assert not any(seen.values()), seen
        await assert_alive(http_manager.client, s)


async def test_writing_outside_the_workspace_fails(http_manager: HttpManager) -> None:
    code = """
import errno
codes = {}
for path in ["/etc/evil", "/usr/bin/evil", "/opt/ponder/runner.py", "/evil", "/var/tmp/evil"]:
    try:
        open(path, "w").write("x"); codes[path] = "written"
    except OSError as e:
        codes[path] = errno.errorcode[e.errno]
codes
"""
    async with http_manager.client.session() as s:
        result = await s.call("python", {"code": code})
        codes = eval(result.output["result"])
        assert set(codes.values()) == {"EROFS"}, codes
        via_files = await s.call("files", {"op": "write", "path": "../etc/evil", "content": "x"})
        assert not via_files.ok and "outside the workspace" in (via_files.error or "")
        await assert_alive(http_manager.client, s)


async def test_setuid_escalation_is_impossible(http_manager: HttpManager) -> None:
    async with http_manager.client.session() as s:
        setuid_files = await s.call("shell", {"command": "find / -xdev -perm /6000 -type f 2>/dev/null | head"})
        assert setuid_files.output["stdout"] == ""
        python = await s.call("python", {"code": "import os\nos.setuid(0)"})
        assert python.error == "PermissionError: [Errno 1] Operation not permitted"
        # A setuid binary made inside the sandbox gains nothing: it belongs to the sandbox user, and
        # no-new-privileges stops set-id bits on exec anyway.
        made = await s.call("shell", {"command": "cp /usr/bin/id ./myid && chmod u+s ./myid && ./myid -u"})
        assert made.output["stdout"].strip() == "1000"
        await assert_alive(http_manager.client, s)


async def test_no_docker_socket_inside(http_manager: HttpManager) -> None:
    async with http_manager.client.session() as s:
        found = await s.call(
            "shell", {"command": "find / -xdev -type s 2>/dev/null; grep -c docker.sock /proc/mounts || true"}
        )
        assert found.output["stdout"].split() == ["0"]
        env = await s.call("python", {"code": "sorted(k for k in __import__('os').environ if 'DOCKER' in k)"})
        assert env.output["result"] == "[]"
        await assert_alive(http_manager.client, s)


async def test_killing_the_runner_from_inside(http_manager: HttpManager) -> None:
    async with http_manager.client.session() as s:
        await s.call("files", {"op": "write", "path": "kept.txt", "content": "files survive"})
        suicide = await s.call("python", {"code": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"})
        assert not suicide.ok and suicide.reset
        assert "Python state was reset" in (suicide.error or "")
        everyone = await s.call("shell", {"command": "kill -9 -1"})
        assert everyone.reset
        init = await s.call("python", {"code": "import os, signal\nos.kill(1, signal.SIGKILL)\n'init ignores it'"})
        assert init.ok and init.output["result"] == "'init ignores it'"
        kept = await s.call("files", {"op": "read", "path": "kept.txt"})
        assert kept.output["content"] == "files survive"
        await assert_alive(http_manager.client, s)


async def test_huge_outputs_are_cut_not_buffered(http_manager: HttpManager) -> None:
    limit = http_manager.manager.settings.max_output_chars
    async with http_manager.client.session() as s:
        flood = await s.call("shell", {"command": "head -c 200000000 /dev/zero | tr '\\0' x"}, timeout_s=20)
        assert flood.ok and flood.truncated
        assert len(flood.output["stdout"]) < limit + 100
        assert flood.output["stdout"].endswith("[truncated: 199996000 more characters]")
        printed = await s.call("python", {"code": "for _ in range(2000):\n    print('y' * 10_000)"})
        assert printed.truncated and len(printed.output["stdout"]) < limit + 100
        await assert_alive(http_manager.client, s)
