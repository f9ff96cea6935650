"""Reasoning benchmark: CoT, SC (k=5), CoK and CoK + F²-verification + rethinking on the same items of
CommonsenseQA, StrategyQA and GSM8K, with the configured model (the embedded one by default).

Items are taken in chunks, every strategy on every dataset per chunk, so whenever the run stops all strategies
have answered the same items. Runs are resumable (``ponder.evals`` run folders): rerunning the command continues
where it stopped. After each chunk the report (Markdown + PNG) is rewritten. Ends with one JSON line of figures
(accuracy per dataset and strategy, and its ratio to CoT's).

    python benchmarks/reasoning_eval.py --items 60 --data-dir ../shared/benchmarks \
        --runs-dir runs/reasoning --report docs/results/reasoning
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ponder.config import Settings
from ponder.evals import EvalRunner, load_dataset, load_run, summarize, write_report
from ponder.evals._knowledge import attach_knowledge
from ponder.wiring import build_context

STRATEGIES: dict[str, tuple[str, dict[str, Any]]] = {
    "cot": ("cot", {}),
    "sc": ("sc", {"k": 5, "temperature": 0.7}),
    "cok": ("cok", {}),
    "cok-f2": ("cok-f2", {"judge": "llm", "threshold": 0.6, "rethink_rounds": 1}),
}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    ctx = attach_knowledge(build_context(settings), settings)
    print(f"model: {ctx.model.name}; knowledge base: {'yes' if ctx.kb is not None else 'no'}", flush=True)
    runner = EvalRunner(ctx, concurrency=1, progress=not args.no_progress)
    names = [s for s in args.strategies.split(",") if s]
    datasets = [d for d in args.datasets.split(",") if d]
    deadline = datetime.fromisoformat(args.deadline).replace(tzinfo=UTC).timestamp() if args.deadline else None
    runs: dict[tuple[str, str], Path] = {}
    for limit in range(args.chunk, args.items + args.chunk, args.chunk):
        limit = min(limit, args.items)
        for dataset_name in datasets:
            data = load_dataset(dataset_name, data_dir=args.data_dir, limit=limit)
            for name in names:
                if deadline is not None and time.time() > deadline:
                    print("deadline reached", flush=True)
                    return finish(runs, args)
                if name == "cok-f2" and ctx.kb is None and data.family.value != "number":
                    continue
                strategy, options = STRATEGIES[name]
                folder = args.runs_dir / f"{data.name}-{name}"
                await runner.run(data, strategy, folder, options=options, label=name)
                runs[(data.name, name)] = folder
        finish(runs, args)
    return finish(runs, args)


def finish(runs: dict[tuple[str, str], Path], args: argparse.Namespace) -> dict[str, Any]:
    if not runs:
        return {}
    loaded = [load_run(p) for p in runs.values()]
    write_report(loaded, args.report, title="Reasoning strategies on the embedded model")
    rows = summarize(loaded)
    figures: dict[str, Any] = {}
    for row in rows:
        cot = next((r for r in rows if r.dataset == row.dataset and r.strategy == "cot"), None)
        figures[f"{row.dataset}/{row.strategy}"] = {
            "n": row.n,
            "accuracy": round(row.accuracy, 4),
            "ci95": [round(row.low, 4), round(row.high, 4)],
            "tokens_per_item": round(row.tokens),
            "vs_cot": round(row.accuracy / cot.accuracy, 3) if cot and cot.accuracy else None,
            "p_vs_cot": None if row.p_vs_baseline is None else round(row.p_vs_baseline, 4),
        }
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="commonsenseqa,strategyqa,gsm8k")
    parser.add_argument("--strategies", default="cot,cok,cok-f2,sc")
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--chunk", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).parents[1] / ".." / "shared" / "benchmarks")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/reasoning"))
    parser.add_argument("--report", type=Path, default=Path("reports/reasoning"))
    parser.add_argument("--deadline", default="", help="UTC time (YYYY-MM-DDTHH:MM) after which no item starts")
    parser.add_argument("--no-progress", action="store_true")
    figures = asyncio.run(main(parser.parse_args()))
    print(json.dumps(figures))
