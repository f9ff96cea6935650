"""The local index on SQLite FTS5: BM25 ranking and snippets are built into SQLite."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from ponder.errors import ConfigError
from ponder.search._index import check_document, check_k, not_found
from ponder.search._protocols import Document, Hit
from ponder.search._text import candidates, exact_first, query_terms

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs(id INTEGER PRIMARY KEY, doc_id TEXT UNIQUE NOT NULL, title TEXT, url TEXT,
                                text TEXT NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(title, text, content='docs', content_rowid='id',
                                                   tokenize='porter unicode61 remove_diacritics 2');
"""


class SqliteIndex:
    """A :class:`~ponder.search.DocumentIndex` in one SQLite file (WAL mode; one writer, many readers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                raise ConfigError(
                    f"cannot open the index at {self.path}: {exc}", hint="check PONDER_SEARCH__INDEX_DIR"
                ) from exc
            self._conn = conn
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            with self._lock:
                return fn(self._connect())

        return await anyio.to_thread.run_sync(call)

    async def search(self, query: str, k: int = 10) -> list[Hit]:
        k = check_k(k)
        terms = query_terms(query)
        match = " OR ".join(f'"{t}"' for t in terms)

        def run(conn: sqlite3.Connection) -> list[Hit]:
            rows = conn.execute(
                "SELECT d.doc_id, d.title, d.url, snippet(fts, 1, '**', '**', '…', 24), -bm25(fts, 2.0, 1.0), d.text"
                " FROM fts JOIN docs d ON d.id = fts.rowid WHERE fts MATCH ? ORDER BY bm25(fts, 2.0, 1.0) LIMIT ?",
                (match, candidates(k)),
            ).fetchall()
            found = [
                (Hit(doc_id=r[0], title=r[1] or "", url=r[2], snippet=r[3] or "", score=r[4]), r[1] or "", r[5])
                for r in rows
            ]
            return exact_first(found, terms, k)

        return await self._run(run)

    async def open(self, ref: str) -> Document:
        def run(conn: sqlite3.Connection) -> Document:
            row = conn.execute("SELECT doc_id, title, url, text FROM docs WHERE doc_id = ?", (ref,)).fetchone()
            if row is None:
                raise not_found(ref)
            return Document(doc_id=row[0], title=row[1] or "", url=row[2], text=row[3])

        return await self._run(run)

    async def add(self, docs: Iterable[Document]) -> int:
        checked = [check_document(d) for d in docs]

        def run(conn: sqlite3.Connection) -> int:
            with conn:
                for d in checked:
                    _delete(conn, d.doc_id)
                    cur = conn.execute(
                        "INSERT INTO docs(doc_id, title, url, text) VALUES (?, ?, ?, ?)",
                        (d.doc_id, d.title, d.url, d.text),
                    )
                    conn.execute(
                        "INSERT INTO fts(rowid, title, text) VALUES (?, ?, ?)", (cur.lastrowid, d.title, d.text)
                    )
            return len(checked)

        return await self._run(run)

    async def delete(self, doc_id: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            with conn:
                return _delete(conn, doc_id)

        return await self._run(run)

    async def delete_prefix(self, prefix: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            ids = [
                r[0] for r in conn.execute("SELECT doc_id FROM docs WHERE doc_id LIKE ? ESCAPE '\\'", (escaped + "%",))
            ]
            with conn:
                return sum(_delete(conn, i) for i in ids)

        return await self._run(run)

    async def count(self) -> int:
        return await self._run(lambda conn: int(conn.execute("SELECT count(*) FROM docs").fetchone()[0]))

    async def close(self) -> None:
        def run() -> None:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await anyio.to_thread.run_sync(run)


def _delete(conn: sqlite3.Connection, doc_id: str) -> bool:
    row = conn.execute("SELECT id, title, text FROM docs WHERE doc_id = ?", (doc_id,)).fetchone()
    if row is None:
        return False
    conn.execute("INSERT INTO fts(fts, rowid, title, text) VALUES ('delete', ?, ?, ?)", (row[0], row[1], row[2]))
    conn.execute("DELETE FROM docs WHERE id = ?", (row[0],))
    return True
