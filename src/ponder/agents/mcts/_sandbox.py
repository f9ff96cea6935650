"""Running candidates inside a ToolServer session, so a bad candidate costs one node and never the search.

Each run sends one small harness to the session's ``python`` tool. The harness starts a child process (the
candidate never runs in the session's own interpreter), feeds it its input on stdin, keeps only the first
``max_output`` bytes of what it prints, kills it at the time limit, and prints one JSON line after a marker.
A candidate that hangs, crashes the interpreter, floods stdout or kills its parent therefore yields a failed
result with the reason. Tests report their outcome one line at a time, prefixed by a random nonce the candidate
is not given, so partial results survive a later hang.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from ponder.errors import ToolError
from ponder.tools import ToolResult, ToolSession

_MARK = "@@PONDER_SANDBOX_RESULT@@"

# The harness runs in the session's interpreter; only the standard library is used. It is plain source text
# because it is shipped to the sandbox, not imported here.
_HARNESS = r"""
import json as _j, subprocess as _sp, sys as _sys, threading as _th, os as _os, time as _t
def _ponder_run(p):
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": _os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    cwd = p.get("cwd")
    if p.get("files"):
        import tempfile
        base = "/workspace" if _os.access("/workspace", _os.W_OK) else None
        cwd = tempfile.mkdtemp(prefix="ponder-", dir=base)
        for name, text in p["files"].items():
            with open(_os.path.join(cwd, name), "w") as f:
                f.write(text)
    t0 = _t.monotonic()
    try:
        proc = _sp.Popen(p["argv"], stdin=_sp.PIPE, stdout=_sp.PIPE, stderr=_sp.STDOUT, cwd=cwd, env=env,
                         start_new_session=True)
    except OSError as e:
        return {"started": False, "error": f"{type(e).__name__}: {e}"}
    kept, lines, state = bytearray(), [], {"size": 0, "partial": bytearray()}
    nonce = p.get("nonce", "").encode()
    cap = p["max_output"]
    def _read():
        while True:
            chunk = proc.stdout.read1(65536) if hasattr(proc.stdout, "read1") else proc.stdout.read(65536)
            if not chunk:
                break
            state["size"] += len(chunk)
            buf = state["partial"] + chunk
            *full, rest = buf.split(b"\n")
            for line in full:
                if nonce and line.startswith(nonce):
                    lines.append(line[len(nonce):].decode("utf-8", "replace"))
                elif line and len(kept) < cap:
                    kept.extend(line[: cap - len(kept)] + b"\n")
            state["partial"] = bytearray(rest[-65536:])
    reader = _th.Thread(target=_read, daemon=True)
    reader.start()
    try:
        proc.stdin.write(p.get("stdin", "").encode())
        proc.stdin.close()
    except OSError:
        pass
    timed_out = False
    try:
        proc.wait(timeout=p["timeout"])
    except _sp.TimeoutExpired:
        timed_out = True
        try:
            _os.killpg(proc.pid, 9)
        except OSError:
            proc.kill()
        proc.wait()
    reader.join(2)
    if p.get("files"):
        import shutil
        shutil.rmtree(cwd, ignore_errors=True)
    tail = bytes(state["partial"])
    if tail and len(kept) < cap and not (nonce and tail.startswith(nonce)):
        kept.extend(tail[: cap - len(kept)])
    return {"started": True, "returncode": proc.returncode, "timed_out": timed_out, "lines": lines,
            "output": kept.decode("utf-8", "replace"), "output_bytes": state["size"],
            "seconds": round(_t.monotonic() - t0, 3)}
print("MARK" + _j.dumps(_ponder_run(_j.loads(PAYLOAD))))
"""

# The child that loads a program and runs each test in the same namespace, reporting one line per test.
_TEST_CHILD = r"""
import sys, json, os, signal, traceback
cfg = json.loads(sys.stdin.readline())
nonce = cfg["nonce"]; del cfg["nonce"]
out = os.dup(1)
def report(rec):
    os.write(out, ("\n" + nonce + json.dumps(rec) + "\n").encode())
class _Timeout(BaseException):
    pass
def _alarm(signum, frame):
    raise _Timeout("time limit of %.1fs exceeded" % cfg["per_test_timeout"])
signal.signal(signal.SIGALRM, _alarm)
def _err(e):
    return (type(e).__name__ + ": " + str(e))[:400]
ns = {"__name__": "__candidate__"}
load_error = None
try:
    signal.setitimer(signal.ITIMER_REAL, cfg["per_test_timeout"])
    exec(compile(cfg["program"], "<candidate>", "exec"), ns)
except BaseException as e:
    load_error = _err(e)
finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
report({"load_error": load_error})
for i, test in enumerate(cfg["tests"]):
    if load_error is not None:
        report({"i": i, "ok": False, "error": "the program failed to load: " + load_error}); continue
    try:
        signal.setitimer(signal.ITIMER_REAL, cfg["per_test_timeout"])
        exec(compile(test, "<test %d>" % i, "exec"), ns)
        signal.setitimer(signal.ITIMER_REAL, 0)
        report({"i": i, "ok": True})
    except BaseException as e:
        signal.setitimer(signal.ITIMER_REAL, 0)
        report({"i": i, "ok": False, "error": _err(e)})
