"""ToolServer speed: warm-call latency, session acquire (warm pool and cold), and 8 concurrent sessions.

The baseline, measured in the same run: the raw runner driven through the `docker exec -i` CLI with JSON lines
(no manager, no HTTP). The manager is a real `ponder toolserver serve` process on loopback; figures go through its
HTTP API with the HTTP client strategies use. Targets (issue 3): warm call p50 <= 5 ms end to end, warm acquire
p50 <= 20 ms. Ends with one JSON line of the figures.

    python benchmarks/toolserver.py [--calls 300] [--acquires 10]
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
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from ponder.config import ToolServerSettings
from ponder.tools import HttpToolServer, ToolSession
from ponder.toolserver import Manager
from ponder.toolserver._docker import DockerEngine

TRIVIAL = {"code": "1"}


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process, from /proc (clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed(n: int, fn: Callable[[], Awaitable[Any]]) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t)
    return out


async def raw_runner(settings: ToolServerSettings, calls: int) -> list[float]:
    """The baseline: JSON lines straight into `docker exec -i ... runner.py`."""
    engine = DockerEngine(settings)
    await asyncio.to_thread(engine.connect)
    cid = await asyncio.to_thread(engine.start_container)
    try:
        proc = await asyncio.create_subprocess_exec(
            "docker",
            "exec",
            "-i",
            "-u",
            "1000:1000",
            cid,
            "python3",
            "-I",
            "/opt/ponder/runner.py",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdin and proc.stdout
        proc.stdin.write(b'{"hello": true}\n')
        await proc.stdout.readline()
        line = json.dumps({"id": 1, "tool": "python", "args": TRIVIAL, "timeout_s": 30, "max_chars": 20000}).encode()

        async def one() -> None:
            assert proc.stdin and proc.stdout
            proc.stdin.write(line + b"\n")
            await proc.stdin.drain()
            await proc.stdout.readline()

        await timed(20, one)  # warm up
        samples = await timed(calls, one)
        proc.stdin.close()
        await proc.wait()
        return samples
    finally:
        await asyncio.to_thread(engine.remove, cid)
        await asyncio.to_thread(engine.close)


async def start_server(settings: ToolServerSettings, port: int, token: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "PONDER_TOOLSERVER__INSTANCE": settings.instance,
        "PONDER_TOOLSERVER__TOKEN": token,
        "PONDER_TOOLSERVER__POOL_SIZE": str(settings.pool_size),
    }
    code = "from ponder.cli import main; main()"
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        "toolserver",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def wait_for_pool(raw: httpx.AsyncClient, size: int) -> None:
    for _ in range(600):
        stats = (await raw.get("/healthz")).json()
        if stats["pool"] >= size:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the warm pool did not fill")


async def through_http(settings: ToolServerSettings, calls: int, acquires: int) -> dict[str, Any]:
    port, token = 18000 + int(uuid.uuid4().int % 1000), uuid.uuid4().hex
    url = f"http://127.0.0.1:{port}"
    server = await start_server(settings, port, token)
    try:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as raw:
            for _ in range(300):
                try:
                    await raw.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            await wait_for_pool(raw, settings.pool_size)
            client = HttpToolServer(url, token)
            async with client:
                floor = await timed(calls, lambda: raw.get("/healthz"))  # the same HTTP stack, no sandbox
                async with client.session() as s:
                    await timed(20, lambda: s.call("python", TRIVIAL))
                    server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
                    warm = await timed(calls, lambda: s.call("python", TRIVIAL))
                    server_cpu = (cpu_seconds(server.pid) - server_cpu) / calls
                    client_cpu = (time.process_time() - client_cpu) / calls

                acquire = []
                for _ in range(acquires):
                    await wait_for_pool(raw, settings.pool_size)
                    t = time.perf_counter()
                    created = await raw.post("/sessions")
                    acquire.append(time.perf_counter() - t)
                    await raw.delete(f"/sessions/{created.json()['id']}")

                # 8 sessions opened first (most of them cold: the pool holds 2), then timed calls in all 8 at once.
                per_session = max(1, calls // 8)
                async with contextlib.AsyncExitStack() as stack:
                    sessions = [await stack.enter_async_context(client.session()) for _ in range(8)]
                    await asyncio.gather(*(x.call("python", TRIVIAL) for x in sessions))

                    async def worker(session: ToolSession) -> int:
                        for _ in range(per_session):
                            await session.call("python", TRIVIAL)
                        return per_session

                    t = time.perf_counter()
                    done = sum(await asyncio.gather(*(worker(x) for x in sessions)))
                    concurrent_s = time.perf_counter() - t
        return {
            "warm": warm,
            "floor": floor,
            "server_cpu": server_cpu,
            "client_cpu": client_cpu,
            "acquire": acquire,
            "concurrent_calls": done,
            "concurrent_s": concurrent_s,
        }
    finally:
        server.terminate()
        await server.wait()


async def cold_acquire(settings: ToolServerSettings, n: int) -> list[float]:
    cold = settings.model_copy(update={"pool_size": 0, "instance": settings.instance + "-cold"})
    async with Manager(cold) as manager:
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            sid = await manager.open_session()
            samples.append(time.perf_counter() - t)
            await manager.close_session(sid)
        return samples


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--acquires", type=int, default=10)
    args = parser.parse_args()
    settings = ToolServerSettings(instance=f"bench-{uuid.uuid4().hex[:6]}", pool_size=2)

    raw = await raw_runner(settings, args.calls)
    http = await through_http(settings, args.calls, args.acquires)
    cold = await cold_acquire(settings, max(3, args.acquires // 2))
    seq_rate = len(http["warm"]) / sum(http["warm"])
    conc_rate = http["concurrent_calls"] / http["concurrent_s"]
    figures = {
        "raw_exec_call_p50_ms": round(pct(raw, 0.5), 3),
        "raw_exec_call_p95_ms": round(pct(raw, 0.95), 3),
        "http_call_p50_ms": round(pct(http["warm"], 0.5), 3),
        "http_call_p95_ms": round(pct(http["warm"], 0.95), 3),
        "http_vs_raw_p50": round(pct(http["warm"], 0.5) / pct(raw, 0.5), 2),
        "http_floor_healthz_p50_ms": round(pct(http["floor"], 0.5), 3),
        "http_call_minus_floor_p50_ms": round(pct(http["warm"], 0.5) - pct(http["floor"], 0.5), 3),
        "manager_cpu_ms_per_call": round(http["server_cpu"] * 1000, 3),
        "client_cpu_ms_per_call": round(http["client_cpu"] * 1000, 3),
        "warm_acquire_p50_ms": round(pct(http["acquire"], 0.5), 2),
        "warm_acquire_p95_ms": round(pct(http["acquire"], 0.95), 2),
        "cold_acquire_p50_ms": round(pct(cold, 0.5), 1),
        "cold_vs_warm_acquire": round(pct(cold, 0.5) / pct(http["acquire"], 0.5), 1),
        "sequential_calls_per_s": round(seq_rate, 1),
        "concurrent8_calls_per_s": round(conc_rate, 1),
        "concurrent8_vs_sequential": round(conc_rate / seq_rate, 2),
        "target_call_p50_ms": 5.0,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "target_warm_acquire_p50_ms": 20.0,
    }
    f = figures
    print(f"load average {f['load_average_1m']} on {f['cpus']} CPUs (latencies below include waiting for a CPU)")
    print(f"raw docker exec runner  p50 {f['raw_exec_call_p50_ms']:.2f} ms  p95 {f['raw_exec_call_p95_ms']:.2f} ms")
    print(
        f"through the HTTP API    p50 {f['http_call_p50_ms']:.2f} ms  p95 {f['http_call_p95_ms']:.2f} ms"
        f"  ({f['http_vs_raw_p50']}x raw; target p50 <= 5 ms)"
    )
    print(
        f"  HTTP floor            p50 {f['http_floor_healthz_p50_ms']:.2f} ms (GET /healthz, same server); CPU per"
        f" call: manager {f['manager_cpu_ms_per_call']:.2f} ms, client {f['client_cpu_ms_per_call']:.2f} ms"
    )
    print(
        f"acquire from warm pool  p50 {f['warm_acquire_p50_ms']:.2f} ms  p95 {f['warm_acquire_p95_ms']:.2f} ms"
        "  (target p50 <= 20 ms)"
    )
    print(f"acquire cold            p50 {f['cold_acquire_p50_ms']:.0f} ms  ({f['cold_vs_warm_acquire']}x warm)")
    print(
        f"8 concurrent sessions   {f['concurrent8_calls_per_s']:.0f} calls/s vs {f['sequential_calls_per_s']:.0f}"
        f" sequential ({f['concurrent8_vs_sequential']}x)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
