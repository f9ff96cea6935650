"""Index build time and query latency of the two local engines (tantivy, SQLite FTS5) on the full WordNet corpus.

Both engines index the same ~118k synset documents and answer the same queries in this one process; the figures
are reported as ratios against SQLite FTS5 (the baseline). Target: BM25 query p50 <= 5 ms.

    python benchmarks/search_speed.py [--wordnet-dir /usr/share/wordnet] [--queries 300]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from ponder.search import iter_synsets, open_index
from ponder.search._default import synset_document


def _queries(docs: list[str], n: int, seed: int = 0) -> list[str]:
    """Realistic keyword queries: 1-4 content words drawn from random documents, plus a few fixed questions."""
    rng = random.Random(seed)
    fixed = ["capital of France", "largest planet", "animal that barks", "musical instrument with strings"]
    out = list(fixed)
    while len(out) < n:
        words = [w.strip('.,;:()"') for w in rng.choice(docs).split() if len(w) > 3]
        if words:
            out.append(" ".join(rng.sample(words, min(len(words), rng.randint(1, 4)))))
    return out


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def _measure(engine: str, root: Path, docs: list, queries: list[str]) -> dict[str, float]:
    index = open_index(root / engine, engine)  # type: ignore[arg-type]
    start = time.perf_counter()
    await index.add(docs)
    build_s = time.perf_counter() - start
    for q in queries[:20]:  # warm the page cache and the searcher
        await index.search(q, 10)
    latencies = []
    for q in queries:
        t = time.perf_counter()
        await index.search(q, 10)
        latencies.append((time.perf_counter() - t) * 1000)
    size = sum(p.stat().st_size for p in (root / engine).rglob("*") if p.is_file())
    await index.close()
    return {
        "build_s": round(build_s, 2),
        "p50_ms": round(_pct(latencies, 50), 3),
        "p95_ms": round(_pct(latencies, 95), 3),
        "mean_ms": round(statistics.fmean(latencies), 3),
        "disk_mb": round(size / 1e6, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet-dir", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()

    start = time.perf_counter()
    docs = [synset_document(s) for s in iter_synsets(args.wordnet_dir)]
    parse_s = time.perf_counter() - start
    queries = _queries([d.text for d in docs], args.queries)
    print(f"corpus: {len(docs)} WordNet synset documents (parsed in {parse_s:.1f} s); {len(queries)} queries, k=10")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in ("sqlite", "tantivy"):
            results[engine] = r = await _measure(engine, Path(tmp), docs, queries)
            print(f"{engine:8s} build {r['build_s']:7.2f} s   query p50 {r['p50_ms']:7.3f} ms"
                  f"   p95 {r['p95_ms']:7.3f} ms   mean {r['mean_ms']:7.3f} ms   disk {r['disk_mb']} MB")  # fmt: skip
    base, new = results["sqlite"], results["tantivy"]
    ratios = {
        "tantivy_vs_sqlite_build": round(new["build_s"] / base["build_s"], 3),
        "tantivy_vs_sqlite_p50": round(new["p50_ms"] / base["p50_ms"], 3),
        "tantivy_vs_sqlite_p95": round(new["p95_ms"] / base["p95_ms"], 3),
    }
    print(f"tantivy / sqlite: build x{ratios['tantivy_vs_sqlite_build']}, p50 x{ratios['tantivy_vs_sqlite_p50']},"
          f" p95 x{ratios['tantivy_vs_sqlite_p95']}  (target: BM25 p50 <= 5 ms)")  # fmt: skip
    print(json.dumps({"documents": len(docs), "queries": len(queries), "parse_s": round(parse_s, 2), **{
        f"{e}_{k}": v for e, r in results.items() for k, v in r.items()}, **ratios}))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
