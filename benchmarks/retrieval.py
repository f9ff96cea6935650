"""Retrieval quality on OpenBookQA: each question against the book of facts; its named ``fact1`` is the target.

Recall@1/5/10 for BM25 (the default tantivy index), dense (all-MiniLM-L6-v2, exact cosine) and their hybrid
(weighted reciprocal rank fusion), all measured in this one process on the same corpus. Target: hybrid >= the
better of the two alone. Needs the ``dense`` extra and the shared data folder (``<repo>/../shared``).

    python benchmarks/retrieval.py [--shared ../shared] [--limit N]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from ponder.search import DenseIndex, Document, Hit, HybridSearch, MiniLMEmbedder, open_index

KS = (1, 5, 10)
DEFAULT_SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"


def _norm(text: str) -> str:
    return " ".join(text.lower().strip().strip(".").split())


def _load(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _recall(ranked: list[list[Hit]], targets: list[set[str]]) -> dict[str, float]:
    out = {}
    for k in KS:
        found = sum(bool(target & {h.doc_id for h in hits[:k]}) for hits, target in zip(ranked, targets, strict=True))
        out[f"recall@{k}"] = round(found / len(targets), 4)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N questions")
    args = parser.parse_args()

    facts = _load(args.shared / "knowledge" / "kb_openbook_facts.jsonl.gz")
    questions = _load(args.shared / "benchmarks" / "openbookqa.jsonl.gz")
    if args.limit:
        questions = questions[: args.limit]
    ids_by_text: dict[str, set[str]] = {}
    for f in facts:
        ids_by_text.setdefault(_norm(f["fact"]), set()).add(f["id"])
    targets = [ids_by_text.get(_norm(q["fact1"]), set()) for q in questions]
    queries = [q["question"] for q in questions]
    docs = [Document(doc_id=f["id"], text=f["fact"]) for f in facts]
    print(f"{len(questions)} OpenBookQA questions against {len(docs)} facts; {sum(map(bool, targets))} have a target")

    with tempfile.TemporaryDirectory() as tmp:
        bm25 = open_index(Path(tmp) / "bm25", "tantivy")
        await bm25.add(docs)
        embedder = MiniLMEmbedder()
        dense = DenseIndex(Path(tmp) / "dense.sqlite", embedder)
        start = time.perf_counter()
        await dense.add(docs)
        embed_s = time.perf_counter() - start
        hybrid = HybridSearch(bm25, dense)
        results: dict[str, dict[str, float]] = {}
        for name, engine in (("bm25", bm25), ("dense", dense), ("hybrid", hybrid)):
            start = time.perf_counter()
            ranked = [await engine.search(q, 10) for q in queries]
            ms = (time.perf_counter() - start) * 1000 / len(queries)
            results[name] = {**_recall(ranked, targets), "ms_per_query": round(ms, 2)}
        await bm25.close()
        await dense.close()

    for name, r in results.items():
        print(f"{name:7s} " + "  ".join(f"{k} {v:.3f}" for k, v in r.items() if k.startswith("recall")) +
              f"   {r['ms_per_query']:.1f} ms/query")  # fmt: skip
    best_single = max(results["bm25"]["recall@10"], results["dense"]["recall@10"])
    ratio = round(results["hybrid"]["recall@10"] / best_single, 3) if best_single else 0.0
    print(f"hybrid recall@10 / best single: x{ratio} (target >= 1.0); embedding the corpus took {embed_s:.1f} s")
    print(json.dumps({"questions": len(questions), "facts": len(docs), "embed_s": round(embed_s, 1),
                      **{f"{n}_{k}": v for n, r in results.items() for k, v in r.items()},
                      "hybrid_vs_best_recall@10": ratio}))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
