"""The default knowledge: WordNet 3.0 as index documents (one per synset) and as knowledge-base triples."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel

from ponder.search._index import DocumentIndex
from ponder.search._kb import SqliteKnowledgeBase
from ponder.search._kb_store import add_keys, insert_triples
from ponder.search._protocols import Document
from ponder.search._text import Lemmatizer, phrase_key
from ponder.search._wordnet import Synset, iter_synsets

WORDNET_PREFIX = "wordnet:"
_POS_NAMES = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective", "r": "adverb"}
_BATCH = 5000


class BuildReport(BaseModel):
    documents: int = 0
    triples: int = 0
    senses: int = 0
    seconds: float = 0.0
    skipped: bool = False


def synset_document(s: Synset) -> Document:
    return Document(
        doc_id=WORDNET_PREFIX + s.synset_id,
        title=f"{', '.join(s.lemmas)} ({_POS_NAMES.get(s.pos, s.pos)})",
        text=s.document_text(),
    )


def synset_triples(
    synsets: Sequence[Synset],
) -> Iterable[tuple[str, str, str, str | None, str | None, bool, str]]:
    """Each pointer as a triple between the first lemmas (semantic) or the named lemmas (lexical)."""
    by_id = {s.synset_id: s for s in synsets}
    for s in synsets:
        for p in s.pointers:
            target = by_id.get(p.target)
            if target is None:
                continue  # a subset of WordNet (tests): the other end is not loaded
            src = s.lemmas[p.source_word - 1] if 0 < p.source_word <= len(s.lemmas) else s.name
            tgt = target.lemmas[p.target_word - 1] if 0 < p.target_word <= len(target.lemmas) else target.name
            yield src, p.relation, tgt, s.synset_id, target.synset_id, True, "wordnet"


def load_synsets_into_kb(conn: sqlite3.Connection, synsets: Sequence[Synset], lemmatizer: Lemmatizer | None) -> int:
    """Senses (lemma key -> synset) and pointer triples of ``synsets``; returns the number of triples added."""
    with conn:
        keys: set[str] = set()
        sense_rows = []
        for s in synsets:
            for lemma in s.lemmas:
                for key in {phrase_key(lemma, lemmatizer), " ".join(lemma.lower().split())}:
                    sense_rows.append((key, s.synset_id))
                    keys.add(key)
        conn.executemany("INSERT OR IGNORE INTO senses(key, sense) VALUES (?, ?)", sense_rows)
        add_keys(conn, keys)
        return insert_triples(conn, synset_triples(synsets), lemmatizer)


async def load_wordnet(
    synsets: Sequence[Synset], index: DocumentIndex | None, kb: SqliteKnowledgeBase | None
) -> BuildReport:
    """Put ``synsets`` into the index (documents) and the knowledge base (senses and triples)."""
    started = time.perf_counter()
    report = BuildReport()
    if index is not None:
        for i in range(0, len(synsets), _BATCH * 4):
            report.documents += await index.add(synset_document(s) for s in synsets[i : i + _BATCH * 4])
    if kb is not None:
        lemmatizer = kb.lemmatizer
        report.triples = await kb.run_sync(lambda conn: load_synsets_into_kb(conn, synsets, lemmatizer))
        report.senses = sum(len(s.lemmas) for s in synsets)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


async def build_default(
    wordnet_dir: Path, index: DocumentIndex, kb: SqliteKnowledgeBase, *, force: bool = False
) -> BuildReport:
    """Build the default index and knowledge base from WordNet unless they already hold it."""
    started = time.perf_counter()
    has_docs = await index.count() > 0 and await _has_wordnet(index)
    has_kb = await kb.run_sync(lambda c: c.execute("SELECT 1 FROM triples WHERE source='wordnet' LIMIT 1").fetchone())
    if has_docs and has_kb and not force:
        return BuildReport(skipped=True, documents=await index.count(), triples=await kb.count())
    synsets = list(iter_synsets(wordnet_dir))
    report = await load_wordnet(
        synsets, None if has_docs and not force else index, None if has_kb and not force else kb
    )
    report.seconds = round(time.perf_counter() - started, 2)
    return report


async def _has_wordnet(index: DocumentIndex) -> bool:
    from ponder.errors import NotFoundError

    try:
        await index.open(WORDNET_PREFIX + "n00001740")  # "entity", the first noun synset
    except NotFoundError:
        return False
    return True
