"""The strategy contract (issue 18): a new strategy is one file with an Options model and a run, registered by
name; it then appears with its options in /strategies, the eval CLI and the API, and its options are validated in
one place, without touching any of them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from ponder.agents import _base, get_strategy, register
from ponder.cli import app
from ponder.errors import InputError
from ponder.evals._runner import check_strategy
from tests.api.conftest import Server, wait_status


@pytest.fixture
def echo_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_base, "_REGISTRY", dict(_base._REGISTRY))  # registered for this test only
    register("echo", "tests.api._echo_strategy:Echo", "repeats the question")


@pytest.mark.usefixtures("echo_registered")
async def test_a_strategy_file_appears_everywhere_with_its_options(make_server: Callable[..., Server]) -> None:
    with pytest.raises(InputError, match=r"times: Input should be less than or equal to 5") as bad:
        get_strategy("echo", times=9)
    assert "'echo' takes: times, shout" in (bad.value.hint or "")
    with pytest.raises(InputError, match="volume: Extra inputs"):
        check_strategy("echo", {"volume": 11})  # what `ponder eval run --option` checks before a run
    listed = CliRunner().invoke(app, ["strategies", "echo"])
    assert listed.exit_code == 0 and "times = 2 (minimum 1, maximum 5)" in listed.output

    server = make_server()
    async with server.client() as client:
        described = next(s for s in (await client.get("/strategies")).json() if s["name"] == "echo")
        assert described["options_schema"]["properties"]["times"]["maximum"] == 5
        assert described["resumable"] is False
        ask = {"strategy": "echo", "input": {"question": "hi"}}
        refused = await client.post("/runs", json={**ask, "options": {"times": 0}})
        assert refused.status_code == 422 and "times" in refused.json()["error"]["message"]
        run = (await client.post("/runs", json={**ask, "options": {"shout": True}})).json()
        done = await wait_status(client, run["id"], "succeeded")
        assert done["text"] == "HI HI" and done["result"]["reasoning"] == "repeated 2 times"
        assert "ponder-echo" in [m["id"] for m in (await client.get("/v1/models")).json()["data"]]


async def test_capabilities_are_declared_and_listed(make_server: Callable[..., Server]) -> None:
    """Every registered strategy subclasses BaseStrategy; what it can do is declared on the class and shown in
    /strategies, and a strategy that cannot resume refuses ``resume`` with a clear error."""
    from ponder.agents import BaseStrategy, Context, Task, strategy_class, strategy_names
    from ponder.errors import ConfigError, Conflict
    from tests.fakes import ScriptedModel

    for name in strategy_names():
        assert issubclass(strategy_class(name), BaseStrategy), name
    server = make_server()
    async with server.client() as client:
        listed = {s["name"]: s for s in (await client.get("/strategies")).json()}
    expected = {  # name: (resumable, requires_toolserver, accepts_client_tools, asks_humans)
        "cot": (False, False, False, False),
        "pot": (False, True, False, False),
        "mcts-code": (False, True, False, False),
        "planner": (True, False, True, True),
        "react": (True, False, True, True),
    }
    for name, flags in expected.items():
        got = listed[name]
        assert (got["resumable"], got["requires_toolserver"], got["accepts_client_tools"], got["asks_humans"]) == flags
    with pytest.raises(Conflict, match="'cot' cannot be resumed"):
        get_strategy("cot").resume("r1", "yes", Context(ScriptedModel([])))
    with pytest.raises(ConfigError, match="'pot' runs the model's programs in the sandbox and needs a ToolServer"):
        async for _ in get_strategy("pot").run(Task(question="1+1?", family="number"), Context(ScriptedModel([]))):
            pass
