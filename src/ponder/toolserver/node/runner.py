"""The node runner: runs inside the sandbox container, reads one JSON request per line on stdin, answers one JSON line.

This file is copied into the node image (``/opt/ponder/runner.py``) and runs under the image's own python3, so it
uses the standard library only. The manager starts it with one long-lived ``docker exec -i`` per session; Python
state (the ``python`` tool's namespace) lives in this process, like notebook cells.

``python3 runner.py init`` is the container's PID 1 instead: it reaps orphaned processes and waits forever, so a
clean-up ``kill(-1, SIGKILL)`` by the runner (which spares PID 1) leaves the container up.

Request:  {"id": 1, "tool": "python", "args": {...}, "timeout_s": 30, "max_chars": 20000}
Response: {"id": 1, "ok": true, "output": {...}, "error": null, "truncated": false, "timed_out": false}
"""

from __future__ import annotations

import ast
import base64
import builtins
import contextlib
import io
import json
import linecache
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import Any

WORKSPACE = "/workspace"
MARKER = "\n…[truncated: {n} more characters]"
MAX_FILE_BYTES = 8 * 1024 * 1024


class CallTimeout(BaseException):
    """Raised inside user code when the call's time limit passes (a BaseException so ``except Exception`` in user
    code does not swallow it)."""


class Bounded(io.TextIOBase):
    """A text sink that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(s[:room])
            self.kept += min(room, len(s))
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def value(self) -> str:
        text = "".join(self.parts)
        return text + MARKER.format(n=self.dropped) if self.dropped else text


def clip(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit] + MARKER.format(n=len(text) - limit), True


def in_workspace(path: str) -> str:
    full = os.path.realpath(os.path.join(WORKSPACE, path))
    if full != WORKSPACE and not full.startswith(WORKSPACE + "/"):
        raise PermissionError(f"path {path!r} is outside the workspace {WORKSPACE}")
    return full


def _live_others() -> list[int]:
    """Every process of the sandbox user in the container's PID namespace but PID 1, this one, and zombies (which
    only wait to be reaped: PID 1 reaps orphans, and ``kill_strays`` reaps this process's own children).

    Processes of another user are left out: the sandbox user cannot start one (no setuid programs, no capabilities,
    no-new-privileges), so they are a task environment's background programs, started by the manager beside the
    runner (``Manager.start_background``), which ``kill(-1)`` could not signal anyway."""
    me, uid, found = os.getpid(), os.getuid(), []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (1, me):
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # gone meanwhile
        if state not in (b"Z", b"X"):
            found.append(int(name))
    return found


def kill_strays() -> None:
    """Kill every process in the sandbox but PID 1 and this runner: what a call started (background jobs, fork
    bombs, daemons in a new session or process group) never outlives it.

    ``kill(-1, SIGKILL)`` reaches every process the sandbox user may signal, whatever its session or group, and
    spares PID 1 and the caller; it is repeated until no live process is left, so a process forked between two
    rounds dies in the next. The runner is the only process of the sandbox that must live between calls (there is
    one runner per container), so nothing of anyone else's is killed."""
    for _ in range(200):
        if not _live_others():
            break
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:  # reap our own killed children (PID 1 reaps orphans)
                pass
        time.sleep(0.002)
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def supervise(proc: subprocess.Popen[bytes], streams: dict[str, Any], take: Any, timeout: float) -> tuple[int, bool]:
    """Read ``streams`` of ``proc`` into ``take(name, chunk)`` until it exits (plus a moment: background jobs keep
    the pipes open) or ``timeout``; then kill its process group if it ran over, reap it, and kill whatever it left
    running. Returns (exit code, timed out)."""
    sel = selectors.DefaultSelector()
    for name, stream in streams.items():
        sel.register(stream, selectors.EVENT_READ, name)
    deadline = time.monotonic() + timeout
    exited_at: float | None = None
    timed_out = False
    while sel.get_map():
        now = time.monotonic()
        if now > deadline:
            timed_out = True
            break
        if exited_at is None and proc.poll() is not None:
            exited_at = now
        if exited_at is not None and now - exited_at > 0.1:
            break  # background jobs keep the pipes open; stop reading shortly after the command exits
        for key, _ in sel.select(timeout=0.05):
            chunk = os.read(key.fd, 65536)
            if chunk:
                take(key.data, chunk)
            else:
                sel.unregister(key.fileobj)
    sel.close()
    if not timed_out:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
    if timed_out:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    code = proc.wait()  # the exit code first: kill_strays reaps children, and with them their status
    # Nothing the command started keeps running between calls: background jobs, fork bombs, and daemons that
    # left its process group with setsid.
    kill_strays()
    for stream in streams.values():
        stream.close()
    return code, timed_out


