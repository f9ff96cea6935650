"""Every schema the planner constrains generation with compiles in the embedded backend's constraint engine
(llguidance), with no unresolvable refs and no oneOf."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import Field

from ponder.agents import Task, answer_model
from ponder.agents.planner import PlanDraft, PlanRefinement
from ponder.agents.planner._inner import inline_refs
from ponder.agents.planner._schemas import TOOL_CALL_FIELDS
from ponder.agents.planner._tools import ASK_HUMAN, SUBMIT, kb_tools, search_tools
from ponder.tools import BUILTIN_TOOLS, tool_call_schema

llguidance = pytest.importorskip("llguidance")


def all_tools() -> list[Any]:
    return [*BUILTIN_TOOLS, *(t.spec for t in search_tools(None)), *(t.spec for t in kb_tools(None)), ASK_HUMAN, SUBMIT]


SCHEMAS = {
    "tool_call": inline_refs(tool_call_schema(all_tools(), extra=TOOL_CALL_FIELDS)),
    "forced_submit": inline_refs(tool_call_schema([SUBMIT], extra=TOOL_CALL_FIELDS)),
    "plan": PlanDraft.model_json_schema(),
    "refinement": PlanRefinement.model_json_schema(),
    "answer": answer_model(
        "PlannerAnswer", Task(question="q", family="number"), {"reasoning": (str, Field())}
    ).model_json_schema(),
}


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_compiles_in_llguidance(name: str) -> None:
    from ponder.llm.embedded._constraints import strict_schema

    grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(strict_schema(SCHEMAS[name])))
    assert llguidance.LLMatcher.validate_grammar(grammar, None) == ""


def test_tool_call_schema_has_no_dangling_refs() -> None:
    """Each tool's $defs would end up nested where root-relative refs cannot reach them: they are inlined."""
    assert '"$ref": "#/$defs/SubmitType"' in json.dumps(SUBMIT.parameters())
    raw = json.dumps(tool_call_schema([SUBMIT], extra=TOOL_CALL_FIELDS))
    assert "$ref" not in raw
    assert "SubmitType" not in raw or '"$defs"' not in raw


def test_refinement_parses_each_operation() -> None:
    parsed = PlanRefinement.model_validate(
        {"reasoning": "r", "decision": "change", "operations": [
            {"op": "split", "target": "1", "into": [{"name": "a", "goal": "a"}, {"name": "b", "goal": "b"}]},
            {"op": "add", "after": "1", "subtask": {"name": "c", "goal": "c"}},
            {"op": "delete", "target": "2"},
            {"op": "modify", "target": "3", "goal": "new"},
        ]}
    )  # fmt: skip
    assert [type(op).__name__ for op in parsed.operations] == ["SplitOp", "AddOp", "DeleteOp", "ModifyOp"]
