"""Durability: a run killed in the middle (a real subprocess, SIGKILL) resumes from its SQLite checkpoint with no
completed tool call repeated and its workspace restored into a fresh sandbox session."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from ponder.agents import FinalAnswer, ToolReturned
from tests.agents.planner._crash_run import make

REPO = Path(__file__).resolve().parents[3]


def journal_lines(path: Path) -> list[tuple[str, str, str]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        out.append((entry["phase"], entry["tool"], entry["args"].get("path", "")))
    return out


async def test_killed_run_resumes_without_repeating_completed_calls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cp.sqlite'}"
    root, journal = tmp_path / "ws", tmp_path / "journal.jsonl"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.agents.planner._crash_run", url, str(root), str(journal), "crash-1",
        cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while ("start", "sleep", "") not in journal_lines(journal):
            if proc.returncode is not None:
                assert proc.stderr is not None
                raise AssertionError((await proc.stderr.read()).decode()[-2000:])
            assert time.monotonic() < deadline, "the run never reached its hanging tool call"
            await asyncio.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no clean-up, no final checkpoint
        await proc.wait()
    before = journal_lines(journal)
    assert before == [
        ("start", "write_file", "a.txt"), ("end", "write_file", "a.txt"),
        ("start", "write_file", "b.txt"), ("end", "write_file", "b.txt"),
        ("start", "sleep", ""),
    ]  # fmt: skip

    planner, ctx = make(url, root, journal, "crash-1", hang_s=None)
    events = [e async for e in planner.resume("crash-1", None, ctx)]
    final = events[-1]
    assert isinstance(final, FinalAnswer) and final.text == "alpha"
    after = journal_lines(journal)[len(before) :]
    # the interrupted call runs again (it never completed); the completed writes do not
    assert after == [("start", "sleep", ""), ("end", "sleep", ""), ("start", "read_file", "a.txt"),
                     ("end", "read_file", "a.txt")]  # fmt: skip
    # the fresh session's workspace was restored from the checkpoint before the first call
    read = next(e for e in events if isinstance(e, ToolReturned) and e.tool == "read_file")
    assert read.ok and read.output == {"content": "alpha"}
    assert final.result["details"]["workspace"] == {"a.txt": "alpha", "b.txt": "beta"}
    assert final.result["tool_calls"] == 4
    assert set(final.result["details"]["results"]) == {"1", "2"}
