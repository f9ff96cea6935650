"""ToolServer speed: warm-call latency, session acquire (warm pool and cold), and 8 concurrent sessions.

Three paths to the same trivial python call are measured in interleaved rounds (one call each per round), so a
busy host slows them alike:
  raw      the baseline: JSON lines straight into the runner through the `docker exec -i` CLI (no manager);
  inproc   a manager in this process (what strategies get without PONDER_TOOLSERVER__URL);
  http     a real `ponder toolserver serve` process on loopback, through the HTTP client strategies use;
and the HTTP floor (GET /healthz on the same server: the HTTP stack alone). Targets (issue 3): warm call p50
<= 5 ms end to end through HTTP, warm acquire p50 <= 20 ms. Ends with one JSON line of the figures.

``--soak`` instead drives a real `ponder toolserver serve` on loopback with 32 workers for ``--seconds`` (120):
mixed calls (python, shell, files, sleeps, detached busy children), random session closes mid-call and cancelled
requests; it reports calls/s, errors by type, leaked containers (containers the manager does not account for) and
leftover processes (anything but the runner in a session's container after a call), both of which must be 0.

    python benchmarks/toolserver.py [--rounds 300] [--acquires 10]
    python benchmarks/toolserver.py --soak [--seconds 120]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from ponder.config import ToolServerSettings
from ponder.tools import HttpToolServer, ToolSession
from ponder.toolserver import Manager
from ponder.toolserver._docker import DockerEngine

TRIVIAL = {"code": "1"}
Call = Callable[[], Awaitable[Any]]


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed(n: int, fn: Call) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t)
    return out


@contextlib.asynccontextmanager
async def raw_runner(settings: ToolServerSettings) -> AsyncIterator[Call]:
    """The baseline: a hardened container and its runner driven through the docker CLI, no manager."""
    engine = DockerEngine(settings)
    await asyncio.to_thread(engine.connect)
    cid = await asyncio.to_thread(engine.start_container)
    runner = ["python3", "-I", "/opt/ponder/runner.py"]
    proc = await asyncio.create_subprocess_exec(
        "docker", "exec", "-i", "-u", "1000:1000", cid, *runner, stdin=-1, stdout=-1
    )  # fmt: skip
    assert proc.stdin and proc.stdout
    stdin, stdout = proc.stdin, proc.stdout
    stdin.write(b'{"hello": true}\n')
    await stdout.readline()
    line = json.dumps({"id": 1, "tool": "python", "args": TRIVIAL, "timeout_s": 30, "max_chars": 20000}).encode()

    async def call() -> None:
        stdin.write(line + b"\n")
        await stdin.drain()
        await stdout.readline()

    try:
        yield call
    finally:
        stdin.close()
        await proc.wait()
        await asyncio.to_thread(engine.remove, cid)
        await asyncio.to_thread(engine.close)


@contextlib.asynccontextmanager
async def serve(settings: ToolServerSettings) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, str]]:
    port, token = 18000 + uuid.uuid4().int % 1000, uuid.uuid4().hex
    env = {
        **os.environ,
        "PONDER_TOOLSERVER__INSTANCE": settings.instance + "-http",
        "PONDER_TOOLSERVER__TOKEN": token,
        "PONDER_TOOLSERVER__POOL_SIZE": str(settings.pool_size),
    }
    cli = ["-c", "from ponder.cli import main; main()", "toolserver", "serve", "--port", str(port)]
    proc = await asyncio.create_subprocess_exec(sys.executable, *cli, env=env, stdout=-3, stderr=-3)
    try:
        yield proc, f"http://127.0.0.1:{port}", token
    finally:
        proc.terminate()
        await proc.wait()


async def wait_for_pool(raw: httpx.AsyncClient, size: int) -> None:
    for _ in range(1200):
        with contextlib.suppress(httpx.TransportError):
            if (await raw.get("/healthz")).json()["pool"] >= size:
                return
        await asyncio.sleep(0.05)
    raise RuntimeError("the manager did not start or its warm pool did not fill")


SOAK_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("python", {"code": "x = sum(range(1000))\nx"}),
    ("shell", {"command": "echo hi; ls /workspace | wc -l"}),
    ("files", {"op": "write", "path": "f.txt", "content": "soak"}),
    ("files", {"op": "read", "path": "f.txt"}),
    ("python", {"code": "import time; time.sleep(0.3)"}),
    ("shell", {"command": "setsid python3 -c 'while True: pass' >/dev/null 2>&1 & echo detached"}),
    ("python", {"code": "import subprocess\nsubprocess.Popen(['sleep', '60'], start_new_session=True)\n1"}),
    ("shell", {"command": "(sleep 30 &) ; sleep 30 & echo bg"}),
]


async def leftovers(docker: Any, container: str) -> list[str]:
    """Processes in a sandbox besides its PID 1 and runner (both run runner.py)."""
    rows = (await asyncio.to_thread(docker.api.top, container, "-eo pid,args"))["Processes"]
    return [row[-1] for row in rows if "runner.py" not in row[-1]]


async def soak(seconds: float) -> None:
    import random
    from collections import Counter

    from docker.client import DockerClient

    from ponder.toolserver._image import DEFAULT_DOCKER_HOST

    docker = DockerClient(base_url=DEFAULT_DOCKER_HOST)
    settings = ToolServerSettings(instance=f"soak-{uuid.uuid4().hex[:6]}", pool_size=4, max_sessions=32)
    instance = settings.instance + "-http"
    errors: Counter[str] = Counter()
    calls = closes = cancels = 0
    stray: list[str] = []
    rng = random.Random(7)

    def containers() -> set[str]:
        return {
            c["Id"]
            for c in docker.api.containers(all=True, filters={"label": f"ponder.toolserver.instance={instance}"})
        }

    async with (
        serve(settings) as (_server, url, token),
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as raw,
    ):
        await wait_for_pool(raw, settings.pool_size)
        deadline = time.monotonic() + seconds

        async def open_session() -> str | None:
            answer = await raw.post("/sessions")
            if answer.status_code != 201:
                errors[f"open {answer.status_code} {answer.json()['error']['type']}"] += 1
                await asyncio.sleep(float(answer.headers.get("Retry-After", 1)))
                return None
            return str(answer.json()["id"])

        async def worker(index: int) -> None:
            nonlocal calls, closes, cancels
            sid = None
            while time.monotonic() < deadline:
                sid = sid or await open_session()
                if sid is None:
                    continue
                tool, args = rng.choice(SOAK_CALLS)
                request = asyncio.create_task(raw.post(f"/sessions/{sid}/calls", json={"tool": tool, "args": args}))
                roll = rng.random()
                if roll < 0.05:  # close the session while its call runs
                    await asyncio.sleep(rng.uniform(0, 0.2))
                    await raw.delete(f"/sessions/{sid}")
                    closes += 1
                    sid = None
                elif roll < 0.10:  # the client gives up on the request
                    await asyncio.sleep(rng.uniform(0, 0.2))
                    request.cancel()
                    cancels += 1
                try:
                    answer = await request
                except asyncio.CancelledError:
                    continue
                calls += 1
                if answer.status_code != 200:
                    errors[f"call {answer.status_code} {answer.json()['error']['type']}"] += 1
                elif not answer.json()["ok"]:
                    errors[f"call ok=false {str(answer.json()['error']).split(':')[0]}"] += 1
            if sid is not None:
                await raw.delete(f"/sessions/{sid}")

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(32)))
        elapsed = time.perf_counter() - started

        # After the storm: every open session's container holds only its runner, and the manager accounts for
        # every container of its instance.
        probe = [await open_session() for _ in range(4)]
        for sid in filter(None, probe):
            answer = await raw.post(f"/sessions/{sid}/calls", json={"tool": "shell", "args": {"command": "true"}})
            assert answer.status_code == 200
        for _ in range(100):
            health = (await raw.get("/healthz")).json()
            if health["starting"] == 0 and len(containers()) == health["sessions"] + health["pool"]:
                break
            await asyncio.sleep(0.1)
        health = (await raw.get("/healthz")).json()
        leaked = len(containers()) - health["sessions"] - health["pool"]
        for container in containers():
            stray += await leftovers(docker, container)
        for sid in filter(None, probe):
            await raw.delete(f"/sessions/{sid}")
    await asyncio.sleep(2)
    after_shutdown = len(containers())
    docker.close()
    f = {
        "soak_seconds": round(elapsed, 1),
        "workers": 32,
        "calls": calls,
        "calls_per_s": round(calls / elapsed, 1),
        "closes_mid_call": closes,
        "cancelled_requests": cancels,
        "errors": dict(errors.most_common()),
        "leaked_containers": leaked,
        "leftover_processes": len(stray),
        "containers_after_shutdown": after_shutdown,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    print(
        f"{calls} calls in {elapsed:.0f} s ({f['calls_per_s']}/s) by 32 workers; "
        f"{closes} closes mid-call, {cancels} cancels"
    )
    for kind, n in errors.most_common():
        print(f"  {n:5d}  {kind}")
    print(f"leaked containers {leaked}, leftover processes {len(stray)} {stray[:5]}, after shutdown {after_shutdown}")
    print(json.dumps(f))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--acquires", type=int, default=10)
    parser.add_argument("--soak", action="store_true", help="the race and leak soak instead of the latency figures")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the soak")
    args = parser.parse_args()
    if args.soak:
        await soak(args.seconds)
        return
    settings = ToolServerSettings(instance=f"bench-{uuid.uuid4().hex[:6]}", pool_size=2)
    inproc_settings = settings.model_copy(update={"pool_size": 0, "instance": settings.instance + "-inproc"})
    samples: dict[str, list[float]] = {"raw": [], "inproc": [], "http": [], "floor": []}

    async with (
        serve(settings) as (server, url, token),
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as raw_http,
        HttpToolServer(url, token) as client,
        raw_runner(settings) as raw_call,
        Manager(inproc_settings) as manager,
    ):
        await wait_for_pool(raw_http, settings.pool_size)
        sid = await manager.open_session()
        cold = []
        for _ in range(max(3, args.acquires // 2)):  # cold acquires: the in-process manager has no pool
            t = time.perf_counter()
            extra = await manager.open_session()
            cold.append(time.perf_counter() - t)
            await manager.close_session(extra)

        async with client.session() as session:
            paths: dict[str, Call] = {
                "raw": raw_call,
                "inproc": lambda: manager.call(sid, "python", TRIVIAL),
                "http": lambda: session.call("python", TRIVIAL),
                "floor": lambda: raw_http.get("/healthz"),
            }
            for fn in paths.values():
                await timed(20, fn)  # warm up
            server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
            for _ in range(args.rounds):
                for name, fn in paths.items():
                    t = time.perf_counter()
                    await fn()
                    samples[name].append(time.perf_counter() - t)
            server_cpu = (cpu_seconds(server.pid) - server_cpu) / args.rounds
            client_cpu = (time.process_time() - client_cpu) / args.rounds  # all four paths' client side

        acquire = []
        for _ in range(args.acquires):
            await wait_for_pool(raw_http, settings.pool_size)
            t = time.perf_counter()
            created = await raw_http.post("/sessions")
            acquire.append(time.perf_counter() - t)
            await raw_http.delete(f"/sessions/{created.json()['id']}")

        # 8 sessions opened first (most of them cold: the pool holds 2), then timed calls in all 8 at once.
        per_session = max(1, args.rounds // 8)
        async with contextlib.AsyncExitStack() as stack:
            sessions = [await stack.enter_async_context(client.session()) for _ in range(8)]
            await asyncio.gather(*(x.call("python", TRIVIAL) for x in sessions))
            await wait_for_pool(raw_http, settings.pool_size)  # no container starts during the timing

            async def worker(s: ToolSession) -> None:
                for _ in range(per_session):
                    await s.call("python", TRIVIAL)

            t = time.perf_counter()
            for _ in range(8):  # the same number of calls, in one session, back to back
                await worker(sessions[0])
            sequential_s = time.perf_counter() - t
            t = time.perf_counter()
            await asyncio.gather(*(worker(x) for x in sessions))
            concurrent_s = time.perf_counter() - t
        await manager.close_session(sid)

    seq_rate = 8 * per_session / sequential_s
    conc_rate = 8 * per_session / concurrent_s
    p50 = {name: pct(values, 0.5) for name, values in samples.items()}
    f = {
        "raw_exec_call_p50_ms": round(p50["raw"], 3),
        "raw_exec_call_p95_ms": round(pct(samples["raw"], 0.95), 3),
        "inprocess_call_p50_ms": round(p50["inproc"], 3),
        "inprocess_call_p95_ms": round(pct(samples["inproc"], 0.95), 3),
        "http_call_p50_ms": round(p50["http"], 3),
        "http_call_p95_ms": round(pct(samples["http"], 0.95), 3),
        "http_floor_healthz_p50_ms": round(p50["floor"], 3),
        "inprocess_vs_raw_p50": round(p50["inproc"] / p50["raw"], 2),
        "http_vs_raw_p50": round(p50["http"] / p50["raw"], 2),
        "http_minus_floor_vs_inprocess_p50": round((p50["http"] - p50["floor"]) / p50["inproc"], 2),
        "manager_process_cpu_ms_per_round": round(server_cpu * 1000, 3),
        "client_process_cpu_ms_per_round": round(client_cpu * 1000, 3),
        "warm_acquire_p50_ms": round(pct(acquire, 0.5), 2),
        "warm_acquire_p95_ms": round(pct(acquire, 0.95), 2),
        "cold_acquire_p50_ms": round(pct(cold, 0.5), 1),
        "cold_vs_warm_acquire": round(pct(cold, 0.5) / pct(acquire, 0.5), 1),
        "sequential_http_calls_per_s": round(seq_rate, 1),
        "concurrent8_http_calls_per_s": round(conc_rate, 1),
        "concurrent8_vs_sequential": round(conc_rate / seq_rate, 2),
        "target_http_call_p50_ms": 5.0,
        "target_warm_acquire_p50_ms": 20.0,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    print(f"load average {f['load_average_1m']} on {f['cpus']} CPUs; latencies include waiting for a CPU")
    print(f"raw docker exec runner  p50 {f['raw_exec_call_p50_ms']:.2f} ms  p95 {f['raw_exec_call_p95_ms']:.2f} ms")
    print(
        f"in-process manager      p50 {f['inprocess_call_p50_ms']:.2f} ms  p95 {f['inprocess_call_p95_ms']:.2f} ms"
        f"  ({f['inprocess_vs_raw_p50']}x raw)"
    )
    print(
        f"through the HTTP API    p50 {f['http_call_p50_ms']:.2f} ms  p95 {f['http_call_p95_ms']:.2f} ms"
        f"  ({f['http_vs_raw_p50']}x raw; target p50 <= 5 ms)"
    )
    print(f"  HTTP floor /healthz   p50 {f['http_floor_healthz_p50_ms']:.2f} ms (the same server, no sandbox)")
    print(
        f"acquire from warm pool  p50 {f['warm_acquire_p50_ms']:.2f} ms  p95 {f['warm_acquire_p95_ms']:.2f} ms"
        "  (target p50 <= 20 ms)"
    )
    print(f"acquire cold            p50 {f['cold_acquire_p50_ms']:.0f} ms  ({f['cold_vs_warm_acquire']}x warm)")
    print(
        f"8 concurrent sessions   {f['concurrent8_http_calls_per_s']:.0f} calls/s vs"
        f" {f['sequential_http_calls_per_s']:.0f} sequential ({f['concurrent8_vs_sequential']}x)"
    )
    print(json.dumps(f))


if __name__ == "__main__":
    asyncio.run(main())
