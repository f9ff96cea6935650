"""The triple store under the knowledge base: SQLite tables, key variants, fuzzy and synonym expansion."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz

from ponder.errors import ConfigError
from ponder.search._relations import canonical, negated
from ponder.search._text import Lemmatizer, phrase_key, words

SCHEMA = """
CREATE TABLE IF NOT EXISTS triples(
  id INTEGER PRIMARY KEY, subject TEXT NOT NULL, relation TEXT NOT NULL, object TEXT NOT NULL,
  s_key TEXT NOT NULL, r_canon TEXT NOT NULL, o_key TEXT NOT NULL, s_sense TEXT, o_sense TEXT,
  truth INTEGER NOT NULL DEFAULT 1, source TEXT NOT NULL DEFAULT 'user');
CREATE UNIQUE INDEX IF NOT EXISTS triples_uniq ON triples(s_key, r_canon, o_key, ifnull(s_sense, ''),
                                                          ifnull(o_sense, ''), truth);
CREATE INDEX IF NOT EXISTS triples_s ON triples(s_key);
CREATE INDEX IF NOT EXISTS triples_o ON triples(o_key);
CREATE INDEX IF NOT EXISTS triples_ss ON triples(s_sense);
CREATE INDEX IF NOT EXISTS triples_os ON triples(o_sense);
CREATE TABLE IF NOT EXISTS senses(key TEXT NOT NULL, sense TEXT NOT NULL, PRIMARY KEY(key, sense)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS senses_sense ON senses(sense);
CREATE TABLE IF NOT EXISTS keys(key TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS keys_fts USING fts5(key, tokenize='trigram');
"""
MAX_EXPANSION = 400
SYNONYM_WEIGHT = 0.9


def connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(
            f"cannot open the knowledge base at {path}: {exc}", hint="check PONDER_SEARCH__KB_PATH"
        ) from exc
    return conn


@dataclass
class Row:
    subject: str
    relation: str
    object: str
    s_key: str
    r_canon: str
    o_key: str
    s_sense: str | None
    o_sense: str | None
    truth: bool
    source: str

    @property
    def text(self) -> str:
        neg = "NOT " if not self.truth else ""
        return f"({self.subject}, {neg}{self.relation}, {self.object})"


ROW_COLUMNS = "subject, relation, object, s_key, r_canon, o_key, s_sense, o_sense, truth, source"


def to_row(r: Sequence[object]) -> Row:
    s_sense, o_sense = (str(x) if x is not None else None for x in r[6:8])
    return Row(
        str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), s_sense, o_sense, bool(r[8]), str(r[9])
    )


@dataclass
class Entity:
    """What a phrase may denote: surface keys and WordNet senses, each with how sure the match is."""

    text: str
    keys: dict[str, float] = field(default_factory=dict)
    senses: dict[str, float] = field(default_factory=dict)

    def weight(self, key: str, sense: str | None) -> float:
        return max(self.keys.get(key, 0.0), self.senses.get(sense, 0.0) if sense else 0.0)

    def add_key(self, key: str, w: float) -> None:
        if w > self.keys.get(key, 0.0):
            self.keys[key] = w

    def add_sense(self, sense: str, w: float) -> None:
        if w > self.senses.get(sense, 0.0):
            self.senses[sense] = w


def key_variants(phrase: str, lemmatizer: Lemmatizer | None) -> list[str]:
    """The keys a phrase may have been stored under (WordNet lemma, plain singular, surface words)."""
    out = [phrase_key(phrase, lemmatizer), phrase_key(phrase, None), " ".join(words(phrase))]
    return [k for k in dict.fromkeys(out) if k]


def insert_triples(
    conn: sqlite3.Connection,
    rows: Iterable[tuple[str, str, str, str | None, str | None, bool, str]],
    lemmatizer: Lemmatizer | None,
) -> int:
    """Insert (subject, relation, object, s_sense, o_sense, truth, source); returns how many were new."""
    before = conn.total_changes
    new_keys: set[str] = set()
    batch = []
    keys: dict[str, str] = {}
    relations: dict[str, tuple[str, bool]] = {}
    for subject, relation, obj, s_sense, o_sense, truth, source in rows:
        if relation not in relations:
            relations[relation] = negated(relation)
        r_canon, neg = relations[relation]
        for phrase in (subject, obj):
            if phrase not in keys:
                keys[phrase] = phrase_key(phrase, lemmatizer)
        s_key, o_key = keys[subject], keys[obj]
        new_keys.update((s_key, o_key))
        batch.append((subject, relation, obj, s_key, r_canon, o_key, s_sense, o_sense, int(truth and not neg), source))
    conn.executemany(f"INSERT OR IGNORE INTO triples({ROW_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", batch)
    added = conn.total_changes - before
    add_keys(conn, new_keys)
    return added


def add_keys(conn: sqlite3.Connection, keys: Iterable[str]) -> None:
    """Record keys (and their trigrams, for fuzzy lookup) not seen before."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS new_keys(key TEXT PRIMARY KEY) WITHOUT ROWID")
    conn.execute("DELETE FROM new_keys")
    conn.executemany("INSERT OR IGNORE INTO new_keys(key) VALUES (?)", ((k,) for k in keys))
    conn.execute("DELETE FROM new_keys WHERE key IN (SELECT key FROM keys)")
    conn.execute("INSERT INTO keys(key) SELECT key FROM new_keys")
    conn.execute("INSERT INTO keys_fts(key) SELECT key FROM new_keys")


def _marks(n: int) -> str:
    return ",".join("?" * n)


def resolve(conn: sqlite3.Connection, phrase: str, lemmatizer: Lemmatizer | None, fuzzy_threshold: float) -> Entity:
    """Keys and senses for a phrase: its own forms, the WordNet senses of those, their synonyms, else fuzzy keys."""
    ent = Entity(phrase)
    for k in key_variants(phrase, lemmatizer):
        ent.add_key(k, 1.0)
    own = list(ent.keys)
    for (sense,) in conn.execute(f"SELECT sense FROM senses WHERE key IN ({_marks(len(own))})", own):
        ent.add_sense(sense, 1.0)
    known = conn.execute(f"SELECT count(*) FROM keys WHERE key IN ({_marks(len(own))})", own).fetchone()[0]
    if not ent.senses and not known:
        _fuzzy(conn, ent, own[0], fuzzy_threshold)
    senses = list(ent.senses)[:MAX_EXPANSION]
    if senses:
        rows = conn.execute(
            f"SELECT key, sense FROM senses WHERE sense IN ({_marks(len(senses))}) LIMIT {MAX_EXPANSION}", senses
        )
        for key, sense in rows:
            ent.add_key(key, ent.senses[sense] * SYNONYM_WEIGHT)
    return ent


def _fuzzy(conn: sqlite3.Connection, ent: Entity, key: str, threshold: float) -> None:
    grams = {key[i : i + 3] for i in range(len(key) - 2)} - {"   "}
    if not grams:
        return
    query = " OR ".join('"' + g.replace('"', '""') + '"' for g in grams)
    candidates = [
        r[0] for r in conn.execute("SELECT key FROM keys_fts WHERE keys_fts MATCH ? ORDER BY rank LIMIT 200", (query,))
    ]
    for cand in candidates:
        ratio = fuzz.ratio(key, cand)
        if ratio >= threshold:
            w = ratio / 100.0 * SYNONYM_WEIGHT
            ent.add_key(cand, w)
            for (sense,) in conn.execute("SELECT sense FROM senses WHERE key = ?", (cand,)):
                ent.add_sense(sense, w)


def _subject_clauses(ent: Entity) -> list[tuple[str, list[str]]]:
    """One indexed clause per non-empty side (keys, senses): an ``OR`` of the two makes SQLite scan the table."""
    out = []
    if ent.keys:
        out.append((f"s_key IN ({_marks(len(ent.keys))})", list(ent.keys)))
    if ent.senses:
        out.append((f"s_sense IN ({_marks(len(ent.senses))})", list(ent.senses)))
    return out


def _select(conn: sqlite3.Connection, ent: Entity, extra: str, args: list[str], limit: int) -> list[Row]:
    rows: dict[tuple[object, ...], Row] = {}
    for clause, cargs in _subject_clauses(ent):
        sql = f"SELECT id, {ROW_COLUMNS} FROM triples WHERE {clause} AND {extra} LIMIT {limit}"
        for r in conn.execute(sql, [*cargs, *args]):
            rows.setdefault(r[0], to_row(r[1:]))
    return list(rows.values())[:limit]


def matching_rows(conn: sqlite3.Connection, subj: Entity, obj: Entity) -> list[Row]:
    """Stored triples whose subject may be ``subj`` and object ``obj``."""
    ok, os_ = list(obj.keys), list(obj.senses)
    extra = f"(o_key IN ({_marks(len(ok))}) OR o_sense IN ({_marks(len(os_))}))"
    return _select(conn, subj, extra, [*ok, *os_], 500)


def rows_from(conn: sqlite3.Connection, ent: Entity, relations: Sequence[str], limit: int = 2000) -> list[Row]:
    """Stored triples with subject ``ent`` and one of ``relations``."""
    return _select(conn, ent, f"r_canon IN ({_marks(len(relations))})", list(relations), limit)


def canonical_relation(relation: str) -> str:
    return canonical(relation)