class Runner:
    def __init__(self, proto_out: Any) -> None:
        self.out = proto_out
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        self.cells = 0
        self.armed = False
        self.owner = os.getpid()

    # -- the loop ---------------------------------------------------------------------------------------------

    def reply(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message, default=repr).encode() + b"\n")
        self.out.flush()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        tool = request.get("tool")
        args = request.get("args") or {}
        timeout = float(request.get("timeout_s") or 30.0)
        limit = int(request.get("max_chars") or 20_000)
        handler = getattr(self, f"tool_{tool}", None)
        if handler is None:
            return {"ok": False, "output": {}, "error": f"unknown tool {tool!r}"}
        try:
            result: dict[str, Any] = handler(args, timeout, limit)
        except CallTimeout:
            result = {"ok": False, "output": {}, "error": f"TimeoutError: the call ran past {timeout:g} s"}
            result["timed_out"] = True
        except Exception as exc:  # noqa: BLE001 - any failure of a tool is that call's result
            result = {"ok": False, "output": {}, "error": f"{type(exc).__name__}: {exc}"}
        return result

    # -- python -----------------------------------------------------------------------------------------------

    def _alarm(self, signum: int, frame: Any) -> None:
        if self.armed:
            raise CallTimeout()

    def tool_python(self, args: dict[str, Any], timeout: float, limit: int) -> dict[str, Any]:
        code = str(args.get("code", ""))
        self.cells += 1
        filename = f"<cell {self.cells}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        out, err = Bounded(limit), Bounded(limit)
        fd_sink = os.memfd_create("fd-output")
        saved = (sys.stdout, sys.stderr, os.dup(1), os.dup(2))
        value: str | None = None
        error: str | None = None
        tb: str | None = None
        timed_out = False
        try:
            tree = ast.parse(code, filename, "exec")
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            assert last is None or isinstance(last, ast.Expr)
            body = compile(tree, filename, "exec")
            tail = compile(ast.Expression(last.value), filename, "eval") if last else None
            sys.stdout, sys.stderr = out, err
            os.dup2(fd_sink, 1)
            os.dup2(fd_sink, 2)
            self.armed = True
            signal.setitimer(signal.ITIMER_REAL, timeout, 0.25)
            try:
                exec(body, self.namespace)
                if tail is not None:
                    result = eval(tail, self.namespace)
                    if result is not None:
                        self.namespace["_"] = result
                        value = repr(result)
            finally:
                self.armed = False
                signal.setitimer(signal.ITIMER_REAL, 0)
        except CallTimeout:
            timed_out = True
            error = f"TimeoutError: the call ran past {timeout:g} s"
        except BaseException as exc:  # noqa: BLE001 - user code may raise anything, SystemExit and KeyboardInterrupt included
            error = f"{type(exc).__name__}: {exc}"
            frames = traceback.TracebackException.from_exception(exc)
            frames.stack = traceback.StackSummary.from_list(
                [f for f in frames.stack if f.filename != __file__]  # hide the runner's own frames
            )
            tb = "".join(frames.format())
        finally:
            if os.getpid() != self.owner:
                os._exit(0)  # a child forked by user code must never speak the protocol
            sys.stdout, sys.stderr = saved[0], saved[1]
            os.dup2(saved[2], 1)
            os.dup2(saved[3], 2)
            os.close(saved[2])
            os.close(saved[3])
            kill_strays()
        os.lseek(fd_sink, 0, os.SEEK_SET)
        with os.fdopen(fd_sink, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            data = f.read(limit * 4 + 4)
        if data:
            out.write(data.decode("utf-8", "replace"))
            out.dropped += size - len(data)  # bytes never read count as characters dropped
        if value is not None:
            value, _ = clip(value, limit)
        output = {"stdout": out.value(), "stderr": err.value(), "result": value}
        if tb:
            output["traceback"], _ = clip(tb, limit)
        truncated = bool(out.dropped or err.dropped or (value and value.endswith(" more characters]")))
        return {"ok": error is None, "output": output, "error": error, "truncated": truncated, "timed_out": timed_out}

    # -- shell ------------------------------------------------------------------------------------------------

    def tool_shell(self, args: dict[str, Any], timeout: float, limit: int) -> dict[str, Any]:
        command = str(args.get("command", ""))
        proc = subprocess.Popen(
            ["/bin/bash", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=WORKSPACE,
            start_new_session=True,
        )
        sinks = {"stdout": Bounded(limit), "stderr": Bounded(limit)}
        assert proc.stdout is not None and proc.stderr is not None

        def take(name: str, chunk: bytes) -> None:
            sinks[name].write(chunk.decode("utf-8", "replace"))

        code, timed_out = supervise(proc, {"stdout": proc.stdout, "stderr": proc.stderr}, take, timeout)
        output = {"exit_code": code, "stdout": sinks["stdout"].value(), "stderr": sinks["stderr"].value()}
        error = f"TimeoutError: the command ran past {timeout:g} s" if timed_out else None
        if error is None and code != 0:
            error = f"exit code {code}"
        truncated = any(s.dropped for s in sinks.values())
        return {
            "ok": code == 0 and not timed_out,
            "output": output,
            "error": error,
            "truncated": truncated,
            "timed_out": timed_out,
        }

    # -- run: one program, argv and stdin, output merged and capped ----------------------------------------------

    def tool_run(self, args: dict[str, Any], timeout: float, limit: int) -> dict[str, Any]:
        """Run ``argv`` (no shell) with ``stdin``, in the workspace or, with ``files``, in a fresh folder holding
        them (removed after). Output lines that start with ``nonce`` are returned apart, in ``lines`` (a program
        reports results the code it runs cannot forge); the rest is merged stdout and stderr, capped."""
        argv = [str(a) for a in args.get("argv") or []]
        budget = min(timeout, float(args.get("timeout_s") or timeout))
        cap = min(limit, int(args.get("max_output") or limit))
        nonce = str(args.get("nonce") or "").encode()
        files = dict(args.get("files") or {})
        cwd = WORKSPACE
        if files:
            cwd = tempfile.mkdtemp(prefix="run-", dir=WORKSPACE)
            for name, text in files.items():
                if os.path.basename(name) != name or name in ("", ".", ".."):
                    shutil.rmtree(cwd, ignore_errors=True)
                    return {"ok": False, "output": {}, "error": f"files: {name!r} is not a plain file name"}
                with open(os.path.join(cwd, name), "w", encoding="utf-8") as f:
                    f.write(str(text))
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd,
                start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            if files:
                shutil.rmtree(cwd, ignore_errors=True)
            return {"ok": False, "output": {}, "error": f"could not start {argv[:1]}: {type(exc).__name__}: {exc}"}
        kept, lines = Bounded(cap), []
        size, partial = [0], [b""]  # updated by take(), a closure

        def feed() -> None:  # in a thread: a large stdin must not block reading the output
            assert proc.stdin is not None
            with contextlib.suppress(OSError):
                proc.stdin.write(str(args.get("stdin") or "").encode())
                proc.stdin.close()

        def take(_name: str, chunk: bytes) -> None:
            size[0] += len(chunk)
            *full, rest = (partial[0] + chunk).split(b"\n")
            for line in full:
                if nonce and line.startswith(nonce):
                    lines.append(line[len(nonce) :].decode("utf-8", "replace"))
                else:
                    kept.write(line.decode("utf-8", "replace") + "\n")
            partial[0] = rest[-65536:]

        threading.Thread(target=feed, daemon=True).start()
        assert proc.stdout is not None
        code, timed_out = supervise(proc, {"stdout": proc.stdout}, take, budget)
        tail = partial[0]
        if tail and not (nonce and tail.startswith(nonce)):
            kept.write(tail.decode("utf-8", "replace"))
        if files:
            shutil.rmtree(cwd, ignore_errors=True)
        output = {
            "exit_code": code,
            "output": kept.value(),
            "output_bytes": size[0],
            "lines": lines,
            "seconds": round(time.monotonic() - started, 3),
        }
        error = f"TimeoutError: the program ran past {budget:g} s" if timed_out else None
        if error is None and code != 0:
            error = f"exit code {code}"
        return {"ok": code == 0 and not timed_out, "output": output, "error": error, "truncated": kept.dropped > 0,
                "timed_out": timed_out}  # fmt: skip

    # -- files ------------------------------------------------------------------------------------------------

    def tool_files(self, args: dict[str, Any], timeout: float, limit: int) -> dict[str, Any]:
        op = args.get("op")
        path = in_workspace(str(args.get("path") or "."))
        if op == "list" and args.get("recursive"):  # every file below, by path, with its size and mtime
            files = []
            for folder, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    full = os.path.join(folder, name)
                    st = os.stat(full, follow_symlinks=False)
                    files.append({"name": os.path.relpath(full, path), "type": "file", "size": st.st_size,
                                  "mtime_ns": st.st_mtime_ns})  # fmt: skip
            return {"ok": True, "output": {"path": path, "entries": files}}
        if op == "list":
            entries = []
            for entry in sorted(os.scandir(path), key=lambda e: e.name):
                kind = "dir" if entry.is_dir(follow_symlinks=False) else "file"
                st = entry.stat(follow_symlinks=False)
                size = st.st_size if kind == "file" else None
                entries.append({"name": entry.name, "type": kind, "size": size, "mtime_ns": st.st_mtime_ns})
            return {"ok": True, "output": {"path": path, "entries": entries}}
        if op == "read":
            with open(path, encoding="utf-8", errors="replace") as f:
                content = f.read(limit + 1)
                rest = len(f.read()) if len(content) > limit else 0
            truncated = len(content) > limit
            if truncated:
                content = content[:limit] + MARKER.format(n=rest + 1)
            return {"ok": True, "output": {"path": path, "content": content}, "truncated": truncated}
        if op == "write":
            content = str(args.get("content", ""))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(content)
            return {"ok": True, "output": {"path": path, "bytes": len(content.encode())}}
        return {"ok": False, "output": {}, "error": f"unknown files op {op!r}; use list, read or write"}

    def tool_upload(self, args: dict[str, Any], timeout: float, limit: int) -> dict[str, Any]:
        path = in_workspace(str(args["path"]))
        data = base64.b64decode(str(args.get("content_base64", "")), validate=True)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return {"ok": True, "output": {"path": path, "bytes": len(data)}}

    def tool_download(self, args: dict[str, Any], timeout: float, limit: int) -> dict[str, Any]:
        path = in_workspace(str(args["path"]))
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            return {
                "ok": False,
                "output": {"path": path, "bytes": size},
                "error": f"file is {size} bytes; downloads are limited to {MAX_FILE_BYTES} bytes",
            }
        with open(path, "rb") as f:
            data = f.read()
        return {"ok": True, "output": {"path": path, "bytes": size, "content_base64": base64.b64encode(data).decode()}}


def serve() -> None:
    # Keep the protocol's file descriptors private: user code printing to fd 1 or reading fd 0 must not corrupt it.
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    runner = Runner(proto_out)
    signal.signal(signal.SIGALRM, runner._alarm)
    if os.path.isdir(WORKSPACE):
        os.chdir(WORKSPACE)
        sys.path.insert(0, WORKSPACE)  # modules written to the workspace import like a notebook's neighbours
    # Say nothing before the manager's hello line: the manager's HTTP client must not read the first reply into
    # its buffer together with the exec's upgrade response.
    try:
        if not proto_in.readline():
            return
        runner.reply({"ready": True, "pid": os.getpid(), "python": sys.version.split()[0]})
        for line in proto_in:
            try:
                request = json.loads(line)
            except ValueError as exc:
                runner.reply({"id": None, "ok": False, "output": {}, "error": f"bad request line: {exc}"})
                continue
            started = time.perf_counter()
            response = runner.handle(request)
            response["id"] = request.get("id")
            response["seconds"] = time.perf_counter() - started
            with contextlib.suppress(OSError):  # the manager is gone: the loop ends at the input's end
                runner.reply(response)
    finally:
        # The input ended: the manager closed this sandbox, or died (even SIGKILLed, its connection to the engine
        # closes, and the engine closes our stdin). Nobody can use the sandbox any more: stop the container by
        # ending PID 1, which takes every process with it.
        kill_strays()
        with contextlib.suppress(OSError):
            os.kill(1, signal.SIGTERM)


RUNNERLESS_EXIT_S = 30.0  # PID 1 ends the container after this long without a runner (see init)


def _runner_present() -> bool:
    marker = b"/opt/ponder/runner.py"
    for name in os.listdir("/proc"):
        if name.isdigit() and name != "1":
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if marker in argv and b"init" not in argv:
                return True
    return False


def init() -> None:
    """PID 1: reap orphans; end the container when no runner has been in it for RUNNERLESS_EXIT_S.

    A runner ends the container itself when its manager goes (see ``serve``); this is the backstop for a manager
    that died before a runner was attached, or a runner that was killed and not replaced. The manager replaces a
    killed runner within a second, and attaches one to a new container within a second of starting it."""

    def reap(signum: int, frame: Any) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    signal.signal(signal.SIGCHLD, reap)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    last_seen = time.monotonic()
    while True:
        time.sleep(1.0)
        if _runner_present():
            last_seen = time.monotonic()
        elif time.monotonic() - last_seen > RUNNERLESS_EXIT_S:
            sys.exit(0)


if __name__ == "__main__":
    init() if sys.argv[1:] == ["init"] else serve()
