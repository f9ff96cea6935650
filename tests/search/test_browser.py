"""The browser's actions against a real HTTP server on loopback (allowed by this test's configuration)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ponder.config import SearchSettings
from ponder.errors import FetchError, ToolArgumentsInvalid, UnknownTool
from ponder.search import (
    BROWSER_TOOLS,
    Browser,
    BrowserState,
    Document,
    DocumentIndex,
    Fetcher,
    call_browser,
    open_index,
    split_screens,
)

from ._server import _Server, serve


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[str, _Server]]:
    with serve() as s:
        yield s


@pytest.fixture
def settings() -> SearchSettings:
    return SearchSettings(allow_private=True, fetch_timeout_s=1.0, max_page_bytes=100_000, screen_chars=400)


@pytest.fixture
async def engine(tmp_path: Path, site: tuple[str, _Server]) -> AsyncIterator[DocumentIndex]:
    base = site[0]
    ix = open_index(tmp_path / "ix", "tantivy")
    await ix.add(
        [
            Document(doc_id="volcanoes", title="Volcanoes", url=f"{base}/volcanoes.html",
                     text="volcano eruptions lava magma"),
            Document(doc_id="glaciers", title="Glaciers", url=f"{base}/glaciers.html", text="glacier ice eruptions"),
            Document(doc_id="local-note", title="Local note", text="A note kept only in the local index about lava."),
        ]
    )  # fmt: skip
    yield ix
    await ix.close()


@pytest.fixture
def browser(engine: DocumentIndex, settings: SearchSettings) -> Browser:
    return Browser(engine, Fetcher(settings), screen_chars=settings.screen_chars)


async def act(browser: Browser, tool: str, **args: object) -> str:
    result = await call_browser(browser, tool, dict(args))
    assert result.ok, result.error
    return str(result.output["observation"])


async def test_all_actions_on_a_real_site(browser: Browser) -> None:
    results = await act(browser, "search", query="volcano eruptions")
    assert "[1] Volcanoes" in results and "[2] Glaciers" in results
    first = await act(browser, "load_page", k=1)
    assert first.startswith("Page: Volcanoes") and "screen 1 of" in first
    n_screens = int(first.split("screen 1 of ")[1].split()[0])
    assert n_screens >= 3
    assert "Volcanoes are openings" in first and "TRACKING-CODE" not in first
    second = await act(browser, "scroll_down")
    assert "screen 2 of" in second and "Volcanoes are openings" not in second
    assert "screen 1 of" in await act(browser, "scroll_up")
    top = await call_browser(browser, "scroll_up", {})
    assert not top.ok and "top of the page" in (top.error or "")
    for _ in range(n_screens - 1):
        last = await act(browser, "scroll_down")
    assert f"screen {n_screens} of {n_screens}" in last
    bottom = await call_browser(browser, "scroll_down", {})
    assert not bottom.ok and "bottom" in (bottom.error or "")
    assert "Quoted (1" in await act(browser, "quote", text="Volcanic soils are among  the most FERTILE on Earth")
    await act(browser, "quote", text="known in Europe and North America as the Year Without a Summer")
    missing = await call_browser(browser, "quote", {"text": "Volcanoes are made of cheese"})
    assert not missing.ok and "not on the current page" in (missing.error or "")
    back = await act(browser, "go_back")
    assert back.startswith("Results for 'volcano eruptions'")
    glaciers = await act(browser, "load_page", k=2)
    assert "persistent body of dense ice" in glaciers
    await act(browser, "quote", text="Glaciers carve U-shaped valleys")
    await act(browser, "go_back")
    again = await act(browser, "load_page", k=1)
    assert "screen 1 of" in again
    assert "into 2" in await act(browser, "merge_quotes")
    done = await call_browser(browser, "finish", {})
    assert done.ok and browser.state.finished
    quotes = done.output["quotes"]
    assert [q["title"] for q in quotes] == ["Volcanoes - Earth Science Notes", "Glaciers"]
    assert "Year Without a Summer" in quotes[0]["text"] and "fertile" in quotes[0]["text"]


async def test_state_round_trips_through_json(
    browser: Browser, engine: DocumentIndex, settings: SearchSettings
) -> None:
    await act(browser, "search", query="volcano")
    await act(browser, "load_page", k=1)
    await act(browser, "scroll_down")
    saved = browser.state.model_dump_json()
    resumed = Browser(engine, Fetcher(settings), screen_chars=400, state=BrowserState.model_validate_json(saved))
    assert resumed.render() == browser.render()
    assert "screen 3 of" in await act(resumed, "scroll_down")
    assert (await act(resumed, "go_back")).startswith("Results for")


async def test_local_documents_open_without_fetching(browser: Browser, site: tuple[str, _Server]) -> None:
    before = len(site[1].requests)
    await act(browser, "search", query="note kept only in the local index")
    page = await act(browser, "load_page", k=1)
    assert "kept only in the local index" in page
    assert len(site[1].requests) == before


async def test_actions_out_of_order_fail_one_step(browser: Browser) -> None:
    for tool, args in [("load_page", {"k": 1}), ("scroll_down", {}), ("quote", {"text": "x"}), ("go_back", {})]:
        result = await call_browser(browser, tool, args)
        assert not result.ok and result.error
    await act(browser, "search", query="volcano")
    beyond = await call_browser(browser, "load_page", {"k": 9})
    assert not beyond.ok and "no result 9" in (beyond.error or "")


async def test_bad_tool_calls_raise(browser: Browser) -> None:
    with pytest.raises(UnknownTool):
        await call_browser(browser, "click", {})
    with pytest.raises(ToolArgumentsInvalid, match="k"):
        await call_browser(browser, "load_page", {"k": 0})
    with pytest.raises(ToolArgumentsInvalid, match="query"):
        await call_browser(browser, "search", {"query": ""})


def test_tool_specs_are_json_schema_functions() -> None:
    names = [s.name for s in BROWSER_TOOLS]
    assert names == ["search", "load_page", "scroll_down", "scroll_up", "go_back", "quote", "merge_quotes", "finish"]
    load = BROWSER_TOOLS[1].function_spec()["function"]
    assert load["parameters"]["properties"]["k"]["minimum"] == 1 and load["parameters"]["required"] == ["k"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/broken.html", "Geysers erupt when underground water is heated"),
        ("/latin1.html", "Der Ätna auf Sizilien"),
        ("/odd-charset.html", "Café crème on the crater rim"),
        ("/notes.txt", "pumice, which floats"),
        ("/redirect?to=/glaciers.html", "persistent body of dense ice"),
    ],
)
async def test_fetch_odd_pages(settings: SearchSettings, site: tuple[str, _Server], path: str, expected: str) -> None:
    page = await Fetcher(settings).fetch(site[0] + path)
    assert expected in page.text


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/image.png", "image/png, not a web page"),
        ("/huge.html", "pages over 100000 bytes are not read"),
        ("/huge-chunked.html", "larger than 100000 bytes"),
        ("/slow.html", "timed out"),
        ("/loop", "redirected more than"),
        ("/missing.html", "HTTP 404"),
    ],
)
async def test_fetch_failures(settings: SearchSettings, site: tuple[str, _Server], path: str, message: str) -> None:
    with pytest.raises(FetchError, match=message):
        await Fetcher(settings).fetch(site[0] + path)


@pytest.mark.parametrize("size", [100, 400, 1500])
def test_screens_are_bounded_and_lose_no_words(size: int) -> None:
    text = (Path(__file__).parent / "pages" / "volcanoes.html").read_text() * 3
    screens = split_screens(text, size)
    assert all(len(s) <= size for s in screens)
    assert " ".join(" ".join(screens).split()) == " ".join(text.split())


async def test_build_browser_uses_the_configured_engine(tmp_path: Path, site: tuple[str, _Server]) -> None:
    from ponder.search import build_browser

    settings = SearchSettings(index_dir=tmp_path / "index", allow_private=True, screen_chars=300)
    index = open_index(settings.index_dir, settings.engine)
    await index.add([Document(doc_id="g", title="Glaciers", url=f"{site[0]}/glaciers.html", text="glacier ice")])
    await index.close()
    browser = build_browser(settings)
    await act(browser, "search", query="glacier")
    assert "U-shaped valleys" in await act(browser, "load_page", k=1)
    assert browser.screen_chars == 300
