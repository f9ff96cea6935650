"""The session manager: a warm pool of hardened containers, one per session, each driven by one runner.

Life of a sandbox: started into the pool (container + runner exec + hello, ~0.3 s) → handed to a session in
microseconds → removed when the session closes, expires (TTL), idles past its limit, or breaks. Containers are
never reused across sessions. Every container carries this manager's instance name and owner (host, pid, start
time), so a restarted manager removes what a dead one left behind, and never a live one's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from ponder.config import ToolServerSettings
from ponder.errors import Conflict, NotFoundError, SandboxError, SandboxUnavailable
from ponder.tools._builtin import BUILTIN_TOOLS
from ponder.tools._protocols import ToolResult
from ponder.tools._spec import ToolSpec, find_tool
from ponder.toolserver._channel import RunnerChannel, RunnerGone
from ponder.toolserver._docker import DockerEngine, ExecSocket

log = logging.getLogger(__name__)

# The user a task environment's background programs run as (Manager.start_background): unprivileged, and not the
# sandbox user (1000), whose leftovers the runner kills after every call.
ENVIRONMENT_USER = "1001:1001"


@dataclass
class Sandbox:
    container_id: str
    runner: ExecSocket
    channel: RunnerChannel

    @property
    def short(self) -> str:
        return self.container_id[:12]


@dataclass
class Session:
    id: str
    sandbox: Sandbox | None
    created: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    calls: int = 0
    closed: bool = False  # set by close_session; a call that holds or awaits the lock re-checks it


class Manager:
    """Owns the sandboxes. Use as ``async with Manager(settings) as m``; ``open_session``/``call``/``close_session``."""

    def __init__(self, settings: ToolServerSettings, tools: tuple[ToolSpec, ...] = BUILTIN_TOOLS) -> None:
        self.settings = settings
        self.tools = tools
        self.engine = DockerEngine(settings)
        self._sessions: dict[str, Session] = {}
        self._pool: list[Sandbox] = []
        self._starting = 0
        self._opening = 0  # sessions being opened: they hold a slot under max_sessions while their sandbox comes
        self._background: set[asyncio.Task[Any]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._running = False
        self.reaped_orphans = 0

    # -- lifecycle --------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.engine.connect)
        orphans = await asyncio.to_thread(self.engine.list_orphans)
        await asyncio.gather(*(asyncio.to_thread(self.engine.remove, cid) for cid in orphans))
        self.reaped_orphans = len(orphans)
        if orphans:
            log.info("removed %d orphaned sandbox(es) of instance %r", len(orphans), self.settings.instance)
        self._running = True
        self._refill()
        self._reaper = asyncio.create_task(self._reap_loop())

    async def stop(self) -> None:
        self._running = False
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        # Let warm-ups and removals finish (a warm-up that ends now destroys its sandbox) rather than cancel them
        # half-way, which would leave containers and sockets behind.
        pending = set(self._background)
        if pending:
            _, late = await asyncio.wait(pending, timeout=60)
            for task in late:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        doomed = [s.sandbox for s in self._sessions.values() if s.sandbox] + self._pool
        self._sessions.clear()
        self._pool.clear()
        await asyncio.gather(*(self._destroy(sb) for sb in doomed), return_exceptions=True)
        await asyncio.to_thread(self.engine.close)

    async def __aenter__(self) -> Manager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def container_of(self, session_id: str) -> str | None:
        """The id of the container serving a session now (None while it awaits a replacement)."""
        sandbox = self._session(session_id).sandbox
        return sandbox.container_id if sandbox else None

    def stats(self) -> dict[str, int]:
        return {"sessions": len(self._sessions), "pool": len(self._pool), "starting": self._starting}

    # -- sandboxes --------------------------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _start_sandbox(self) -> Sandbox:
        container_id = await asyncio.to_thread(self.engine.start_container)
        try:
            return await self._attach(container_id)
        except BaseException:
            await asyncio.to_thread(self.engine.remove, container_id)
            raise

    async def _attach(self, container_id: str) -> Sandbox:
        runner = await asyncio.to_thread(self.engine.start_runner, container_id)
        try:
            channel, _ = await RunnerChannel.open(runner.sock)
        except (RunnerGone, TimeoutError) as exc:
            runner.close()
            raise SandboxError(f"the runner in sandbox {container_id[:12]} did not start: {exc}") from exc
        return Sandbox(container_id=container_id, runner=runner, channel=channel)

    async def _destroy(self, sandbox: Sandbox) -> None:
        await sandbox.channel.aclose()
        sandbox.runner.close()
        try:
            await asyncio.to_thread(self.engine.remove, sandbox.container_id)
        except SandboxError as exc:
            log.warning("%s", exc)

    async def _warm_one(self) -> None:
        try:
            sandbox = await self._start_sandbox()
        except (SandboxError, SandboxUnavailable) as exc:
            log.warning("could not warm a sandbox: %s", exc)
            await asyncio.sleep(1.0)  # do not spin when the engine is failing
            return
        finally:
            self._starting -= 1
        if self._running:
            self._pool.append(sandbox)
        else:
            await self._destroy(sandbox)

    def _refill(self) -> None:
        while self._running and len(self._pool) + self._starting < self.settings.pool_size:
            self._starting += 1
            self._spawn(self._warm_one())

    async def _acquire(self) -> Sandbox:
        while self._pool:
            sandbox = self._pool.pop()
            if not sandbox.channel.closed:
                self._refill()
                return sandbox
            self._spawn(self._destroy(sandbox))  # died while waiting in the pool
        self._refill()
        return await self._start_sandbox()

    # -- sessions ---------------------------------------------------------------------------------------------

    async def open_session(self) -> str:
        if not self._running:
            raise SandboxUnavailable("the ToolServer manager is not running")
        # The slot is taken before the first await, so concurrent opens cannot all pass the check.
        if len(self._sessions) + self._opening >= self.settings.max_sessions:
            raise SandboxUnavailable(
                f"all {self.settings.max_sessions} sandbox sessions are in use",
                hint="close sessions you no longer need, retry later, or raise PONDER_TOOLSERVER__MAX_SESSIONS",
                retryable=True,
                retry_after_s=1,
            )
        self._opening += 1
        try:
            sandbox = await self._acquire()
        finally:
            self._opening -= 1
        if not self._running:  # stopped while the sandbox came: stop() no longer tracks it
            await self._destroy(sandbox)
            raise SandboxUnavailable("the ToolServer manager stopped while the session was opening")
        session = Session(id=secrets.token_urlsafe(12), sandbox=sandbox)
        self._sessions[session.id] = session
        return session.id

    async def close_session(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            raise NotFoundError(f"no session {session_id!r}", hint="it was closed or expired; open a new session")
        session.closed = True
        if session.sandbox is not None:
            self._spawn(self._destroy(session.sandbox))
            session.sandbox = None

    def _session(self, session_id: str) -> Session:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise NotFoundError(
                f"no session {session_id!r}", hint="it was closed or expired; open a new session"
            ) from None

    def validate(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """Check the tool exists and the arguments fit its schema; return them normalised."""
        spec = find_tool(self.tools, tool)
        return spec.validate_args(args).model_dump(mode="json", exclude_none=True)

    async def call(
        self, session_id: str, tool: str, args: dict[str, Any], *, timeout_s: float | None = None
    ) -> ToolResult:
        clean = self.validate(tool, args)
        session = self._session(session_id)
        limit = min(timeout_s or self.settings.call_timeout_s, self.settings.call_timeout_s * 10)
        async with session.lock:
            _check_open(session)  # closed while this call waited for the one before it
            session.last_used = time.monotonic()
            session.calls += 1
            replaced = None
            if session.sandbox is None:  # broken by an earlier fault: replace it now, and say so
                fresh = await self._acquire()
                if session.closed:  # closed while the fresh sandbox came
                    await self._destroy(fresh)
                    _check_open(session)
                session.sandbox = fresh
                replaced = "the session's earlier sandbox failed; this call ran in a fresh one (state was reset)"
            try:
                result = await self._call_in(session, session.sandbox, tool, clean, limit)
            except SandboxError:
                _check_open(session, during=True)
                raise
            _check_open(session, during=True)
            session.last_used = time.monotonic()
        if replaced:
            result.reset = True
            result.error = f"{result.error}; {replaced}" if result.error else None
            result.output.setdefault("notice", replaced)
        return result

    async def _call_in(
        self, session: Session, sandbox: Sandbox, tool: str, args: dict[str, Any], limit: float
    ) -> ToolResult:
        started = time.perf_counter()
        try:
            reply = await sandbox.channel.request(
                tool,
                args,
                timeout_s=limit,
                wait_s=limit + self.settings.call_grace_s,
                max_chars=self.settings.max_output_chars,
            )
        except TimeoutError:
            # The runner did not stop the code itself (a C-level loop, or user code that swallows the timeout):
            # kill the whole sandbox and give the session a fresh one.
            self._spawn(self._destroy(sandbox))
            session.sandbox = None
            if not session.closed:
                session.sandbox = await self._acquire()
                if session.closed:  # closed while the replacement came: nobody owns it now
                    self._spawn(self._destroy(session.sandbox))
                    session.sandbox = None
            return ToolResult(
                tool=tool,
                ok=False,
                error=f"TimeoutError: the call ran past {limit:g} s and did not stop; the sandbox was replaced, "
                "so Python state and workspace files were lost",
                timed_out=True,
                reset=True,
                seconds=time.perf_counter() - started,
            )
        except RunnerGone as exc:
            return await self._runner_died(session, sandbox, tool, exc, started)
        return ToolResult(
            tool=tool,
            ok=bool(reply.get("ok")),
            output=reply.get("output") or {},
            error=reply.get("error"),
            truncated=bool(reply.get("truncated")),
            timed_out=bool(reply.get("timed_out")),
            seconds=time.perf_counter() - started,
        )

    async def _runner_died(
        self, session: Session, sandbox: Sandbox, tool: str, exc: RunnerGone, started: float
    ) -> ToolResult:
        stderr = sandbox.channel.stderr_tail()
        await sandbox.channel.aclose()
        sandbox.runner.close()
        code = await asyncio.to_thread(self.engine.exec_exit_code, sandbox.runner.exec_id)
        if not session.closed and await asyncio.to_thread(self.engine.container_running, sandbox.container_id):
            # The container lives (the code killed the runner, or the OOM killer did): start a new runner in it.
            try:
                fresh = await self._attach(sandbox.container_id)
            except SandboxError:
                fresh = None
            if fresh is not None and session.closed:  # closed while the runner restarted
                await self._destroy(fresh)
                fresh = None
            if fresh is not None:
                session.sandbox = fresh
                details: dict[str, Any] = {"runner_exit_code": code}
                if stderr:
                    details["runner_stderr"] = stderr
                why = "killed (out of memory, or by the code itself)" if code in (137, -9) else f"exit code {code}"
                return ToolResult(
                    tool=tool,
                    ok=False,
                    error=f"the sandbox's Python process died during the call ({why}); it was restarted, so Python "
                    "state was reset (workspace files are kept)",
                    output={"runner_exit_code": code, "runner_stderr": stderr}
                    if stderr
                    else {"runner_exit_code": code},
                    reset=True,
                    seconds=time.perf_counter() - started,
                )
        if not session.closed:  # close_session already destroys a closed session's sandbox
            self._spawn(self._destroy(sandbox))
            session.sandbox = None
        raise SandboxError(
            f"the sandbox container {sandbox.short} stopped during the call ({exc})",
            hint="call again: the session gets a fresh sandbox (its state was lost)",
        ) from exc

    async def start_background(self, session_id: str, command: str) -> None:
        """Start ``command`` (bash) in the session's sandbox as :data:`ENVIRONMENT_USER` and leave it running
        until the session closes: a task environment's own background program (a log writer, a server), started
        before the agent's first call. It runs as another unprivileged user than the sandbox's, so the runner's
        end-of-call cleanup, which kills whatever the sandbox user left running, neither kills nor waits for it;
        the container's hardening is the same for it (no capabilities, no-new-privileges, its limits). Not
        reachable through :meth:`call`: tools run as the sandbox user and nothing they start outlives them."""
        session = self._session(session_id)
        async with session.lock:
            _check_open(session)
            if session.sandbox is None:
                raise SandboxError(f"session {session_id!r} has no sandbox now", hint="open a new session")
            argv = ["bash", "-c", command]
            await asyncio.to_thread(self.engine.exec_background, session.sandbox.container_id, argv, ENVIRONMENT_USER)

    # -- reaping ----------------------------------------------------------------------------------------------

    async def reap_once(self) -> list[str]:
        """Close sessions past their TTL or idle limit; return their ids."""
        now = time.monotonic()
        expired = [
            s.id
            for s in self._sessions.values()
            if not s.lock.locked()
            and (now - s.created > self.settings.session_ttl_s or now - s.last_used > self.settings.idle_timeout_s)
        ]
        for session_id in expired:
            log.info("closing expired session %s", session_id)
            with contextlib.suppress(NotFoundError):
                await self.close_session(session_id)
        return expired

    async def _reap_loop(self) -> None:
        period = max(0.2, min(30.0, self.settings.idle_timeout_s / 4, self.settings.session_ttl_s / 4))
        while True:
            await asyncio.sleep(period)
            await self.reap_once()
            self._refill()


def _check_open(session: Session, *, during: bool = False) -> None:
    """Raise :class:`Conflict` when ``session`` was closed (before this call ran, or while it ran)."""
    if session.closed:
        when = "while this call ran" if during else "before this call ran"
        raise Conflict(
            f"session {session.id!r} was closed {when}; its sandbox is gone",
            hint="open a new session for further calls",
        )
