"""Search, browsing and knowledge: a local index, web backends, WebCPM-style browsing, a triple knowledge base."""

from ponder.search._protocols import Document, EvidenceItem, Hit, KnowledgeBase, SearchEngine, Support, Triple

__all__ = ["Document", "EvidenceItem", "Hit", "KnowledgeBase", "SearchEngine", "Support", "Triple"]
