"""A planner run in its own process, for the crash test: ``python -m tests.agents.planner._crash_run URL ROOT
JOURNAL RUN_ID``. Its ``sleep`` tool hangs, so the test can kill the process in the middle of the run."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from ponder.agents import Context, Task
from ponder.agents.planner import Planner
from ponder.llm import ChatRequest
from tests.agents.planner._fake_toolserver import FakeToolServer
from tests.agents.planner._script import answer, call, plan, submit
from tests.fakes import FunctionModel

TASK = Task(question="write a.txt and b.txt, wait, then read a.txt back")


def scripted(request: ChatRequest) -> dict[str, Any]:
    """The same replies in every process: chosen from the prompt, not from a counter."""
    name = request.constraint.name if request.constraint else ""
    if name == "PlanDraft":
        return plan("write the files", "wait and read back")
    if name == "PlannerAnswer":
        return answer("alpha")
    head = request.messages[1].content
    done = sum(m.content.startswith("Result (") for m in request.messages)
    if "Current subtask 1:" in head:
        steps = [call("write_file", path="a.txt", content="alpha"), call("write_file", path="b.txt", content="beta")]
        return steps[done] if done < len(steps) else submit("wrote a.txt and b.txt")
    steps = [call("sleep", seconds=0.01), call("read_file", path="a.txt")]
    return steps[done] if done < len(steps) else submit("a.txt holds alpha")


def make(url: str, root: Path, journal: Path, run_id: str, hang_s: float | None) -> tuple[Planner, Context]:
    server = FakeToolServer(root, journal, hang_s=hang_s)
    ctx = Context(FunctionModel(scripted), toolserver=server, checkpoint_url=url, run_id=run_id)
    return Planner(workspace_root=str(root), adaptive=False), ctx


async def main(url: str, root: str, journal: str, run_id: str) -> None:
    planner, ctx = make(url, Path(root), Path(journal), run_id, hang_s=3600)
    async for _ in planner.run(TASK, ctx):
        pass


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
