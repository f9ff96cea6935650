"""Browsing (the WebCPM actions) and search over a real local index (SQLite FTS5): the browser's state lives in the
run's checkpoint, so quotes kept before a pause are still there after a new planner resumes the run."""

from __future__ import annotations

from pathlib import Path

from ponder.agents import Context, FinalAnswer, NeedsHuman, Task, ToolReturned
from ponder.agents.planner import Planner
from ponder.search import Document, open_index
from tests.agents.planner._script import answer, call, plan, submit
from tests.fakes import ScriptedModel

DOCS = [
    Document(doc_id="zorblax", title="Zorblax Tower", text="The Zorblax Tower in Vennick is 324 meters tall."),
    Document(doc_id="orrin", title="Orrin Lake", text="Orrin Lake has an area of 64 square kilometres."),
]


async def test_browser_state_survives_a_pause(tmp_path: Path, checkpoint_url: str) -> None:
    index = open_index(tmp_path / "index", "sqlite")
    await index.add(DOCS)
    model = ScriptedModel(
        [
            plan("find the height"),
            call("search", query="Zorblax Tower height"),
            call("load_page", k=1),
            call("quote", text="The Zorblax Tower in Vennick is 324 meters tall."),
            call("ask_human", question="Metres or feet?"),
        ]
    )
    ctx = Context(model, search=index, checkpoint_url=checkpoint_url, run_id="browse-1")
    task = Task(question="How tall is the Zorblax Tower?")
    events = [e async for e in Planner(browse=True, max_steps=8).run(task, ctx)]
    assert isinstance(events[-1], NeedsHuman)
    returned = {e.tool: e for e in events if isinstance(e, ToolReturned)}
    assert "Zorblax Tower" in returned["search"].output["observation"]
    assert "324 meters" in returned["load_page"].output["observation"]

    model.add(call("finish"), submit("324 metres"), answer("324 metres"))
    resumed = [e async for e in Planner(browse=True, max_steps=8).resume("browse-1", "metres", ctx)]
    model.assert_complete()
    final = resumed[-1]
    assert isinstance(final, FinalAnswer) and final.text == "324 metres"
    finish = next(e for e in resumed if isinstance(e, ToolReturned) and e.tool == "finish")
    assert [q["text"] for q in finish.output["quotes"]] == ["The Zorblax Tower in Vennick is 324 meters tall."]
    await index.close()


async def test_search_and_open_page_over_the_index(tmp_path: Path) -> None:
    index = open_index(tmp_path / "index", "sqlite")
    await index.add(DOCS)
    model = ScriptedModel(
        [plan("look up"), call("search", query="Orrin Lake area"), call("open_page", ref="orrin"),
         submit("64 km2"), answer("64")]
    )  # fmt: skip
    events = [e async for e in Planner().run(Task(question="Area of Orrin Lake?"), Context(model, search=index))]
    returned = {e.tool: e for e in events if isinstance(e, ToolReturned)}
    assert returned["search"].output["hits"][0]["doc_id"] == "orrin"
    assert "64 square kilometres" in returned["open_page"].output["text"]
    assert isinstance(events[-1], FinalAnswer) and events[-1].text == "64"
    await index.close()
