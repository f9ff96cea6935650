"""The knowledge base: triples in SQLite, and how well they (and optional passages) support a claimed triple."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from ponder.errors import InputError
from ponder.search._dense import Embedder
from ponder.search._kb_store import (
    ROW_COLUMNS,
    Entity,
    Row,
    connect,
    insert_triples,
    matching_rows,
    resolve,
    rows_from,
    to_row,
)
from ponder.search._protocols import EvidenceItem, SearchEngine, Support, Triple
from ponder.search._relations import INVERSE, SYMMETRIC, TRANSITIVE, negated, relation_words
from ponder.search._text import Lemmatizer, phrase_key, words

T = TypeVar("T")
_SENTENCE_SPLIT = re.compile(r"(?<=[.;:!?])\s+|\n+")
_TITLE_SPLIT = re.compile(r"\s*[,;(]\s*")
MAX_PHRASE_CHARS = 300
STEP_DECAY = 0.95  # each extra step of a transitive chain (dog is_a canine is_a ... is_a animal) costs 5 %
RELATED_WEIGHT = 0.3  # evidence about the same pair under another relation: relevant, not support
PASSAGE_WEIGHT = 0.8  # a passage that names subject, relation and object: support, less sure than a triple
ANTONYM_CONTRA = 0.8


def _check_phrase(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"the {name} of the triple is empty", hint="give subject, relation and object as text")
    if len(value) > MAX_PHRASE_CHARS:
        raise InputError(
            f"the {name} of the triple is {len(value)} characters long; at most {MAX_PHRASE_CHARS} are accepted",
            hint="state the triple with short phrases",
        )
    return value


def _item(row: Row, score: float, stance: str, source: str | None = None) -> EvidenceItem:
    return EvidenceItem(
        text=row.text, source=source or row.source, score=round(max(0.0, min(1.0, score)), 4), stance=stance,
        triple=Triple(subject=row.subject, relation=row.relation, object=row.object),
    )  # fmt: skip


_STANCE_ORDER = {"supports": 0, "contradicts": 0, "related": 1}


def _rank(evidence: list[EvidenceItem], limit: int = 10) -> list[EvidenceItem]:
    """Supporting and contradicting items first, then related ones; best first; duplicates dropped."""
    seen: set[tuple[str, str]] = set()
    out = []
    for e in sorted(evidence, key=lambda e: (_STANCE_ORDER.get(e.stance, 2), -e.score)):
        if (e.text, e.stance) not in seen:
            seen.add((e.text, e.stance))
            out.append(e)
    return out[:limit]


class SqliteKnowledgeBase:
    """A :class:`~ponder.search.KnowledgeBase` of triples in one SQLite file.

    ``lemmatizer`` (WordNet's :class:`Morphy` by default where WordNet is installed) makes keys robust to plurals
    and inflection; ``passages`` lets text passages (e.g. WordNet glosses in the local index) count as evidence;
    ``embedder`` adds embedding similarity for triples no key matches.
    """

    def __init__(
        self,
        path: Path,
        *,
        lemmatizer: Lemmatizer | None = None,
        passages: SearchEngine | None = None,
        embedder: Embedder | None = None,
        fuzzy_threshold: float = 80.0,
        max_depth: int = 8,
    ) -> None:
        self.path = path
        self.lemmatizer = lemmatizer
        self.passages = passages
        self.embedder = embedder
        self.fuzzy_threshold = fuzzy_threshold
        self.max_depth = max_depth
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            with self._lock:
                if self._conn is None:
                    self._conn = connect(self.path)
                return fn(self._conn)

        return await anyio.to_thread.run_sync(call)

    async def add(self, triples: Iterable[Triple], *, source: str = "user", truth: bool = True) -> int:
        """Store triples (``truth=False`` stores them as known to be false); returns how many were new."""
        rows = [
            (_check_phrase("subject", t.subject), _check_phrase("relation", t.relation),
             _check_phrase("object", t.object), None, None, truth, source)
            for t in triples
        ]  # fmt: skip

        def run(conn: sqlite3.Connection) -> int:
            with conn:
                return insert_triples(conn, rows, self.lemmatizer)

        return await self._run(run)

    async def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the connection in a worker thread (bulk loaders use this)."""
        return await self._run(fn)

    async def count(self) -> int:
        return await self._run(lambda c: int(c.execute("SELECT count(*) FROM triples").fetchone()[0]))

    async def triples(self, subject: str, relation: str | None = None, limit: int = 50) -> list[Triple]:
        """What the knowledge base states about ``subject`` (optionally under one relation)."""
        _check_phrase("subject", subject)

        def run(conn: sqlite3.Connection) -> list[Triple]:
            keys = [phrase_key(subject, self.lemmatizer), phrase_key(subject, None)]
            sql = f"SELECT {ROW_COLUMNS} FROM triples WHERE s_key IN (?, ?)"
            args: list[object] = [*keys]
            if relation is not None:
                sql += " AND r_canon = ?"
                args.append(negated(relation)[0])
            rows = [to_row(r) for r in conn.execute(sql + " LIMIT ?", [*args, limit])]
            return [Triple(subject=r.subject, relation=r.relation, object=r.object) for r in rows]

        return await self._run(run)

    async def support(self, subject: str, relation: str, obj: str) -> Support:
        for name, value in (("subject", subject), ("relation", relation), ("object", obj)):
            _check_phrase(name, value)
        rel, neg = negated(relation)
        evidence = await self._run(lambda conn: self._triple_evidence(conn, subject, rel, obj))
        if not any(e.stance != "related" and e.score >= 0.5 for e in evidence):
            evidence += await self._passage_evidence(subject, relation, obj)
        if self.embedder is not None and not any(e.stance == "supports" for e in evidence):
            evidence += await self._embedding_evidence(subject, relation, obj)
        evidence = _rank(evidence)
        best = {s: max((e.score for e in evidence if e.stance == s), default=0.0) for s in ("supports", "contradicts")}
        related = max((e.score for e in evidence if e.stance == "related"), default=0.0)
        pro, con = best["supports"], best["contradicts"]
        if neg:
            pro, con = con, pro
        score = max(pro, related * RELATED_WEIGHT) * (1.0 - con)
        return Support(score=round(min(1.0, score), 4), evidence=evidence)

    # --- triple evidence (runs in the worker thread) -----------------------------------------------------------

    def _triple_evidence(self, conn: sqlite3.Connection, subject: str, rel: str, obj: str) -> list[EvidenceItem]:
        s_ent = resolve(conn, subject, self.lemmatizer, self.fuzzy_threshold)
        o_ent = resolve(conn, obj, self.lemmatizer, self.fuzzy_threshold)
        out: list[EvidenceItem] = []
        for row in matching_rows(conn, s_ent, o_ent):
            w = s_ent.weight(row.s_key, row.s_sense) * o_ent.weight(row.o_key, row.o_sense)
            if row.r_canon == rel:
                out.append(_item(row, w, "supports" if row.truth else "contradicts"))
            elif (rel == "synonym" and row.r_canon == "antonym" and row.truth) or (
                rel == "antonym" and row.r_canon == "synonym" and row.truth
            ):
                out.append(_item(row, w, "contradicts"))
            else:
                out.append(_item(row, w, "related"))
        for row in matching_rows(conn, o_ent, s_ent):  # the same fact stated the other way round
            w = o_ent.weight(row.s_key, row.s_sense) * s_ent.weight(row.o_key, row.o_sense)
            if INVERSE.get(row.r_canon) == rel or (rel in SYMMETRIC and row.r_canon == rel):
                out.append(_item(row, w, "supports" if row.truth else "contradicts"))
            else:
                out.append(_item(row, w, "related"))
        shared = set(s_ent.senses) & set(o_ent.senses)
        if shared and rel in {"synonym", "antonym", "is_a"}:
            text = f"{subject!r} and {obj!r} are lemmas of the same WordNet synset ({sorted(shared)[0]})"
            stance = "contradicts" if rel == "antonym" else "supports"
            out.append(EvidenceItem(text=text, source="wordnet", score=SYNONYM_SCORE, stance=stance))
        if rel in TRANSITIVE and not any(e.stance == "supports" and e.score >= 0.5 for e in out):
            out += self._chain(conn, s_ent, rel, o_ent)
        if rel not in {"antonym", "synonym"}:
            out += self._antonym_contradictions(conn, s_ent, rel, o_ent)
        return out

    def _chain(self, conn: sqlite3.Connection, start: Entity, rel: str, target: Entity) -> list[EvidenceItem]:
        """Breadth-first along ``rel`` (e.g. is_a) from ``start`` until ``target`` is reached."""
        frontier = start
        came_from: dict[str, Row] = {}  # node -> the triple that reached it
        seen: set[str] = set(start.senses) | set(start.keys)
        for depth in range(1, self.max_depth + 1):
            nxt = Entity("")
            for row in rows_from(conn, frontier, [rel]):
                if not row.truth:
                    continue
                w = frontier.weight(row.s_key, row.s_sense)
                hit = target.weight(row.o_key, row.o_sense)
                if hit > 0:
                    steps = [row]
                    node = row.s_sense or row.s_key
                    while node in came_from:
                        steps.append(came_from[node])
                        node = steps[-1].s_sense or steps[-1].s_key
                    chain = " → ".join(r.text for r in reversed(steps))
                    score = w * hit * STEP_DECAY ** (depth - 1)
                    text = f"{rel} chain of {depth} step(s): {chain}"
                    return [EvidenceItem(text=text, source=row.source, score=round(min(1.0, score), 4),
                                         stance="supports")]  # fmt: skip
                node = row.o_sense or row.o_key
                if node in seen:
                    continue
                seen.add(node)
                came_from[node] = row
                if row.o_sense:
                    nxt.add_sense(row.o_sense, w)
                else:
                    nxt.add_key(row.o_key, w)
            if not nxt.keys and not nxt.senses:
                return []
            frontier = nxt
        return []

    def _antonym_contradictions(
        self, conn: sqlite3.Connection, s_ent: Entity, rel: str, o_ent: Entity
    ) -> list[EvidenceItem]:
        """(s, rel, o') stored where o' is an antonym of o: evidence against (s, rel, o)."""
        opposite = Entity("")
        for row in rows_from(conn, o_ent, ["antonym"], limit=100):
            if row.o_sense:
                opposite.add_sense(row.o_sense, 1.0)
            opposite.add_key(row.o_key, 1.0)
        if not opposite.keys:
            return []
        out = []
        for row in matching_rows(conn, s_ent, opposite):
            if row.r_canon == rel and row.truth:
                w = s_ent.weight(row.s_key, row.s_sense) * ANTONYM_CONTRA
                out.append(_item(row, w, "contradicts", source=f"{row.source} (antonym of the object)"))
        return out

    # --- passages and embeddings -------------------------------------------------------------------------------

    async def _passage_evidence(self, subject: str, relation: str, obj: str) -> list[EvidenceItem]:
        if self.passages is None:
            return []
        rel_words = relation_words(relation)
        query = " ".join([subject, *rel_words, obj])
        try:
            hits = await self.passages.search(query, k=5)
        except InputError:
            return []
        lemma = self.lemmatizer
        s_key = phrase_key(subject, lemma)
        need_s = {phrase_key(w, lemma) for w in words(subject)}
        need_o = {phrase_key(w, lemma) for w in words(obj)}
        need_r = {phrase_key(w, lemma) for w in rel_words}
        out = []
        for hit in hits:
            doc = await self.passages.open(hit.doc_id)
            about_subject = s_key in {phrase_key(name, lemma) for name in _TITLE_SPLIT.split(doc.title)}
            for sentence in _SENTENCE_SPLIT.split(doc.text):
                have = {phrase_key(w, lemma) for w in words(sentence)}
                if not (need_s <= have or about_subject) or not need_o <= have:
                    continue
                if not need_r and not about_subject:
                    continue  # an unnamed relation (is_a ...) needs the passage to be about the subject
                r_frac = len(need_r & have) / len(need_r) if need_r else 1.0
                stance = "supports" if r_frac == 1.0 else "related"
                text = doc.text if about_subject else sentence
                text = text if len(text) <= 400 else text[:400] + "…"
                out.append(EvidenceItem(text=text,
                                        source=f"passage:{hit.doc_id}", score=PASSAGE_WEIGHT * max(r_frac, 0.5),
                                        stance=stance))  # fmt: skip
                break
        return out

    async def _embedding_evidence(self, subject: str, relation: str, obj: str) -> list[EvidenceItem]:
        assert self.embedder is not None
        candidates = await self.triples(subject, limit=200)
        if not candidates:
            return []
        claim = f"{subject} {relation.replace('_', ' ')} {obj}"
        texts = [f"{t.subject} {t.relation.replace('_', ' ')} {t.object}" for t in candidates]
        vecs = await anyio.to_thread.run_sync(self.embedder.embed, [claim, *texts])
        sims = vecs[1:] @ vecs[0]
        out = []
        for t, sim in zip(candidates, sims.tolist(), strict=True):
            if sim >= 0.8:
                score = round(min(1.0, float(sim)) * 0.9, 4)
                text = f"({t.subject}, {t.relation}, {t.object})"
                out.append(EvidenceItem(text=text, source="embedding", score=score, stance="supports", triple=t))
        return out

    async def close(self) -> None:
        def run() -> None:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await anyio.to_thread.run_sync(run)


SYNONYM_SCORE = 0.9
