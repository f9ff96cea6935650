"""The local index on tantivy (a Rust Lucene-like engine): BM25 with block-max pruning, English stemming."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import tantivy

from ponder.errors import ConfigError
from ponder.search._index import check_document, check_k, not_found
from ponder.search._protocols import Document, Hit
from ponder.search._text import candidates, exact_first, query_terms

T = TypeVar("T")
_WRITER_HEAP = 64_000_000
_SNIPPET_CHARS = 200


def _schema() -> tantivy.Schema:
    b = tantivy.SchemaBuilder()
    b.add_text_field("doc_id", stored=True, tokenizer_name="raw")
    b.add_text_field("title", stored=True, tokenizer_name="en_stem")
    b.add_text_field("url", stored=True, tokenizer_name="raw", index_option="basic")
    b.add_text_field("text", stored=True, tokenizer_name="en_stem")
    return b.build()


def _mark(snippet: Any) -> str:
    """The snippet's fragment with the matched terms wrapped in ``**``."""
    text: str = snippet.fragment()
    out, pos = [], 0
    for r in sorted(snippet.highlighted(), key=lambda r: r.start):
        out += [text[pos : r.start], "**", text[r.start : r.end], "**"]
        pos = r.end
    out.append(text[pos:])
    return "".join(out)


class TantivyIndex:
    """A :class:`~ponder.search.DocumentIndex` in a tantivy directory (one writer at a time, readers reload)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._index: tantivy.Index | None = None
        self._schema = _schema()

    def _open(self) -> tantivy.Index:
        if self._index is None:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                self._index = tantivy.Index(self._schema, path=str(self.path), reuse=True)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"cannot open the index at {self.path}: {exc}", hint="check PONDER_SEARCH__INDEX_DIR"
                ) from exc
        return self._index

    async def _run(self, fn: Callable[[tantivy.Index], T]) -> T:
        def call() -> T:
            with self._lock:
                return fn(self._open())

        return await anyio.to_thread.run_sync(call)

    def _write(self, index: tantivy.Index, body: Callable[[Any], T]) -> T:
        writer = index.writer(_WRITER_HEAP, 1)
        try:
            result = body(writer)
            writer.commit()
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.wait_merging_threads()
        index.reload()
        return result

    async def search(self, query: str, k: int = 10) -> list[Hit]:
        k = check_k(k)
        terms = query_terms(query)
        text = " ".join(f'"{t}"' for t in terms)  # quoted: plain words, never query syntax

        def run(index: tantivy.Index) -> list[Hit]:
            q = index.parse_query(text, ["title", "text"], field_boosts={"title": 2.0})
            searcher = index.searcher()
            result = searcher.search(q, candidates(k), count=False)
            if not result.hits:
                return []
            gen = tantivy.SnippetGenerator.create(searcher, q, self._schema, "text")
            gen.set_max_num_chars(_SNIPPET_CHARS)
            found = []
            for score, address in result.hits:
                doc = searcher.doc(address)
                title = doc.get_first("title") or ""
                hit = Hit(
                    doc_id=doc.get_first("doc_id"),
                    title=title,
                    url=doc.get_first("url") or None,
                    snippet=_mark(gen.snippet_from_doc(doc)),
                    score=float(score),
                )
                found.append((hit, title, doc.get_first("text") or ""))
            return exact_first(found, terms, k)

        return await self._run(run)

    async def open(self, ref: str) -> Document:
        def run(index: tantivy.Index) -> Document:
            searcher = index.searcher()
            q = tantivy.Query.term_query(self._schema, "doc_id", ref)
            hits = searcher.search(q, 1, count=False).hits
            if not hits:
                raise not_found(ref)
            doc = searcher.doc(hits[0][1])
            return Document(
                doc_id=ref, title=doc.get_first("title") or "", url=doc.get_first("url") or None,
                text=doc.get_first("text") or "",
            )  # fmt: skip

        return await self._run(run)

    async def add(self, docs: Iterable[Document]) -> int:
        checked = [check_document(d) for d in docs]

        def body(writer: Any) -> int:
            for d in checked:
                writer.delete_documents_by_term("doc_id", d.doc_id)
                writer.add_document(tantivy.Document(doc_id=d.doc_id, title=d.title, url=d.url or "", text=d.text))
            return len(checked)

        return await self._run(lambda index: self._write(index, body))

    async def delete(self, doc_id: str) -> bool:
        def run(index: tantivy.Index) -> bool:
            q = tantivy.Query.term_query(self._schema, "doc_id", doc_id)
            if index.searcher().search(q, 1).hits == []:
                return False
            self._write(index, lambda w: w.delete_documents_by_term("doc_id", doc_id))
            return True

        return await self._run(run)

    async def delete_prefix(self, prefix: str) -> int:
        def run(index: tantivy.Index) -> int:
            searcher = index.searcher()
            terms = [str(t) for t, _ in searcher.terms_with_prefix("doc_id", prefix)]
            # the term dictionary keeps deleted ids until segments merge: keep only live ones
            live = (len(searcher.search(tantivy.Query.term_query(self._schema, "doc_id", t), 1).hits) for t in terms)
            ids = [t for t, n in zip(terms, live, strict=True) if n]
            if ids:
                self._write(index, lambda w: [w.delete_documents_by_term("doc_id", i) for i in ids])
            return len(ids)

        return await self._run(run)

    async def count(self) -> int:
        return await self._run(lambda index: int(index.searcher().num_docs))

    async def close(self) -> None:
        def run() -> None:
            with self._lock:
                self._index = None

        await anyio.to_thread.run_sync(run)
