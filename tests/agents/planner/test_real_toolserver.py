"""The planner on the real ToolServer (Docker sandbox): the model's code runs in a container, the workspace is
saved in the checkpoint, and a run resumed with a new ToolServer (a fresh container) finds its files restored."""

from __future__ import annotations

import uuid

import pytest

from ponder.agents import Context, FinalAnswer, NeedsHuman, Task, ToolReturned
from ponder.agents.planner import Planner
from ponder.config import ToolServerSettings
from ponder.toolserver import LocalToolServer
from tests.agents.planner._script import answer, call, plan, submit
from tests.fakes import ScriptedModel

pytestmark = pytest.mark.docker


def settings() -> ToolServerSettings:
    return ToolServerSettings(instance=f"pytest-planner-{uuid.uuid4().hex[:8]}", pool_size=1, call_timeout_s=10.0)


async def test_files_survive_a_pause_into_a_fresh_container(checkpoint_url: str) -> None:
    model = ScriptedModel(
        [
            plan("compute and save"),
            call("python", code="open('result.txt', 'w').write(str(sum(range(10))))\nsecret = 7"),
            call("files", op="list", path="."),
            call("ask_human", question="Shall I go on?"),
        ]
    )
    task = Task(question="Sum 0..9 into result.txt")
    async with LocalToolServer(settings()) as server:
        ctx = Context(model, toolserver=server, checkpoint_url=checkpoint_url, run_id="docker-1")
        events = [e async for e in Planner(adaptive=False, max_steps=8).run(task, ctx)]
    assert isinstance(events[-1], NeedsHuman)
    listing = next(e for e in events if isinstance(e, ToolReturned) and e.tool == "files")
    assert [e["name"] for e in listing.output["entries"]] == ["result.txt"]

    model.add(
        call("shell", command="cat result.txt"),
        call("python", code="secret"),  # Python variables do not survive a new container; files do
        submit("result.txt holds 45"),
        answer("45"),
    )
    async with LocalToolServer(settings()) as server:
        ctx = Context(model, toolserver=server, checkpoint_url=checkpoint_url, run_id="docker-1")
        resumed = [e async for e in Planner(adaptive=False, max_steps=8).resume("docker-1", "yes", ctx)]
    model.assert_complete()
    final = resumed[-1]
    assert isinstance(final, FinalAnswer) and final.text == "45"
    returned = [e for e in resumed if isinstance(e, ToolReturned)]
    shell = next(e for e in returned if e.tool == "shell")
    assert shell.ok and shell.output["stdout"] == "45"
    lost = next(e for e in returned if e.tool == "python")
    assert not lost.ok and "NameError" in str(lost.error)
    assert final.result["details"]["workspace"] == {"result.txt": "45"}
