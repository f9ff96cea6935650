"""Search, browsing and knowledge: a local index, web backends, WebCPM-style browsing, a triple knowledge base.

The engines (tantivy or SQLite FTS5), the dense model (sentence-transformers) and the browser load when first used.
"""

from typing import TYPE_CHECKING, Any

from ponder.search._protocols import Document, EvidenceItem, Hit, KnowledgeBase, SearchEngine, Support, Triple

if TYPE_CHECKING:
    from ponder.netguard import Resolver, SystemResolver, is_public
    from ponder.search._browser import Browser, BrowserState, Quote, split_screens
    from ponder.search._browser_tools import BROWSER_TOOLS, call_browser
    from ponder.search._default import BuildReport, build_default, load_wordnet
    from ponder.search._dense import DenseIndex, Embedder, HybridSearch, MiniLMEmbedder, rrf
    from ponder.search._factory import (
        build_browser,
        build_index,
        build_kb,
        build_lemmatizer,
        build_local_search,
        build_search,
        open_index,
    )
    from ponder.search._fetch import Fetcher, Page
    from ponder.search._index import DocumentIndex, EngineName
    from ponder.search._ingest import path_documents
    from ponder.search._kb import SqliteKnowledgeBase
    from ponder.search._kb_io import read_triples
    from ponder.search._web import BraveSearch, SearxngSearch, build_web_search
    from ponder.search._wordnet import Morphy, Synset, iter_synsets, synset_closure

_LAZY = {
    "BROWSER_TOOLS": "ponder.search._browser_tools",
    "BraveSearch": "ponder.search._web",
    "Browser": "ponder.search._browser",
    "BrowserState": "ponder.search._browser",
    "Fetcher": "ponder.search._fetch",
    "Page": "ponder.search._fetch",
    "Quote": "ponder.search._browser",
    "Resolver": "ponder.netguard",
    "SearxngSearch": "ponder.search._web",
    "SystemResolver": "ponder.netguard",
    "build_browser": "ponder.search._factory",
    "build_web_search": "ponder.search._web",
    "call_browser": "ponder.search._browser_tools",
    "is_public": "ponder.netguard",
    "split_screens": "ponder.search._browser",
    "BuildReport": "ponder.search._default",
    "DenseIndex": "ponder.search._dense",
    "DocumentIndex": "ponder.search._index",
    "Embedder": "ponder.search._dense",
    "EngineName": "ponder.search._index",
    "HybridSearch": "ponder.search._dense",
    "MiniLMEmbedder": "ponder.search._dense",
    "Morphy": "ponder.search._wordnet",
    "SqliteKnowledgeBase": "ponder.search._kb",
    "Synset": "ponder.search._wordnet",
    "build_default": "ponder.search._default",
    "build_index": "ponder.search._factory",
    "build_kb": "ponder.search._factory",
    "build_lemmatizer": "ponder.search._factory",
    "build_local_search": "ponder.search._factory",
    "build_search": "ponder.search._factory",
    "iter_synsets": "ponder.search._wordnet",
    "load_wordnet": "ponder.search._default",
    "open_index": "ponder.search._factory",
    "path_documents": "ponder.search._ingest",
    "read_triples": "ponder.search._kb_io",
    "rrf": "ponder.search._dense",
    "synset_closure": "ponder.search._wordnet",
}


def __getattr__(name: str) -> Any:
    """Import the engines, the knowledge base and the browser on first use, so ``import ponder.search`` is cheap."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ponder.search' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BROWSER_TOOLS",
    "BraveSearch",
    "Browser",
    "BrowserState",
    "BuildReport",
    "DenseIndex",
    "Document",
    "DocumentIndex",
    "Embedder",
    "EngineName",
    "EvidenceItem",
    "Fetcher",
    "Hit",
    "HybridSearch",
    "KnowledgeBase",
    "MiniLMEmbedder",
    "Morphy",
    "Page",
    "Quote",
    "Resolver",
    "SearchEngine",
    "SearxngSearch",
    "SqliteKnowledgeBase",
    "Support",
    "Synset",
    "SystemResolver",
    "Triple",
    "build_browser",
    "build_default",
    "build_index",
    "build_kb",
    "build_lemmatizer",
    "build_local_search",
    "build_search",
    "build_web_search",
    "call_browser",
    "is_public",
    "iter_synsets",
    "load_wordnet",
    "open_index",
    "path_documents",
    "read_triples",
    "rrf",
    "split_screens",
    "synset_closure",
]
