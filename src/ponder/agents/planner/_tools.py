"""The tools the inner loop may call: sandbox tools from the ToolServer, search and browsing, the knowledge base,
and the planner's own control tools (``submit``, ``ask_human``), each a :class:`ToolSpec` plus how to run it."""

from __future__ import annotations

import difflib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from ponder.agents.planner._schemas import AskHumanArgs, SubmitResult
from ponder.errors import PonderError
from ponder.tools import ToolResult, ToolSpec

ToolKind = Literal["sandbox", "search", "browse", "kb", "mcp", "client", "control"]
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


class EditFileArgs(BaseModel):
    path: str = Field(min_length=1, description="the file, relative to the workspace")
    old: str = Field(
        default="",
        description="the exact text to replace; it must occur once in the file (add a neighbouring line if it "
        "does not); empty: write the whole file",
    )
    new: str = Field(description="the text that replaces `old`, or the whole file when `old` is empty")


EDIT_FILE = ToolSpec(
    name="edit_file",
    description="Change a file in the workspace: replace one exact snippet (old -> new), or write the whole file "
    "(old empty). Shows the diff of what changed.",
    args_model=EditFileArgs,
)
EDIT_DIFF_CHARS = 4000
HIDDEN_SANDBOX_TOOLS = frozenset({"upload", "download", "run"})
"""Sandbox tools the model does not see: base64 file transfer (the planner uses it to save and restore the
workspace) and ``run`` (a program's supervisor for strategies; the model runs scripts with ``shell``)."""


@dataclass(frozen=True)
class AgentTool:
    spec: ToolSpec
    kind: ToolKind
    run: Runner | None = None  # None for control tools, which the graph handles itself

    @property
    def name(self) -> str:
        return self.spec.name


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


async def edit_file(call: Callable[[str, dict[str, Any]], Awaitable[ToolResult]], args: dict[str, Any]) -> ToolResult:
    """``edit_file`` over the sandbox's ``files`` tool (``call`` runs one sandbox tool): read, replace the one
    match of ``old`` (or take ``new`` as the whole file), write, and show the unified diff. A small model fixes a
    script far more reliably this way than by rewriting it in a notebook cell (issue 21). Nothing is written when
    ``old`` matches nowhere or more than once, or the file is binary or too large to read whole."""
    start = time.perf_counter()
    a = EditFileArgs.model_validate(args)

    def failed(error: str) -> ToolResult:
        return ToolResult(tool=EDIT_FILE.name, ok=False, error=error, seconds=time.perf_counter() - start)

    read = await call("files", {"op": "read", "path": a.path})
    before = str(read.output.get("content", "")) if read.ok else ""
    if read.ok and (read.truncated or "\x00" in before or "\ufffd" in before):
        return failed(f"{a.path} is binary or too large to edit as text; use python to change it")
    if a.old:
        if not read.ok:
            return failed(f"{a.path} does not exist (to create it, leave old empty): {read.error}")
        count = before.count(a.old)
        if count != 1:
            if count:
                return failed(f"old occurs {count} times in {a.path}; add a neighbouring line so it occurs once")
            first = a.old.strip().splitlines()[0] if a.old.strip() else a.old
            near = difflib.get_close_matches(first, before.splitlines(), n=1, cutoff=0.5)
            hint = f"; the closest line is {near[0]!r}" if near else ""
            return failed(f"old does not occur in {a.path} (it must match exactly, spaces included){hint}")
        after = before.replace(a.old, a.new, 1)
    else:
        after = a.new
    written = await call("files", {"op": "write", "path": a.path, "content": after})
    if not written.ok:
        return failed(f"writing {a.path} failed: {written.error}")
    diff = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{a.path}", f"b/{a.path}"))
    if len(diff) > EDIT_DIFF_CHARS:
        diff = diff[:EDIT_DIFF_CHARS] + f"\n…[{len(diff) - EDIT_DIFF_CHARS} more chars of diff]"
    output = {"path": a.path, "created": not read.ok, "diff": diff or "(no change)"}
    return ToolResult(tool=EDIT_FILE.name, ok=True, output=output, seconds=time.perf_counter() - start)


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
