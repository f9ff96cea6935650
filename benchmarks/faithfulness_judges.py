"""Which faithfulness judge works better for CoK verification: the constrained LLM judge or MiniLM embedding
similarity? Measured on chains the model really wrote (the first-round chains of `cok-f2` runs, whose LLM-judge
verdicts are recorded): a judge is useful when its score separates chains with a correct answer from wrong ones.
Figures: ROC AUC of each judge's score against first-round correctness (0.5 = no signal), and the accuracy of the
chains each judge accepts / rejects. The LLM judge is the baseline; the last line is one JSON object.

    python benchmarks/faithfulness_judges.py runs/reasoning/*-cok-f2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any, cast

from ponder.agents import format_answer
from ponder.agents.cok import EmbeddingJudge, EvidenceTriple
from ponder.evals import BUILTIN, load_dataset, load_run, score_answer
from ponder.llm import ChatModel
from ponder.search import MiniLMEmbedder


def auc(scores: list[float], labels: list[bool]) -> float | None:
    """P(score of a correct chain > score of a wrong one), ties counting half (Mann-Whitney U / n1 n0)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def split_accuracy(accepted: list[bool], labels: list[bool]) -> dict[str, Any]:
    yes = [y for a, y in zip(accepted, labels, strict=True) if a]
    no = [y for a, y in zip(accepted, labels, strict=True) if not a]
    return {
        "accepted": len(yes),
        "accuracy_accepted": round(sum(yes) / len(yes), 3) if yes else None,
        "rejected": len(no),
        "accuracy_rejected": round(sum(no) / len(no), 3) if no else None,
    }


async def main(paths: list[Path], threshold: float) -> dict[str, Any]:
    embedder = MiniLMEmbedder()
    await asyncio.to_thread(embedder.embed, ["warm up"])  # load the model before timing
    judge = EmbeddingJudge(embedder)
    no_model = cast(ChatModel, None)  # the embedding judge never calls the model
    llm_scores: list[float] = []
    emb_scores: list[float] = []
    labels: list[bool] = []
    emb_seconds = 0.0
    for path in paths:
        run = load_run(path)
        meta = run.meta
        data_dir = Path(meta.dataset_path).parent
        if meta.dataset in BUILTIN:
            data = load_dataset(meta.dataset, data_dir=data_dir)
        else:
            data = load_dataset(meta.dataset_path, family=meta.family)  # type: ignore[arg-type]
        tasks = {i.id: (i.task, i.gold) for i in data.items}
        for record in run.records.values():
            rounds = record.details.get("rounds") or []
            if record.status != "ok" or not rounds or record.id not in tasks:
                continue
            chain, verdict = rounds[0]["chain"], rounds[0].get("verdict") or {}
            if verdict.get("faithfulness") is None:
                continue
            task, gold = tasks[record.id]
            evidence = [EvidenceTriple.model_validate(t) for t in chain["evidence"]]
            t0 = time.perf_counter()
            emb = await judge.judge(
                task, evidence, chain["explanation"], format_answer(task, chain["answer"]), no_model
            )
            emb_seconds += time.perf_counter() - t0
            llm_scores.append(float(verdict["faithfulness"]))
            emb_scores.append(emb)
            labels.append(score_answer(task.family, chain["answer"], gold).correct)
    n = len(labels)
    llm_auc, emb_auc = auc(llm_scores, labels), auc(emb_scores, labels)
    return {
        "chains": n,
        "correct_chains": sum(labels),
        "llm_judge": {"auc": llm_auc, **split_accuracy([s >= 0.5 for s in llm_scores], labels)},
        "embedding_judge": {
            "auc": emb_auc,
            "threshold": threshold,
            **split_accuracy([s >= threshold for s in emb_scores], labels),
            "ms_per_chain": round(1000 * emb_seconds / n, 1) if n else None,
        },
        "embedding_auc_vs_llm": round(emb_auc / llm_auc, 3) if emb_auc and llm_auc else None,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="cok-f2 run folders")
    parser.add_argument("--threshold", type=float, default=0.5, help="embedding score that counts as consistent")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.runs, args.threshold))))
