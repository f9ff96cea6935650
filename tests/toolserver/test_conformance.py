"""Tool conformance: the built-in tools behave the same in process and over HTTP, on the real engine."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from docker.client import DockerClient

from ponder.tools import ToolServer, ToolSession
from ponder.toolserver import LocalToolServer

from .conftest import make_settings, running_http_manager

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.docker]
LIMIT = 4000  # make_settings' max_output_chars


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=["in-process", "http"])
async def server(request: pytest.FixtureRequest, docker_client: DockerClient) -> AsyncIterator[ToolServer]:
    if request.param == "in-process":
        async with LocalToolServer(make_settings()) as local:
            yield local
    else:
        async with running_http_manager(make_settings()) as running:
            yield running.client


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def session(server: ToolServer) -> AsyncIterator[ToolSession]:
    """One session for the module's tests (each container start costs ~1 s on a busy host); isolation between
    sessions has its own test."""
    async with server.session() as s:
        yield s


async def test_specs_name_every_builtin_tool(server: ToolServer) -> None:
    names = [spec["function"]["name"] for spec in server.specs()]
    assert names == ["python", "shell", "files", "run", "upload", "download"]
    python = server.specs()[0]["function"]
    assert python["parameters"]["required"] == ["code"]


async def test_python_state_persists_like_notebook_cells(session: ToolSession) -> None:
    code = "import numpy as np\nx = np.arange(5)\nprint('set')"
    first = await session.call("python", {"code": code}, timeout_s=30)
    assert first.ok, first
    assert first.output["stdout"] == "set\n"
    assert first.output["result"] is None
    second = await session.call("python", {"code": "int(x.sum()) * 2"})
    assert second.output["result"] == "20"
    third = await session.call("python", {"code": "_ + 1"})  # `_` holds the last value, as in a REPL
    assert third.output["result"] == "21"


async def test_python_reports_exceptions_with_traceback(session: ToolSession) -> None:
    result = await session.call("python", {"code": "def f(n):\n    return 1 / n\n\nf(0)"})
    assert not result.ok
    assert result.error == "ZeroDivisionError: division by zero"
    assert "line 2, in f" in result.output["traceback"]
    assert "runner.py" not in result.output["traceback"]
    syntax = await session.call("python", {"code": "def broken(:"})
    assert not syntax.ok
    assert syntax.error is not None and syntax.error.startswith("SyntaxError")
    after = await session.call("python", {"code": "'still here'"})
    assert after.output["result"] == "'still here'"


async def test_python_captures_stderr_and_subprocess_output(session: ToolSession) -> None:
    code = "import os, sys\nprint('to stderr', file=sys.stderr)\nos.system('echo from a child process')"
    result = await session.call("python", {"code": code})
    assert result.ok, result
    assert result.output["stderr"] == "to stderr\n"
    assert result.output["stdout"] == "from a child process\n"
    code = "import sympy\nstr(sympy.factor(sympy.Symbol('x')**2 - 1))"
    sympy = await session.call("python", {"code": code}, timeout_s=30)  # the first import takes ~1.5 s
    assert sympy.output["result"] == "'(x - 1)*(x + 1)'"


async def test_python_input_does_not_read_the_protocol(session: ToolSession) -> None:
    result = await session.call("python", {"code": "input()"})
    assert not result.ok
    assert result.error is not None and result.error.startswith("EOFError")


async def test_shell_reports_exit_codes_and_streams(session: ToolSession) -> None:
    ok = await session.call("shell", {"command": "echo out; echo err >&2; pwd"})
    assert ok.ok
    assert ok.output == {"exit_code": 0, "stdout": "out\n/workspace\n", "stderr": "err\n"}
    failed = await session.call("shell", {"command": "exit 7"})
    assert not failed.ok
    assert failed.output["exit_code"] == 7
    assert failed.error == "exit code 7"
    missing = await session.call("shell", {"command": "no-such-command"})
    assert missing.output["exit_code"] == 127


async def test_shell_has_python_under_both_names(session: ToolSession) -> None:
    await session.call("files", {"op": "write", "path": "x.py", "content": "import sys; print(sys.version_info[0])"})
    for name in ("python", "python3"):
        result = await session.call("shell", {"command": f"{name} x.py"})
        assert result.output == {"exit_code": 0, "stdout": "3\n", "stderr": ""}, name


async def test_shell_returns_promptly_and_stops_its_background_jobs(session: ToolSession) -> None:
    result = await session.call("shell", {"command": "sleep 30 & echo started"})
    assert result.ok
    assert result.output["stdout"] == "started\n"
    assert result.seconds < 2
    left = await session.call("shell", {"command": "cat /proc/[0-9]*/comm | grep -c '^sleep$' || true"})
    assert left.output["stdout"].strip() == "0"


async def test_files_round_trip_inside_the_workspace(session: ToolSession) -> None:
    wrote = await session.call("files", {"op": "write", "path": "notes/a.txt", "content": "héllo\nworld"})
    assert wrote.ok and wrote.output["bytes"] == len("héllo\nworld".encode())
    listed = await session.call("files", {"op": "list", "path": "notes"})
    (entry,) = listed.output["entries"]
    assert {k: entry[k] for k in ("name", "type", "size")} == {"name": "a.txt", "type": "file", "size": 12}
    assert entry["mtime_ns"] > 0
    tree = await session.call("files", {"op": "list", "path": ".", "recursive": True})
    assert "notes/a.txt" in [e["name"] for e in tree.output["entries"]]  # every file below, by path
    read = await session.call("files", {"op": "read", "path": "notes/a.txt"})
    assert read.output["content"] == "héllo\nworld"
    seen_by_python = await session.call("python", {"code": "open('notes/a.txt').read().upper()"})
    assert seen_by_python.output["result"] == "'HÉLLO\\nWORLD'"
    await session.call("files", {"op": "write", "path": "helper.py", "content": "def triple(x):\n    return 3 * x\n"})
    imported = await session.call("python", {"code": "from helper import triple\ntriple(14)"})
    assert imported.output["result"] == "42", imported
    for outside in ("../etc/passwd", "/etc/passwd", "notes/../../tmp/x"):
        denied = await session.call("files", {"op": "read", "path": outside})
        assert not denied.ok
        assert denied.error is not None and "outside the workspace" in denied.error


async def test_upload_download_round_trip_bytes(session: ToolSession) -> None:
    payload = bytes(range(256)) * 40
    up = await session.call("upload", {"path": "data/blob.bin", "content_base64": base64.b64encode(payload).decode()})
    assert up.ok and up.output["bytes"] == len(payload)
    size = await session.call("shell", {"command": "stat -c %s data/blob.bin"})
    assert size.output["stdout"].strip() == str(len(payload))
    down = await session.call("download", {"path": "data/blob.bin"})
    assert base64.b64decode(down.output["content_base64"]) == payload


async def test_outputs_are_truncated_with_a_marker(session: ToolSession) -> None:
    printed = await session.call("python", {"code": "print('x' * 100_000)"})
    assert printed.ok and printed.truncated
    assert printed.output["stdout"].startswith("x" * LIMIT)
    assert printed.output["stdout"].endswith("[truncated: 96001 more characters]")
    value = await session.call("python", {"code": "'y' * 50_000"})
    assert value.truncated and "more characters]" in value.output["result"]
    shell = await session.call("shell", {"command": "seq 1 100000"})
    assert shell.ok and shell.truncated
    assert len(shell.output["stdout"]) < LIMIT + 100
    assert shell.output["stdout"].startswith("1\n2\n3\n")
    await session.call("files", {"op": "write", "path": "big.txt", "content": "z" * 10_000})
    read = await session.call("files", {"op": "read", "path": "big.txt"})
    assert read.truncated and read.output["content"].endswith("[truncated: 6000 more characters]")
    small = await session.call("python", {"code": "print('short')"})
    assert not small.truncated


async def test_sessions_are_isolated_from_each_other(server: ToolServer) -> None:
    async with server.session() as a, server.session() as b:
        assert a.id != b.id
        await a.call("python", {"code": "secret = 1"})
        await a.call("files", {"op": "write", "path": "mine.txt", "content": "a"})
        missing = await b.call("python", {"code": "secret"})
        assert not missing.ok and missing.error == "NameError: name 'secret' is not defined"
        listed = await b.call("files", {"op": "list"})
        assert listed.output["entries"] == []


async def test_output_of_child_processes_is_truncated_too(session: ToolSession) -> None:
    result = await session.call("python", {"code": "import os\nos.system('head -c 100000 /dev/zero | tr \"\\\\0\" z')"})
    assert result.ok and result.truncated
    assert result.output["stdout"].startswith("z" * LIMIT)
    assert result.output["stdout"].endswith("[truncated: 96000 more characters]")


async def test_coq_checks_a_proof_in_the_sandbox(session: ToolSession) -> None:
    proof = "Theorem two : 1 + 1 = 2.\nProof. reflexivity. Qed.\n"
    await session.call("files", {"op": "write", "path": "two.v", "content": proof})
    checked = await session.call("shell", {"command": "coqc two.v && ls two.vo"}, timeout_s=60)
    assert checked.ok, checked
    assert checked.output["stdout"].strip() == "two.vo"
    await session.call(
        "files", {"op": "write", "path": "bad.v", "content": "Theorem no : 1 = 2.\nProof. reflexivity. Qed.\n"}
    )
    refused = await session.call("shell", {"command": "coqc bad.v"}, timeout_s=60)
    assert not refused.ok and "Error" in refused.output["stderr"] + refused.output["stdout"]


async def test_run_feeds_stdin_splits_nonce_lines_and_caps_output(session: ToolSession) -> None:
    program = "import sys\ndata = sys.stdin.read()\nprint('@n@' + data.upper())\nprint('x' * 10000)\nsys.exit(3)"
    result = await session.call("run", {"argv": ["python3", "-c", program], "stdin": "hello", "nonce": "@n@"})
    assert not result.ok and result.error == "exit code 3"
    assert result.output["exit_code"] == 3 and result.output["lines"] == ["HELLO"]
    assert result.output["output_bytes"] == len("@n@HELLO\n") + 10001  # every byte counted, the nonce line too
    assert result.truncated and len(result.output["output"]) < LIMIT + 100  # kept within the call's limit
    small = await session.call("run", {"argv": ["echo", "a" * 50], "max_output": 10})
    assert small.ok and small.output["output"].startswith("aaaaaaaaaa") and small.truncated


async def test_run_kills_what_overruns_and_cleans_its_folder(session: ToolSession) -> None:
    hang = "import subprocess, time\nsubprocess.Popen(['sleep', '300'])\nprint('started', flush=True)\ntime.sleep(300)"
    result = await session.call("run", {"argv": ["python3", "-c", hang], "timeout_s": 1.5, "files": {"a.txt": "x"}})
    assert result.timed_out and not result.ok and "ran past 1.5 s" in (result.error or "")
    assert result.output["output"] == "started\n"
    leftovers = await session.call("shell", {"command": "pgrep -x sleep || true; ls /workspace"})
    assert "run-" not in leftovers.output["stdout"] and not leftovers.output["stdout"].strip().isdigit()
    here = await session.call("run", {"argv": ["cat", "a.txt"], "files": {"a.txt": "in a fresh folder"}})
    assert here.ok and here.output["output"] == "in a fresh folder"
    refused = await session.call("run", {"argv": ["true"], "files": {"../escape.txt": "x"}})
    assert not refused.ok and "not a plain file name" in (refused.error or "")
    missing = await session.call("run", {"argv": ["no-such-program"]})
    assert not missing.ok and "could not start" in (missing.error or "")


async def test_the_data_stack_and_shell_tools_an_agent_expects_are_installed(session: ToolSession) -> None:
    code = (
        "import pandas as pd, scipy.stats, openpyxl, yaml, bs4\n"
        "import matplotlib.pyplot as plt\n"
        "df = pd.DataFrame({'x': [1, 2, 3], 'y': [2, 4, 7]})\n"
        "df.to_excel('t.xlsx', index=False)\n"
        "plt.plot(df.x, df.y); plt.savefig('p.png')\n"
        "(round(float(scipy.stats.pearsonr(df.x, df.y)[0]), 3), int(pd.read_excel('t.xlsx').y.sum()))"
    )
    result = await session.call("python", {"code": code}, timeout_s=60)
    assert result.ok, result.error
    assert result.output["result"] == "(0.993, 13)"
    tools = "procps psmisc lsof find grep sed gawk file bc jq tree zip unzip xz bzip2 sqlite3 git less nano curl wget"
    names = [{"procps": "ps", "psmisc": "killall"}.get(t, t) for t in tools.split()]
    found = await session.call(
        "shell", {"command": f"for t in {' '.join(names)}; do command -v $t >/dev/null || echo $t; done; file p.png"}
    )
    assert found.ok and found.output["stdout"].strip().startswith("p.png: PNG image data"), found.output
