"""Running candidates inside a ToolServer session, so a bad candidate costs one node and never the search.

Each run is one call of the session's ``run`` tool: the runner starts the program as a child process (never in
the session's own interpreter), feeds it its stdin, keeps only the first ``max_output`` characters of what it
prints, kills its process group at the time limit and reaps whatever it left. A candidate that hangs, crashes,
floods stdout or kills its parent therefore yields a failed result with the reason. Tests report their outcome
one line at a time, prefixed by a random nonce the candidate is not given, so partial results survive a later hang.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from ponder.errors import ToolError
from ponder.tools import ToolResult, ToolSession

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
def _canon(v, depth=0):
    # a value's repr that is the same in every process: sets and dicts in sorted order (string hashing is
    # randomised per process), floats to 9 significant digits
    if depth > 20:
        return "..."
    if isinstance(v, float):
        return "%.9g" % v
    if isinstance(v, (list, tuple)):
        inner = ", ".join(_canon(x, depth + 1) for x in v)
        return ("[%s]" if isinstance(v, list) else "(%s)") % inner
    if isinstance(v, (set, frozenset)):
        return "{%s}" % ", ".join(sorted(_canon(x, depth + 1) for x in v))
    if isinstance(v, dict):
        items = sorted(_canon(k, depth + 1) + ": " + _canon(x, depth + 1) for k, x in v.items())
        return "{%s}" % ", ".join(items)
    return repr(v)
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
        if cfg["values"]:
            value = _canon(eval(compile(test, "<input %d>" % i, "eval"), ns))[:300]
            signal.setitimer(signal.ITIMER_REAL, 0)
            report({"i": i, "ok": True, "value": value})
        else:
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
    value: str | None = None  # with ``values``: the canonical repr of what the expression returned


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
    args: dict[str, Any] = {"argv": argv, "stdin": stdin, "timeout_s": timeout_s, "max_output": max_output}
    if files:
        args["files"] = files
    if nonce:
        args["nonce"] = nonce
    try:
        result: ToolResult = await session.call("run", args, timeout_s=timeout_s + 15.0)
    except ToolError as exc:
        return CommandRun(False, None, False, "", 0, error=f"sandbox failed: {exc.message}")
    data = result.output
    if "exit_code" not in data:  # it never started (or the sandbox refused the call)
        return CommandRun(False, None, False, "", 0, error=result.error or "the program did not start")
    rc, timed_out = data["exit_code"], result.timed_out
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
        lines=list(data["lines"]),
        error=error,
        seconds=float(data["seconds"]),
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
    values: bool = False,
) -> TestRun:
    """Load ``program`` in a fresh interpreter and run each test snippet (e.g. an ``assert``) against it. With
    ``values`` each test is an expression (e.g. a call) and its outcome carries the value it returned, in a repr
    that compares across processes (sets and dicts sorted, floats to 9 digits)."""
    nonce = "@" + secrets.token_hex(12) + "@"
    cfg = {"nonce": nonce, "program": program, "tests": tests, "per_test_timeout": per_test_timeout_s}
    cfg["values"] = values
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
            outcomes.append(TestOutcome(test, bool(rec["ok"]), rec.get("error", ""), rec.get("value")))
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
