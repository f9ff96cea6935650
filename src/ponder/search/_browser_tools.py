"""The browser's actions as tools: argument models, JSON-schema specs, and a dispatcher returning ToolResults."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, Field

from ponder.errors import PonderError
from ponder.search._browser import Browser
from ponder.search._text import MAX_QUERY_CHARS
from ponder.tools import ToolResult, ToolSpec, find_tool


class SearchArgs(BaseModel):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="keywords to search for")


class LoadPageArgs(BaseModel):
    k: int = Field(ge=1, le=100, description="the number of the search result to open, as listed: 1 is the first")


class QuoteArgs(BaseModel):
    text: str = Field(min_length=1, max_length=2000, description="a passage copied from the current page")


class NoArgs(BaseModel):
    pass


BROWSER_TOOLS: list[ToolSpec] = [
    ToolSpec(name="search", description="Search and list the results.", args_model=SearchArgs),
    ToolSpec(name="load_page", description="Open result k of the latest search; shows its first screen.",
             args_model=LoadPageArgs),
    ToolSpec(name="scroll_down", description="Show the next screen of the open page.", args_model=NoArgs),
    ToolSpec(name="scroll_up", description="Show the previous screen of the open page.", args_model=NoArgs),
    ToolSpec(name="go_back", description="Return to the previous page or result list.", args_model=NoArgs),
    ToolSpec(name="quote", description="Keep a passage of the open page as evidence for the answer.",
             args_model=QuoteArgs),
    ToolSpec(name="merge_quotes", description="Merge the kept quotes of each page into one.", args_model=NoArgs),
    ToolSpec(name="finish", description="Stop browsing; returns the kept quotes.", args_model=NoArgs),
]  # fmt: skip


async def call_browser(browser: Browser, tool: str, args: dict[str, Any]) -> ToolResult:
    """Run one action. An unknown tool or invalid arguments raise (a ToolError); an action that cannot be done here
    (no page open, blocked address, fetch failure) comes back as ``ok=False`` with the reason, so one bad step
    does not end the run."""
    spec = find_tool(BROWSER_TOOLS, tool)
    parsed = spec.validate_args(args)
    start = time.perf_counter()
    try:
        if isinstance(parsed, SearchArgs):
            observation = await browser.search(parsed.query)
        elif isinstance(parsed, LoadPageArgs):
            observation = await browser.load_page(parsed.k)
        elif isinstance(parsed, QuoteArgs):
            observation = await browser.quote(parsed.text)
        else:
            observation = await getattr(browser, tool)()
    except PonderError as exc:
        return ToolResult(tool=tool, ok=False, error=str(exc), seconds=time.perf_counter() - start)
    output: dict[str, Any] = {"observation": observation}
    if tool == "finish":
        output["quotes"] = [q.model_dump() for q in browser.state.quotes]
    return ToolResult(tool=tool, ok=True, output=output, seconds=time.perf_counter() - start)
