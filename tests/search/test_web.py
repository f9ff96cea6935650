"""SearxNG and Brave backends over httpx.MockTransport: requests, parsing, errors, configuration."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from ponder.config import SearchSettings
from ponder.errors import ConfigError, InputError, SearchError
from ponder.search import BraveSearch, SearchEngine, SearxngSearch, build_search, build_web_search

SEARX = {
    "query": "capital of france",
    "results": [
        {"url": "https://en.wikipedia.org/wiki/Paris", "title": "Paris", "content": "Paris is the capital of France.",
         "score": 9.5},
        {"url": "https://example.org/france", "title": "France", "content": "France, in Western Europe."},
        {"title": "no url: skipped"},
    ],
}  # fmt: skip
BRAVE = {
    "web": {"results": [{"url": "https://en.wikipedia.org/wiki/Paris", "title": "Paris", "description": "Capital"}]}
}


def client(handler: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_searxng_request_and_parse() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=SEARX)

    settings = SearchSettings(backend="searxng", searxng_url="http://searx.internal:8080/")
    engine = build_web_search(settings, client(handler))
    assert isinstance(engine, SearxngSearch) and isinstance(engine, SearchEngine)
    hits = await engine.search("capital of France", k=5)
    assert [h.title for h in hits] == ["Paris", "France"]
    assert hits[0].score == 9.5 and hits[0].url == hits[0].doc_id == "https://en.wikipedia.org/wiki/Paris"
    assert seen[0].url.path == "/search"
    assert dict(seen[0].url.params) == {"q": "capital of France", "format": "json"}


async def test_brave_request_and_parse() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=BRAVE)

    settings = SearchSettings(backend="brave", brave_api_key=SecretStr("k-123"))
    engine = build_web_search(settings, client(handler))
    assert isinstance(engine, BraveSearch)
    hits = await engine.search("capital of France", k=3)
    assert hits[0].snippet == "Capital"
    assert seen[0].headers["x-subscription-token"] == "k-123"
    assert seen[0].url.params["count"] == "3"


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [(429, SearchError, "rate-limited"), (401, ConfigError, "credentials"), (503, SearchError, "HTTP 503")],
)
async def test_http_errors(status: int, error: type[Exception], message: str) -> None:
    settings = SearchSettings(backend="brave", brave_api_key=SecretStr("k"))
    engine = build_web_search(settings, client(lambda r: httpx.Response(status, text="no")))
    with pytest.raises(error, match=message) as info:
        await engine.search("paris")
    if status in (429, 503):
        assert info.value.retryable  # type: ignore[attr-defined]


async def test_bad_payloads() -> None:
    settings = SearchSettings(backend="searxng", searxng_url="http://searx.internal")
    engine = build_web_search(settings, client(lambda r: httpx.Response(200, text="<html>not json</html>")))
    with pytest.raises(SearchError, match="did not answer JSON"):
        await engine.search("paris")
    engine = build_web_search(settings, client(lambda r: httpx.Response(200, content=json.dumps({"x": 1}))))
    with pytest.raises(SearchError, match="results"):
        await engine.search("paris")


async def test_connection_failure_is_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    engine = build_web_search(SearchSettings(backend="searxng", searxng_url="http://searx.internal"), client(handler))
    with pytest.raises(SearchError, match="unreachable") as info:
        await engine.search("paris")
    assert info.value.retryable


async def test_missing_configuration_and_bad_queries() -> None:
    never = client(lambda r: pytest.fail("no request may be sent"))
    with pytest.raises(ConfigError, match="SEARXNG_URL"):
        await build_web_search(SearchSettings(backend="searxng"), never).search("paris")
    with pytest.raises(ConfigError, match="BRAVE_API_KEY"):
        await build_web_search(SearchSettings(backend="brave"), never).search("paris")
    engine = build_web_search(SearchSettings(backend="brave", brave_api_key=SecretStr("k")), never)
    with pytest.raises(InputError, match="empty"):
        await engine.search("  ")
    with pytest.raises(InputError, match="characters long"):
        await engine.search("paris " * 1000)


def test_backend_is_chosen_by_configuration(tmp_path: Any) -> None:
    assert isinstance(build_search(SearchSettings(backend="searxng", searxng_url="http://s")), SearxngSearch)
    assert isinstance(build_search(SearchSettings(backend="brave")), BraveSearch)
    local = build_search(SearchSettings(index_dir=tmp_path))
    assert type(local).__name__ == "TantivyIndex"
    assert type(build_search(SearchSettings(index_dir=tmp_path, engine="sqlite"))).__name__ == "SqliteIndex"
