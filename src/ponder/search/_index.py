"""The local document index seam, and the parts both engines (SQLite FTS5, tantivy) share."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, Protocol, runtime_checkable

from ponder.errors import InputError, NotFoundError
from ponder.search._protocols import Document, Hit

EngineName = Literal["tantivy", "sqlite"]
MAX_DOC_CHARS = 1_000_000


@runtime_checkable
class DocumentIndex(Protocol):
    """A persistent BM25 index: a :class:`~ponder.search.SearchEngine` that also adds and deletes documents."""

    async def search(self, query: str, k: int = 10) -> list[Hit]: ...

    async def open(self, ref: str) -> Document: ...

    async def add(self, docs: Iterable[Document]) -> int:
        """Add or replace (by ``doc_id``) documents; returns how many were written."""
        ...

    async def delete(self, doc_id: str) -> bool:
        """Remove one document; False when there was none with that id."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every document whose id starts with ``prefix`` (e.g. all of one ingested folder)."""
        ...

    async def count(self) -> int: ...

    async def close(self) -> None: ...


def check_k(k: int) -> int:
    if not 1 <= k <= 1000:
        raise InputError(f"k={k} is out of range", hint="ask for between 1 and 1000 hits")
    return k


def check_document(doc: Document) -> Document:
    if not doc.doc_id.strip():
        raise InputError("a document has an empty doc_id", hint="give every document a non-empty id")
    if len(doc.text) > MAX_DOC_CHARS:
        doc = doc.model_copy(update={"text": doc.text[:MAX_DOC_CHARS]})
    return doc


def not_found(ref: str) -> NotFoundError:
    return NotFoundError(f"no document with id {ref!r} in the local index", hint="use a doc_id from a search hit")


_MARK = re.compile(r"\*\*")


def strip_marks(snippet: str) -> str:
    return _MARK.sub("", snippet)
