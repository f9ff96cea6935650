"""The knowledge base on real WordNet (a closure of a few words) and real ConceptNet triples."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ponder.errors import InputError
from ponder.search import (
    KnowledgeBase,
    Morphy,
    SqliteKnowledgeBase,
    Synset,
    Triple,
    load_wordnet,
    open_index,
    read_triples,
)


@pytest.fixture
async def kb(tmp_path: Path, small_wordnet: list[Synset], morphy: Morphy) -> AsyncIterator[SqliteKnowledgeBase]:
    index = open_index(tmp_path / "index", "tantivy")
    kb = SqliteKnowledgeBase(tmp_path / "kb.sqlite", lemmatizer=morphy, passages=index)
    report = await load_wordnet(small_wordnet, index, kb)
    assert report.triples > 100 and report.documents == len(small_wordnet)
    yield kb
    await kb.close()
    await index.close()


async def test_is_a_knowledge_base(kb: SqliteKnowledgeBase) -> None:
    assert isinstance(kb, KnowledgeBase)


@pytest.mark.parametrize(
    ("subject", "relation", "obj"),
    [
        ("Paris", "part of", "France"),  # part_holonym, stored
        ("France", "has part", "Paris"),  # the inverse, stated from the other end
        ("PARIS", "PartOf", "france"),  # case and camel case
        ("dogs", "IsA", "animal"),  # plural; a chain of hypernyms
        ("geese", "is a", "bird"),  # irregular plural via WordNet's exception list
        ("hot", "antonym", "cold"),
        ("big", "synonym", "large"),  # lemmas of one synset
        ("elefant", "is a", "mammal"),  # a misspelling, fuzzy match
        ("Paris", "capital of", "France"),  # no such triple: the WordNet gloss in the index supports it
    ],
)
async def test_supported(kb: SqliteKnowledgeBase, subject: str, relation: str, obj: str) -> None:
    support = await kb.support(subject, relation, obj)
    assert support.supported, support
    assert support.evidence[0].stance == "supports"
    assert 0.5 <= support.score <= 1.0


@pytest.mark.parametrize(
    ("subject", "relation", "obj"),
    [
        ("dog", "is a", "plant"),
        ("cat", "part of", "France"),
        ("oak", "is a", "mammal"),
        ("Paris", "capital of", "Germany"),
    ],
)
async def test_not_supported(kb: SqliteKnowledgeBase, subject: str, relation: str, obj: str) -> None:
    support = await kb.support(subject, relation, obj)
    assert not support.supported, support


async def test_chain_evidence_names_each_step(kb: SqliteKnowledgeBase) -> None:
    support = await kb.support("dog", "is a", "mammal")
    text = support.evidence[0].text
    assert "chain" in text and "(dog, hypernym, canine)" in text and text.endswith("mammal)")
    direct = await kb.support("dog", "is a", "canine")
    assert direct.score > support.score  # each step costs a little


async def test_antonyms_contradict(kb: SqliteKnowledgeBase) -> None:
    support = await kb.support("hot", "synonym", "cold")
    assert support.score < 0.5
    assert any(e.stance == "contradicts" for e in support.evidence)
    negated = await kb.support("hot", "NotSynonym", "cold")
    assert negated.supported


async def test_user_triples_and_false_ones(kb: SqliteKnowledgeBase, shared_dir: Path) -> None:
    with gzip.open(shared_dir / "knowledge" / "kb_conceptnet_ckbc.jsonl.gz", "rt") as fh:
        rows = [json.loads(line) for line in fh]
    true = [Triple(subject=r["head"], relation=r["relation"], object=r["tail"]) for r in rows if r["label"] == 1][:200]
    false = [Triple(subject=r["head"], relation=r["relation"], object=r["tail"]) for r in rows if r["label"] == 0][:200]
    assert await kb.add(true, source="conceptnet") > 0
    await kb.add(false, source="conceptnet", truth=False)
    agree = [(await kb.support(t.subject, t.relation, t.object)).supported for t in true[:40]]
    assert sum(agree) >= 38
    refuted = [await kb.support(t.subject, t.relation, t.object) for t in false[:40]]
    assert sum(not s.supported for s in refuted) >= 38
    assert any(e.stance == "contradicts" for e in refuted[0].evidence)
    first = true[0]
    assert first in await kb.triples(first.subject)


async def test_triples_from_files(kb: SqliteKnowledgeBase, tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text(
        '{"subject": "Ada Lovelace", "relation": "wrote", "object": "the first program"}\n'
        '{"head": "Ada Lovelace", "relation": "born in", "tail": "Paris", "label": 0}\n',
        encoding="utf-8",
    )
    (tmp_path / "t.csv").write_text("subject,relation,object\nCharles Babbage,designed,the Analytical Engine\n")
    (tmp_path / "bare.csv").write_text("Grace Hopper,wrote,COBOL compilers,1\n")
    for name in ("t.jsonl", "t.csv", "bare.csv"):
        for triple, truth in read_triples(tmp_path / name):
            await kb.add([triple], truth=truth)
    assert (await kb.support("ada lovelace", "wrote", "first programs")).supported
    assert (await kb.support("Charles Babbage", "designed", "Analytical Engine")).supported
    assert (await kb.support("Grace Hopper", "wrote", "COBOL compiler")).supported
    born = await kb.support("Ada Lovelace", "born in", "Paris")
    assert born.score == 0.0 and born.evidence[0].stance == "contradicts"


@pytest.mark.parametrize(
    "content",
    ['{"subject": "a", "relation": "b"}\n', "not json\n", '["a", "b", "c"]\n'],
)
def test_bad_triple_files(tmp_path: Path, content: str) -> None:
    (tmp_path / "bad.jsonl").write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match="line 1"):
        read_triples(tmp_path / "bad.jsonl")


async def test_bad_input(kb: SqliteKnowledgeBase) -> None:
    with pytest.raises(InputError, match="subject of the triple is empty"):
        await kb.support("  ", "is a", "dog")
    with pytest.raises(InputError, match="at most"):
        await kb.support("dog", "is a", "x" * 10_000)
    unknown = await kb.support("zzqx", "frobnicates", "qqzv")
    assert unknown.score == 0.0 and unknown.evidence == []
