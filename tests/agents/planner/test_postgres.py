"""The Postgres checkpointer against a real Postgres server: a run waits on a human, a new planner (as in another
API replica) resumes it from Postgres."""

from __future__ import annotations

import pytest

from ponder.agents import Context, FinalAnswer, NeedsHuman, Task, ToolReturned
from ponder.agents.planner import Planner, open_checkpointer
from ponder.errors import ConfigError
from tests.agents.planner._fake_toolserver import FakeToolServer
from tests.agents.planner._script import answer, call, plan, submit
from tests.fakes import ScriptedModel


async def test_run_pauses_and_resumes_through_postgres(postgres_url: str, toolserver: FakeToolServer) -> None:
    model = ScriptedModel(
        [plan("write"), call("write_file", path="x.txt", content="1"), call("ask_human", question="ok?")]
    )
    ctx = Context(model, toolserver=toolserver, checkpoint_url=postgres_url, run_id="pg-run-1")
    events = [e async for e in Planner(workspace_root=str(toolserver.root)).run(Task(question="q"), ctx)]
    assert isinstance(events[-1], NeedsHuman)

    saved = await Planner().state("pg-run-1", ctx)
    assert saved["current"] == "1" and saved["pending"]["tool"] == "ask_human"
    assert saved["workspace"]["x.txt"]["b64"] == "MQ=="

    model.add(call("read_file", path="x.txt"), submit("x.txt written"), answer("yes"))
    resumed = [e async for e in Planner(workspace_root=str(toolserver.root)).resume("pg-run-1", "yes", ctx)]
    final = resumed[-1]
    assert isinstance(final, FinalAnswer) and final.text == "yes"
    assert len(toolserver.model_calls("write_file")) == 1
    assert toolserver.sessions == 2  # the resumed run got a fresh session with x.txt restored
    read = next(e for e in resumed if isinstance(e, ToolReturned) and e.tool == "read_file")
    assert read.ok and read.output == {"content": "1"}


async def test_unreachable_postgres_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot reach the checkpoint database"):
        async with open_checkpointer("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"):
            pass


async def test_unknown_checkpoint_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unsupported checkpoint URL"):
        async with open_checkpointer("redis://localhost/0"):
            pass
