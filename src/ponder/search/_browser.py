"""A text browser with WebCPM's action space: search, load_page, scroll_down/up, go_back, quote, merge_quotes, finish.

Everything the browser knows lives in :class:`BrowserState`, a pydantic model: dump it to JSON between steps (or
across a crash) and hand it back to a new :class:`Browser` to go on where it stopped.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from ponder.errors import InputError
from ponder.search._fetch import Fetcher
from ponder.search._protocols import Hit, SearchEngine

MAX_QUOTES = 50
MAX_HISTORY = 50
MAX_QUOTE_CHARS = 2000


class Quote(BaseModel):
    text: str
    ref: str  # the page's URL or doc_id
    title: str = ""


class ResultsView(BaseModel):
    kind: Literal["results"] = "results"
    query: str
    hits: list[Hit]


class PageView(BaseModel):
    kind: Literal["page"] = "page"
    ref: str
    title: str = ""
    text: str
    screen: int = 0  # 0-based index of the screen shown


View = Annotated[ResultsView | PageView, Field(discriminator="kind")]


class BrowserState(BaseModel):
    """The whole browsing session: serialisable, so a run can pause and resume."""

    current: View | None = None
    history: list[View] = Field(default_factory=list)  # views to go back to, most recent last
    results: list[Hit] = Field(default_factory=list)  # the latest search's hits, the ones load_page(k) opens
    quotes: list[Quote] = Field(default_factory=list)
    finished: bool = False
    steps: int = 0


def split_screens(text: str, size: int) -> list[str]:
    """Cut text into screens of at most ``size`` characters, at paragraph, then sentence, then word ends."""
    text = text.strip()
    if not text:
        return [""]
    screens: list[str] = []
    while len(text) > size:
        window = text[:size]
        cut = max(window.rfind("\n\n"), window.rfind("\n"))
        if cut < size // 2:
            cut = max(window.rfind(". "), window.rfind("? "), window.rfind("! "))
            cut = cut + 1 if cut >= size // 2 else window.rfind(" ")
        if cut < size // 4:
            cut = size  # one long token: hard cut
        screens.append(text[:cut].strip())
        text = text[cut:].strip()
    screens.append(text)
    return screens


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def find_on_page(page: str, text: str) -> str | None:
    """The passage of ``page`` that ``text`` copies (ignoring case and runs of whitespace), as the page has it."""
    chars: list[str] = []
    index: list[int] = []  # position in ``page`` of each character of the normalised page
    for i, c in enumerate(page):
        if c.isspace():
            if chars and chars[-1] != " ":
                chars.append(" ")
                index.append(i)
        else:
            chars.append(c.lower())
            index.append(i)
    needle = _norm(text)
    at = "".join(chars).find(needle)
    if at < 0 or not needle:
        return None
    return page[index[at] : index[at + len(needle) - 1] + 1]


class Browser:
    """Drives a :class:`SearchEngine` (and, for http(s) hits, the SSRF-guarded :class:`Fetcher`)."""

    def __init__(
        self,
        engine: SearchEngine,
        fetcher: Fetcher | None = None,
        *,
        screen_chars: int = 1500,
        k: int = 10,
        state: BrowserState | None = None,
    ) -> None:
        if screen_chars < 100:
            raise InputError(f"screen_chars={screen_chars} is too small", hint="use at least 100 characters")
        self.engine = engine
        self.fetcher = fetcher
        self.screen_chars = screen_chars
        self.k = k
        self.state = state or BrowserState()

    def _go(self, view: ResultsView | PageView) -> None:
        if self.state.current is not None:
            self.state.history.append(self.state.current)
            del self.state.history[:-MAX_HISTORY]
        self.state.current = view
        self.state.steps += 1

    def _page(self) -> PageView:
        if not isinstance(self.state.current, PageView):
            raise InputError("no page is open", hint="search, then load_page(k) to open one of the results")
        return self.state.current

    def render(self) -> str:
        """What the agent sees now."""
        view = self.state.current
        if view is None:
            return "Nothing opened yet. Use search(query)."
        if isinstance(view, ResultsView):
            if not view.hits:
                return f"No results for {view.query!r}. Try other keywords."
            lines = [f"Results for {view.query!r}:"]
            for i, h in enumerate(view.hits, start=1):
                lines.append(f"[{i}] {h.title or h.doc_id} ({h.url or h.doc_id})\n    {h.snippet}")
            return "\n".join(lines)
        screens = split_screens(view.text, self.screen_chars)
        head = f"Page: {view.title or view.ref} ({view.ref}) — screen {view.screen + 1} of {len(screens)}"
        return f"{head}\n{screens[view.screen]}"

    async def search(self, query: str) -> str:
        hits = await self.engine.search(query, self.k)
        self.state.results = hits
        self._go(ResultsView(query=query, hits=hits))
        return self.render()

    async def load_page(self, k: int) -> str:
        """Open the k-th (1-based) hit of the latest search."""
        if not self.state.results:
            raise InputError("there are no search results to open", hint="search(query) first")
        if not 1 <= k <= len(self.state.results):
            raise InputError(f"there is no result {k}", hint=f"choose 1 to {len(self.state.results)}")
        hit = self.state.results[k - 1]
        if hit.url and hit.url.startswith(("http://", "https://")) and self.fetcher is not None:
            page = await self.fetcher.fetch(hit.url)
            view = PageView(ref=page.url, title=page.title or hit.title, text=page.text)
        else:
            doc = await self.engine.open(hit.doc_id)
            view = PageView(ref=doc.url or doc.doc_id, title=doc.title or hit.title, text=doc.text)
        self._go(view)
        return self.render()

    def _scroll(self, step: int) -> str:
        page = self._page()
        last = len(split_screens(page.text, self.screen_chars)) - 1
        target = page.screen + step
        if target < 0:
            raise InputError("already at the top of the page", hint="scroll_down, go_back or quote")
        if target > last:
            raise InputError("already at the bottom of the page", hint="scroll_up, go_back or quote")
        page.screen = target
        self.state.steps += 1
        return self.render()

    async def scroll_down(self) -> str:
        return self._scroll(1)

    async def scroll_up(self) -> str:
        return self._scroll(-1)

    async def go_back(self) -> str:
        if not self.state.history:
            raise InputError("there is nothing to go back to", hint="search(query) to start")
        self.state.current = self.state.history.pop()
        if isinstance(self.state.current, ResultsView):
            self.state.results = self.state.current.hits
        self.state.steps += 1
        return self.render()

    async def quote(self, text: str) -> str:
        """Keep a passage of the open page (it must be on the page; whitespace and case may differ)."""
        page = self._page()
        if not text.strip():
            raise InputError("the quote is empty", hint="copy a sentence from the page")
        if len(text) > MAX_QUOTE_CHARS:
            raise InputError(f"quotes are at most {MAX_QUOTE_CHARS} characters", hint="quote a shorter passage")
        passage = find_on_page(page.text, text)
        if passage is None:
            raise InputError("the quote is not on the current page", hint="copy the text exactly from the page")
        if len(self.state.quotes) >= MAX_QUOTES:
            raise InputError(f"already {MAX_QUOTES} quotes", hint="merge_quotes or finish")
        self.state.quotes.append(Quote(text=" ".join(passage.split()), ref=page.ref, title=page.title))
        self.state.steps += 1
        return f"Quoted ({len(self.state.quotes)} quotes so far)."

    async def merge_quotes(self) -> str:
        """Merge the quotes of each page into one, dropping repeats and quotes contained in others."""
        merged: dict[str, Quote] = {}
        for q in self.state.quotes:
            kept = merged.get(q.ref)
            if kept is None:
                merged[q.ref] = q.model_copy()
            elif _norm(q.text) not in _norm(kept.text):
                kept.text = q.text if _norm(kept.text) in _norm(q.text) else f"{kept.text} … {q.text}"
        before = len(self.state.quotes)
        self.state.quotes = list(merged.values())
        self.state.steps += 1
        return f"Merged {before} quotes into {len(self.state.quotes)}."

    async def finish(self) -> str:
        self.state.finished = True
        self.state.steps += 1
        if not self.state.quotes:
            return "Finished with no quotes."
        return "Finished. Quotes:\n" + "\n".join(f"- {q.text} [{q.title or q.ref}]" for q in self.state.quotes)
