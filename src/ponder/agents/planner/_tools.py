"""The tools the inner loop may call: sandbox tools from the ToolServer, search and browsing, the knowledge base,
and the planner's own control tools (``submit``, ``ask_human``), each a :class:`ToolSpec` plus how to run it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from ponder.agents.planner._schemas import AskHumanArgs, SubmitResult
from ponder.errors import PonderError
from ponder.tools import ToolResult, ToolSpec

ToolKind = Literal["sandbox", "search", "browse", "kb", "control"]
Runner = Callable[[dict[str, Any]], Awaitable[ToolResult]]

SUBMIT = ToolSpec(
    name="submit",
    description="Finish the current subtask: report the conclusion (with concrete values) and whether it succeeded.",
    args_model=SubmitResult,
)
ASK_HUMAN = ToolSpec(
    name="ask_human",
    description="Ask the human one question when the task is ambiguous or you are stuck; wait for the answer.",
    args_model=AskHumanArgs,
)
HIDDEN_SANDBOX_TOOLS = frozenset({"upload", "download"})
"""Sandbox tools the model does not see (base64 file transfer); the planner uses them to save and restore the
workspace."""


@dataclass(frozen=True)
class AgentTool:
    spec: ToolSpec
    kind: ToolKind
    run: Runner | None = None  # None for control tools, which the graph handles itself

    @property
    def name(self) -> str:
        return self.spec.name


_JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list[Any],
    "object": dict[str, Any],
}


def _field_type(schema: Mapping[str, Any]) -> Any:
    if "anyOf" in schema:  # e.g. pydantic's ``str | None``: {"anyOf": [{"type": "string"}, {"type": "null"}]}
        kinds = [_field_type(s) for s in schema["anyOf"] if s.get("type") != "null"]
        nullable = any(s.get("type") == "null" for s in schema["anyOf"])
        base = kinds[0] if len(kinds) == 1 else Any
        return base | None if nullable and base is not Any else base
    if "const" in schema:
        return Literal[schema["const"]]
    if "enum" in schema:
        return Literal[tuple(schema["enum"])]
    kind = schema.get("type", "string")
    if isinstance(kind, list):  # e.g. ["string", "null"]
        kinds = [k for k in kind if k != "null"]
        base = _JSON_TYPES.get(kinds[0], Any) if kinds else Any
        return base | None if "null" in kind else base
    return _JSON_TYPES.get(kind, Any)


def spec_from_function(function_spec: Mapping[str, Any]) -> ToolSpec:
    """A :class:`ToolSpec` from an OpenAI-style function spec (what ``ToolServer.specs()`` returns).

    Hand-written because pydantic builds schemas from models but not models from schemas; the ToolServer's
    argument schemas are flat objects of plain JSON types, which is all this covers.
    """
    fn = function_spec.get("function", function_spec)
    params = fn.get("parameters") or {}
    required = set(params.get("required", []))
    fields: dict[str, Any] = {}
    for prop, schema in (params.get("properties") or {}).items():
        info = Field(description=schema.get("description"))
        if prop in required:
            fields[prop] = (_field_type(schema), info)
        else:
            info = Field(default=schema.get("default"), description=schema.get("description"))
            fields[prop] = (_field_type(schema) | None, info)
    args_model: type[BaseModel] = create_model(f"{fn['name']}_args", **fields)
    return ToolSpec(name=str(fn["name"]), description=str(fn.get("description", "")), args_model=args_model)


def _ok(tool: str, output: dict[str, Any], start: float) -> ToolResult:
    return ToolResult(tool=tool, ok=True, output=output, seconds=time.perf_counter() - start)


def _failed(tool: str, exc: PonderError, start: float) -> ToolResult:
    return ToolResult(tool=tool, ok=False, error=str(exc), seconds=time.perf_counter() - start)


class SearchArgs(BaseModel):
    query: str = Field(min_length=1, description="what to look for, a few keywords")
    k: int = Field(default=5, ge=1, le=20, description="how many hits")


class OpenArgs(BaseModel):
    ref: str = Field(min_length=1, description="a doc_id or URL from a search hit")


class SupportArgs(BaseModel):
    subject: str
    relation: str
    object: str


def search_tools(engine: Any, *, max_chars: int = 2000) -> list[AgentTool]:
    """``search`` and ``open_page`` over any :class:`ponder.search.SearchEngine`."""

    async def run_search(args: dict[str, Any]) -> ToolResult:
        a, start = SearchArgs.model_validate(args), time.perf_counter()
        try:
            hits = await engine.search(a.query, a.k)
        except PonderError as exc:
            return _failed("search", exc, start)
        return _ok("search", {"hits": [h.model_dump(exclude_none=True) for h in hits]}, start)

    async def run_open(args: dict[str, Any]) -> ToolResult:
        a, start = OpenArgs.model_validate(args), time.perf_counter()
        try:
            doc = await engine.open(a.ref)
        except PonderError as exc:
            return _failed("open_page", exc, start)
        text = doc.text if len(doc.text) <= max_chars else doc.text[:max_chars] + " …[truncated]"
        return _ok("open_page", {"doc_id": doc.doc_id, "title": doc.title, "text": text}, start)

    return [
        AgentTool(ToolSpec(name="search", description="Search the index; returns hits.", args_model=SearchArgs),
                  "search", run_search),
        AgentTool(ToolSpec(name="open_page", description="Read a document found by search.", args_model=OpenArgs),
                  "search", run_open),
    ]  # fmt: skip


def kb_tools(kb: Any) -> list[AgentTool]:
    """``check_fact`` over any :class:`ponder.search.KnowledgeBase`."""

    async def run_support(args: dict[str, Any]) -> ToolResult:
        a, start = SupportArgs.model_validate(args), time.perf_counter()
        try:
            support = await kb.support(a.subject, a.relation, a.object)
        except PonderError as exc:
            return _failed("check_fact", exc, start)
        evidence = [e.text for e in support.evidence[:5]]
        return _ok("check_fact", {"score": support.score, "supported": support.supported, "evidence": evidence}, start)

    spec = ToolSpec(
        name="check_fact",
        description="Check a fact (subject, relation, object) against the knowledge base; returns a support score.",
        args_model=SupportArgs,
    )
    return [AgentTool(spec, "kb", run_support)]


def spec_of(tool: AgentTool | ToolSpec) -> ToolSpec:
    return tool.spec if isinstance(tool, AgentTool) else tool


def describe(tools: Sequence[AgentTool]) -> str:
    """One line per tool for the prompt: name, description and argument names."""
    lines = []
    for t in tools:
        props = t.spec.parameters().get("properties", {})
        lines.append(f"- {t.name}({', '.join(props)}): {t.spec.description}")
    return "\n".join(lines)


def browser_tools(browser: Any) -> list[AgentTool]:
    """The WebCPM browsing actions (search, load_page, scroll, go_back, quote, merge_quotes, finish) over a
    :class:`ponder.search.Browser`; its state is saved in the run's checkpoint after every action."""
    from ponder.search import BROWSER_TOOLS, call_browser

    def runner(name: str) -> Runner:
        async def run(args: dict[str, Any]) -> ToolResult:
            return await call_browser(browser, name, args)

        return run

    return [AgentTool(spec, "browse", runner(spec.name)) for spec in BROWSER_TOOLS]
