"""Web search backends behind :class:`~ponder.search.SearchEngine`: SearxNG's JSON API and the Brave Search API.

Request building and response parsing are pure functions (tested without a network); the caller may inject the
``httpx.AsyncClient`` (tests pass one over ``httpx.MockTransport``). ``open(url)`` fetches the page through the
SSRF-guarded fetcher.
"""

from __future__ import annotations

from typing import Any

import httpx

from ponder.config import SearchSettings
from ponder.errors import ConfigError, FetchError, SearchError
from ponder.search._index import check_k
from ponder.search._protocols import Document, Hit
from ponder.search._text import MAX_QUERY_CHARS, query_terms

BRAVE_URL = "https://api.search.brave.com/res/v1/web/search"


def _check_query(query: str) -> str:
    query_terms(query)  # validates: not empty, not huge, has words
    return query.strip()[:MAX_QUERY_CHARS]


def parse_searxng(payload: Any, k: int) -> list[Hit]:
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list):
        raise SearchError("SearxNG answered without a 'results' list", hint="check that its JSON format is enabled")
    hits = []
    for i, r in enumerate(results[:k]):
        if isinstance(r, dict) and isinstance(r.get("url"), str):
            score = r.get("score")
            hits.append(
                Hit(
                    doc_id=r["url"], url=r["url"], title=str(r.get("title") or ""),
                    snippet=str(r.get("content") or ""),
                    score=float(score) if isinstance(score, int | float) else 1.0 / (i + 1),
                )
            )  # fmt: skip
    return hits


def parse_brave(payload: Any, k: int) -> list[Hit]:
    web = payload.get("web") if isinstance(payload, dict) else None
    results = web.get("results") if isinstance(web, dict) else []
    if not isinstance(results, list):
        raise SearchError("Brave answered with an unexpected shape", hint="see the Brave Search API reference")
    return [
        Hit(doc_id=r["url"], url=r["url"], title=str(r.get("title") or ""), snippet=str(r.get("description") or ""),
            score=1.0 / (i + 1))
        for i, r in enumerate(results[:k]) if isinstance(r, dict) and isinstance(r.get("url"), str)
    ]  # fmt: skip


def _raise_for(resp: httpx.Response, name: str) -> None:
    if resp.status_code == 429:
        raise SearchError(f"{name} rate-limited the request (HTTP 429)", hint="wait and retry", retryable=True)
    if resp.status_code in (401, 403):
        raise ConfigError(f"{name} refused the credentials (HTTP {resp.status_code})", hint="check the API key")
    if resp.status_code >= 400:
        raise SearchError(f"{name} answered HTTP {resp.status_code}", retryable=resp.status_code >= 500)


class _WebSearch:
    name = "web"

    async def search(self, query: str, k: int = 10) -> list[Hit]:
        raise NotImplementedError

    def __init__(self, settings: SearchSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._client = client

    async def _get(self, url: str, params: dict[str, str | int], headers: dict[str, str]) -> Any:
        client = self._client or httpx.AsyncClient(timeout=self.settings.fetch_timeout_s)
        try:
            resp = await client.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise SearchError(f"{self.name} is unreachable: {exc}", retryable=True) from exc
        finally:
            if self._client is None:
                await client.aclose()
        _raise_for(resp, self.name)
        try:
            return resp.json()
        except ValueError as exc:
            raise SearchError(f"{self.name} did not answer JSON") from exc

    async def open(self, ref: str) -> Document:
        from ponder.search._fetch import Fetcher

        fetcher = Fetcher(self.settings)
        page = await fetcher.fetch(ref)
        if not page.text.strip():
            raise FetchError(f"{ref} has no readable text")
        return Document(doc_id=page.url, url=page.url, title=page.title, text=page.text)


class SearxngSearch(_WebSearch):
    """A SearxNG instance's JSON API (``format=json`` must be enabled in its settings)."""

    name = "SearxNG"

    async def search(self, query: str, k: int = 10) -> list[Hit]:
        k = check_k(k)
        base = self.settings.searxng_url
        if not base:
            raise ConfigError("no SearxNG URL is configured", hint="set PONDER_SEARCH__SEARXNG_URL")
        payload = await self._get(base.rstrip("/") + "/search", {"q": _check_query(query), "format": "json"}, {})
        return parse_searxng(payload, k)


class BraveSearch(_WebSearch):
    """The Brave Search API (needs an API key)."""

    name = "Brave Search"

    async def search(self, query: str, k: int = 10) -> list[Hit]:
        k = check_k(k)
        key = self.settings.brave_api_key
        if key is None:
            raise ConfigError("no Brave Search API key is configured", hint="set PONDER_SEARCH__BRAVE_API_KEY")
        headers = {"Accept": "application/json", "X-Subscription-Token": key.get_secret_value()}
        payload = await self._get(BRAVE_URL, {"q": _check_query(query), "count": min(k, 20)}, headers)
        return parse_brave(payload, k)


def build_web_search(settings: SearchSettings, client: httpx.AsyncClient | None = None) -> _WebSearch:
    if settings.backend == "searxng":
        return SearxngSearch(settings, client)
    if settings.backend == "brave":
        return BraveSearch(settings, client)
    raise ConfigError(f"{settings.backend!r} is not a web backend", hint="use 'searxng' or 'brave'")
