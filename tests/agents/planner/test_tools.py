"""Tool specs the planner builds from JSON function specs (servers that are not ponder's own) validate like the
pydantic originals; search and knowledge-base tools run over the search seams."""

from __future__ import annotations

from typing import Any

import pytest

from ponder.agents.planner import kb_tools, search_tools, spec_from_function
from ponder.errors import FetchError, ToolArgumentsInvalid
from ponder.search import Document, EvidenceItem, Hit, Support
from ponder.tools import BUILTIN_TOOLS


@pytest.mark.parametrize("original", BUILTIN_TOOLS, ids=lambda s: s.name)
def test_specs_from_json_match_the_builtin_tools(original: Any) -> None:
    rebuilt = spec_from_function(original.function_spec())
    assert rebuilt.name == original.name
    assert rebuilt.parameters()["required"] == original.parameters().get("required", [])
    assert set(rebuilt.parameters()["properties"]) == set(original.parameters()["properties"])


def test_rebuilt_spec_validates_arguments() -> None:
    files = spec_from_function(next(t for t in BUILTIN_TOOLS if t.name == "files").function_spec())
    assert files.validate_args({"op": "write", "path": "a.txt", "content": "x"}).model_dump(exclude_none=True) == {
        "op": "write", "path": "a.txt", "content": "x"
    }  # fmt: skip
    assert files.validate_args({"op": "list"}).model_dump()["content"] is None
    with pytest.raises(ToolArgumentsInvalid, match="op"):
        files.validate_args({"op": "delete"})
    python = spec_from_function(next(t for t in BUILTIN_TOOLS if t.name == "python").function_spec())
    with pytest.raises(ToolArgumentsInvalid, match="code: Field required"):
        python.validate_args({})


class Engine:
    async def search(self, query: str, k: int = 10) -> list[Hit]:
        return [Hit(doc_id=f"d{i}", title=f"{query} {i}", snippet="s") for i in range(k)]

    async def open(self, ref: str) -> Document:
        if ref == "gone":
            raise FetchError("page gone")
        return Document(doc_id=ref, title="T", text="x" * 5000)


class KB:
    async def support(self, subject: str, relation: str, obj: str) -> Support:
        ok = (subject, relation, obj) == ("sun", "is a", "star")
        return Support(
            score=0.9 if ok else 0.1, evidence=[EvidenceItem(text="the sun is a star", source="kb", score=0.9)]
        )


async def test_search_tools_run_over_the_search_seam() -> None:
    search, open_page = search_tools(Engine(), max_chars=100)
    hits = await search.run({"query": "planets", "k": 2})
    assert hits.ok and [h["title"] for h in hits.output["hits"]] == ["planets 0", "planets 1"]
    page = await open_page.run({"ref": "d1"})
    assert page.ok and page.output["text"].endswith("…[truncated]") and len(page.output["text"]) < 200
    gone = await open_page.run({"ref": "gone"})
    assert not gone.ok and "page gone" in str(gone.error)


async def test_check_fact_runs_over_the_knowledge_base() -> None:
    (check,) = kb_tools(KB())
    yes = await check.run({"subject": "sun", "relation": "is a", "object": "star"})
    no = await check.run({"subject": "sun", "relation": "is a", "object": "planet"})
    assert yes.output["supported"] is True and no.output["supported"] is False
    assert yes.output["evidence"] == ["the sun is a star"]
