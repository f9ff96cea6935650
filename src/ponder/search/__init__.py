"""Search, browsing and knowledge: a local index, web backends, WebCPM-style browsing, a triple knowledge base.

The engines (tantivy or SQLite FTS5), the dense model (sentence-transformers) and the browser load when first used.
"""

from ponder.search._default import BuildReport, build_default, load_wordnet
from ponder.search._dense import DenseIndex, Embedder, HybridSearch, MiniLMEmbedder, rrf
from ponder.search._factory import build_index, build_kb, build_lemmatizer, build_local_search, build_search
from ponder.search._index import DocumentIndex, EngineName, open_index
from ponder.search._ingest import path_documents
from ponder.search._kb import SqliteKnowledgeBase
from ponder.search._kb_io import read_triples
from ponder.search._protocols import Document, EvidenceItem, Hit, KnowledgeBase, SearchEngine, Support, Triple
from ponder.search._wordnet import Morphy, Synset, iter_synsets, synset_closure

__all__ = [
    "BuildReport",
    "DenseIndex",
    "Document",
    "DocumentIndex",
    "Embedder",
    "EngineName",
    "EvidenceItem",
    "Hit",
    "HybridSearch",
    "KnowledgeBase",
    "MiniLMEmbedder",
    "Morphy",
    "SearchEngine",
    "SqliteKnowledgeBase",
    "Support",
    "Synset",
    "Triple",
    "build_default",
    "build_index",
    "build_kb",
    "build_lemmatizer",
    "build_local_search",
    "build_search",
    "iter_synsets",
    "load_wordnet",
    "open_index",
    "path_documents",
    "read_triples",
    "rrf",
    "synset_closure",
]