os._exit(0)
"""


@dataclass
class CommandRun:
    """What a command in the sandbox did. ``ok`` is False when it could not run, timed out or exited non-zero."""

    ok: bool
    returncode: int | None
    timed_out: bool
    output: str
    output_bytes: int
    lines: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


@dataclass
class TestOutcome:
    test: str
    passed: bool
    error: str = ""


@dataclass
class TestRun:
    outcomes: list[TestOutcome]
    load_error: str | None
    output: str
    output_bytes: int
    timed_out: bool
    reason: str  # empty when every test passed

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def fraction(self) -> float:
        return self.passed / len(self.outcomes) if self.outcomes else 0.0


def _find_marked(value: Any) -> str | None:
    """The marked line in whatever form the python tool returns its printed output."""
    if isinstance(value, str):
        idx = value.rfind(_MARK)
        if idx >= 0:
            return value[idx + len(_MARK) :].split("\n", 1)[0]
        return None
    if isinstance(value, dict):
        for v in value.values():
            found = _find_marked(v)
            if found is not None:
                return found
    if isinstance(value, list):
        for v in value:
            found = _find_marked(v)
            if found is not None:
                return found
    return None


async def run_command(
    session: ToolSession,
    argv: list[str],
    *,
    stdin: str = "",
    files: dict[str, str] | None = None,
    timeout_s: float = 10.0,
    max_output: int = 20_000,
    nonce: str = "",
) -> CommandRun:
    """Run ``argv`` in the sandbox with a time limit. Never raises for what the command does; a broken sandbox
    is reported as a failed run too (the caller scores it 0 with the reason)."""
    payload = {
        "argv": argv,
        "stdin": stdin,
        "files": files or {},
        "timeout": timeout_s,
        "max_output": max_output,
        "nonce": nonce,
    }
    code = _HARNESS.replace("MARK", _MARK).replace("PAYLOAD", repr(json.dumps(payload)))
    try:
        result: ToolResult = await session.call("python", {"code": code}, timeout_s=timeout_s + 15.0)
    except ToolError as exc:
        return CommandRun(False, None, False, "", 0, error=f"sandbox failed: {exc.message}")
    raw = _find_marked(result.output) or _find_marked(result.error or "")
    if raw is None:
        why = result.error or json.dumps(result.output)[:400]
        return CommandRun(False, None, False, "", 0, error=f"the harness reported nothing: {why}")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return CommandRun(False, None, False, "", 0, error="the sandbox's report was cut short (too much output)")
    if not data.get("started"):
        return CommandRun(False, None, False, "", 0, error=str(data.get("error")))
    rc = data["returncode"]
    timed_out = bool(data["timed_out"])
    error = ""
    if timed_out:
        error = f"timed out after {timeout_s:.0f}s"
    elif rc != 0:
        error = f"exited with code {rc}" + (" (killed by a signal)" if rc is not None and rc < 0 else "")
    if data["output_bytes"] > max_output:
        error = (error + "; " if error else "") + f"printed {data['output_bytes']} bytes (kept {max_output})"
    return CommandRun(
        ok=not timed_out and rc == 0,
        returncode=rc,
        timed_out=timed_out,
        output=data["output"],
        output_bytes=data["output_bytes"],
        lines=data["lines"],
        error=error,
        seconds=data["seconds"],
    )


async def run_tests(
    session: ToolSession,
    program: str,
    tests: list[str],
    *,
    per_test_timeout_s: float = 3.0,
    timeout_s: float = 15.0,
    max_output: int = 4_000,
    python: str = "python3",
) -> TestRun:
    """Load ``program`` in a fresh interpreter and run each test snippet (e.g. an ``assert``) against it."""
    nonce = "@" + secrets.token_hex(12) + "@"
    cfg = {"nonce": nonce, "program": program, "tests": tests, "per_test_timeout": per_test_timeout_s}
    run = await run_command(
        session,
        [python, "-I", "-c", _TEST_CHILD],
        stdin=json.dumps(cfg) + "\n",
        timeout_s=timeout_s,
        max_output=max_output,
        nonce=nonce,
    )
    records = [json.loads(line) for line in run.lines]
    load_error = next((r["load_error"] for r in records if "load_error" in r), None)
    by_index = {r["i"]: r for r in records if "i" in r}
    outcomes: list[TestOutcome] = []
    for i, test in enumerate(tests):
        rec = by_index.get(i)
        if rec is None:
            missing = run.error or "the program exited before this test ran"
            outcomes.append(TestOutcome(test, False, missing))
        else:
            outcomes.append(TestOutcome(test, bool(rec["ok"]), rec.get("error", "")))
    failures = [o for o in outcomes if not o.passed]
    reason = ""
    if load_error:
        reason = f"the program failed to load: {load_error}"
    elif failures:
        reason = f"{len(failures)}/{len(outcomes)} tests failed; first: {failures[0].test.strip()[:200]} -> "
        reason += failures[0].error
    elif not outcomes and run.error:
        reason = run.error
    if run.error and run.error not in reason:
        reason = f"{reason} ({run.error})" if reason else run.error
    return TestRun(
        outcomes=outcomes,
        load_error=load_error,
        output=run.output,
        output_bytes=run.output_bytes,
        timed_out=run.timed_out,
        reason=reason,
    )
