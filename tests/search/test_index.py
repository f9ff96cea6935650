"""Conformance of the local index engines (tantivy, SQLite FTS5) on real WordNet synsets and OpenBookQA facts."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ponder.errors import InputError, NotFoundError
from ponder.search import Document, DocumentIndex, SearchEngine, Synset, open_index
from ponder.search._default import synset_document

ENGINES = ["tantivy", "sqlite"]


@pytest.fixture(params=ENGINES)
async def index(
    request: pytest.FixtureRequest, tmp_path: Path, small_wordnet: list[Synset]
) -> AsyncIterator[DocumentIndex]:
    ix = open_index(tmp_path / "index", request.param)
    await ix.add(synset_document(s) for s in small_wordnet)
    yield ix
    await ix.close()


async def test_is_a_search_engine(index: DocumentIndex) -> None:
    assert isinstance(index, SearchEngine)
    assert isinstance(index, DocumentIndex)


async def test_capital_of_france_finds_paris_with_snippet(index: DocumentIndex) -> None:
    hits = await index.search("capital of France", k=5)
    assert hits[0].doc_id == "wordnet:n08932568"
    assert "**capital**" in hits[0].snippet and "**France**" in hits[0].snippet
    doc = await index.open(hits[0].doc_id)
    assert "largest city of France" in doc.text


async def test_words_as_written_rank_before_words_that_only_share_a_stem(index: DocumentIndex) -> None:
    await index.add(
        [
            Document(doc_id="x:franc", title="franc", text="franc: a monetary unit; the franc, francs and more francs"),
            Document(doc_id="x:france", title="France", text="France: a republic in western Europe"),
        ]
    )
    hits = await index.search("France", k=50)
    ids = [h.doc_id for h in hits]
    assert ids.index("x:france") < ids.index("x:franc")  # stemming still finds the currency, after the country
    titled = [h for h in hits if "france" in h.title.lower()]
    assert hits[: len(titled)] == titled  # every hit naming France in its title comes first


async def test_stemming_matches_plural_queries(index: DocumentIndex) -> None:
    hits = await index.search("domesticated dogs", k=5)
    assert any("dog" in h.title.lower() for h in hits)


async def test_persists_across_reopen(index: DocumentIndex, tmp_path: Path) -> None:
    n = await index.count()
    engine = "tantivy" if "Tantivy" in type(index).__name__ else "sqlite"
    await index.close()
    again = open_index(tmp_path / "index", engine)
    assert await again.count() == n
    assert (await again.search("capital of France", k=1))[0].doc_id == "wordnet:n08932568"
    await again.close()


async def test_incremental_add_replace_and_delete(index: DocumentIndex) -> None:
    n = await index.count()
    await index.add([Document(doc_id="notes/zanzibar.md", title="Zanzibar", text="Zanzibar exports cloves.")])
    assert await index.count() == n + 1
    assert (await index.search("cloves", k=1))[0].doc_id == "notes/zanzibar.md"
    await index.add([Document(doc_id="notes/zanzibar.md", title="Zanzibar", text="Zanzibar exports nutmeg.")])
    assert await index.count() == n + 1
    assert await index.search("cloves", k=3) == []
    assert (await index.search("nutmeg", k=1))[0].doc_id == "notes/zanzibar.md"
    assert await index.delete("notes/zanzibar.md") is True
    assert await index.delete("notes/zanzibar.md") is False
    assert await index.count() == n
    with pytest.raises(NotFoundError, match="zanzibar"):
        await index.open("notes/zanzibar.md")


async def test_delete_prefix_removes_one_folder(index: DocumentIndex) -> None:
    docs = [Document(doc_id=f"a/{i}", text=f"walrus number {i}") for i in range(3)]
    await index.add([*docs, Document(doc_id="b/0", text="walrus elsewhere")])
    assert await index.delete_prefix("a/") == 3
    assert [h.doc_id for h in await index.search("walrus")] == ["b/0"]


@pytest.mark.parametrize(
    ("query", "message"),
    [("", "empty"), ("   ", "empty"), ("x" * 5000, "characters long"), ("!!! ??? ...", "holds no words")],
)
async def test_bad_queries_get_input_errors(index: DocumentIndex, query: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        await index.search(query)


@pytest.mark.parametrize("query", ['"unbalanced', "NEAR(dog cat", "dog AND OR NOT", "title:dog*", "c++ -- (x)"])
async def test_query_syntax_characters_are_plain_text(index: DocumentIndex, query: str) -> None:
    hits = await index.search(query)
    assert isinstance(hits, list)


async def test_bad_k(index: DocumentIndex) -> None:
    with pytest.raises(InputError, match="k=0"):
        await index.search("dog", k=0)


@pytest.mark.parametrize("engine", ENGINES)
async def test_openbook_fact_retrieval(engine: str, tmp_path: Path, shared_dir: Path) -> None:
    """OpenBookQA's questions find their supporting fact among the book's 6.5k facts (real data, BM25)."""
    with gzip.open(shared_dir / "knowledge" / "kb_openbook_facts.jsonl.gz", "rt") as fh:
        facts = [json.loads(line) for line in fh]
    with gzip.open(shared_dir / "benchmarks" / "openbookqa.jsonl.gz", "rt") as fh:
        questions = [json.loads(line) for line in fh][:60]
    ix = open_index(tmp_path, engine)  # type: ignore[arg-type]
    await ix.add(Document(doc_id=f["id"], text=f["fact"]) for f in facts)
    by_text = {f["fact"].strip().lower(): f["id"] for f in facts}
    found = 0
    for q in questions:
        target = by_text.get(q["fact1"].strip().lower())
        hits = await ix.search(q["question"] + " " + q["choices"][ord(q["answer"]) - 65]["text"], k=10)
        found += target in {h.doc_id for h in hits}
    await ix.close()
    assert found / len(questions) >= 0.5
