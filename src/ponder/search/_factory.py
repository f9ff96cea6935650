"""Build the configured search engine and knowledge base from :class:`~ponder.config.SearchSettings`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ponder.config import SearchSettings
from ponder.errors import ConfigError, InputError
from ponder.search._index import DocumentIndex, EngineName
from ponder.search._kb import SqliteKnowledgeBase
from ponder.search._protocols import SearchEngine
from ponder.search._text import Lemmatizer
from ponder.search._wordnet import Morphy

if TYPE_CHECKING:
    from ponder.netguard import Resolver
    from ponder.search._browser import Browser, BrowserState


def build_lemmatizer(settings: SearchSettings) -> Lemmatizer | None:
    """WordNet's morphy where WordNet is installed; None (plain English singulars) elsewhere."""
    try:
        return Morphy.from_dir(settings.wordnet_dir)
    except ConfigError:
        return None


def open_index(index_dir: Path, engine: EngineName = "tantivy") -> DocumentIndex:
    """The local index stored under ``index_dir`` (created when absent) with the chosen engine."""
    if engine == "sqlite":
        from ponder.search._sqlite_index import SqliteIndex

        return SqliteIndex(index_dir / "fts5.sqlite")
    if engine == "tantivy":
        from ponder.search._tantivy_index import TantivyIndex

        return TantivyIndex(index_dir / "tantivy")
    raise InputError(f"unknown index engine {engine!r}", hint="use 'tantivy' or 'sqlite'")


def build_index(settings: SearchSettings) -> DocumentIndex:
    """The local BM25 index under ``settings.index_dir``."""
    return open_index(settings.index_dir, settings.engine)


def build_local_search(settings: SearchSettings, index: DocumentIndex | None = None) -> SearchEngine:
    """The local index, hybrid with dense retrieval when ``settings.dense``."""
    keyword = index or build_index(settings)
    if not settings.dense:
        return keyword
    from ponder.search._dense import DenseIndex, HybridSearch, MiniLMEmbedder

    return HybridSearch(keyword, DenseIndex(settings.index_dir / "dense.sqlite", MiniLMEmbedder()))


def build_search(settings: SearchSettings) -> SearchEngine:
    """The configured search backend: the local index (default), SearxNG or Brave."""
    if settings.backend == "local":
        return build_local_search(settings)
    from ponder.search._web import build_web_search

    return build_web_search(settings)


def build_browser(
    settings: SearchSettings,
    engine: SearchEngine | None = None,
    *,
    resolver: Resolver | None = None,
    state: BrowserState | None = None,
) -> Browser:
    """A WebCPM-style browser over ``engine`` (the configured backend by default); http(s) pages are fetched
    through the SSRF guard."""
    from ponder.search._browser import Browser
    from ponder.search._fetch import Fetcher

    return Browser(
        engine or build_search(settings),
        Fetcher(settings, resolver=resolver),
        screen_chars=settings.screen_chars,
        state=state,
    )


def build_kb(settings: SearchSettings, *, passages: SearchEngine | None = None) -> SqliteKnowledgeBase:
    """The knowledge base at ``settings.kb_path``; WordNet glosses of the local index count as passages.

    Pass ``passages`` to use another engine for passage evidence; the local index is used by default.
    """
    embedder = None
    if settings.dense:
        from ponder.search._dense import MiniLMEmbedder

        embedder = MiniLMEmbedder()
    return SqliteKnowledgeBase(
        settings.kb_path,
        lemmatizer=build_lemmatizer(settings),
        passages=passages if passages is not None else build_index(settings),
        embedder=embedder,
    )
