"""The search seams: a search engine (hits for a query, documents by id) and a knowledge base of triples."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field


class Hit(BaseModel):
    doc_id: str
    title: str = ""
    url: str | None = None
    snippet: str = ""
    score: float = 0.0


class Document(BaseModel):
    doc_id: str
    title: str = ""
    url: str | None = None
    text: str


class Triple(BaseModel):
    subject: str
    relation: str
    object: str


class EvidenceItem(BaseModel):
    """One piece of knowledge bearing on a triple: a stored triple or a passage."""

    text: str
    source: str
    score: float = Field(ge=0.0, le=1.0)
    stance: str = "supports"  # "supports" | "contradicts" | "related"
    triple: Triple | None = None


class Support(BaseModel):
    """How well the knowledge backs a triple: ``score`` in [0, 1] plus the evidence behind it."""

    score: float = Field(ge=0.0, le=1.0)
    evidence: list[EvidenceItem] = Field(default_factory=list)

    @property
    def supported(self) -> bool:
        return self.score >= 0.5


@runtime_checkable
class SearchEngine(Protocol):
    async def search(self, query: str, k: int = 10) -> list[Hit]: ...

    async def open(self, ref: str) -> Document:
        """A document by id or URL."""
        ...


@runtime_checkable
class KnowledgeBase(Protocol):
    async def support(self, subject: str, relation: str, obj: str) -> Support: ...
