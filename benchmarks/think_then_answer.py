"""The reasoning tax (issue 24): chain of thought reasoning inside one JSON object vs free-text reasoning followed by
a constrained answer, on the same items, greedy, same prompts otherwise; and self-consistency (k = 5) both ways.

    cot        CoT in JSON: {"reasoning": ..., "answer": ...} in one constrained generation (ponder's form until now)
    cot-free   think, then answer: free text up to "Final answer:", then {"answer": ...} constrained
    sc, sc-free  the same two forms, k = 5 samples at temperature 0.7, majority vote

Items are taken in chunks (every strategy on every dataset per chunk), so whenever the run stops all strategies have
answered the same items; runs are resumable (rerun the command). Calls of a chunk run concurrently (``--concurrency``)
so the embedded backend decodes them together. Every chunk rewrites the report and ``summary.json`` in ``--report``
from the run records, which live there too (gzipped), so they can be committed as they accumulate;
``--report-only`` rewrites them from committed records without running anything.

    python benchmarks/think_then_answer.py --data-dir ../shared/benchmarks --concurrency 8 \
        --plan gsm8k:100:cot,cot-free commonsenseqa:60:cot,cot-free strategyqa:60:cot,cot-free gsm8k:100:sc,sc-free
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from ponder.config import Settings
from ponder.evals import EvalRunner, Run, load_dataset, load_run, mcnemar_exact, summarize, write_report
from ponder.wiring import build_context

STRATEGIES: dict[str, tuple[str, dict[str, Any]]] = {
    "cot": ("cot", {"form": "json"}),
    "cot-free": ("cot", {"form": "free"}),
    "sc": ("sc", {"k": 5, "temperature": 0.7, "form": "json"}),
    "sc-free": ("sc", {"k": 5, "temperature": 0.7, "form": "free"}),
}
PAIRS = {"cot": ("json", "free"), "sc": ("sc_json", "sc_free")}  # baseline name -> summary keys of the two forms


def parse_plan(entries: list[str]) -> list[tuple[str, int, list[str]]]:
    plan = []
    for entry in entries:
        dataset, items, names = entry.split(":")
        plan.append((dataset, int(items), [n for n in names.split(",") if n]))
    return plan


async def measure(args: argparse.Namespace) -> None:
    ctx = build_context(Settings())
    print(f"model: {ctx.model.name}; concurrency {args.concurrency}", flush=True)
    runner = EvalRunner(ctx, concurrency=args.concurrency, progress=not args.no_progress)
    runs_dir = args.report / "runs"
    plan = parse_plan(args.plan)
    most = max(items for _, items, _ in plan)
    for limit in range(args.chunk, most + args.chunk, args.chunk):
        for dataset_name, items, names in plan:
            if limit - args.chunk >= items:
                continue
            data = load_dataset(dataset_name, data_dir=args.data_dir, limit=min(limit, items))
            for name in names:
                strategy, options = STRATEGIES[name]
                t = time.perf_counter()
                await runner.run(data, strategy, runs_dir / f"{data.name}-{name}", options=options, label=name)
                print(f"{data.name} {name}: {min(limit, items)} items ({time.perf_counter() - t:.0f} s)", flush=True)
        report(args.report)


def report(folder: Path) -> dict[str, Any]:
    """Rewrite the report and summary.json from the run records in ``folder/runs``."""
    runs = [load_run(p) for p in sorted((folder / "runs").iterdir()) if (p / "run.json").is_file()]
    if not runs:
        return {}
    write_report(runs, folder, title="Think, then answer: reasoning in JSON vs free text (embedded model)")
    rows = {(r.dataset, r.strategy): r for r in summarize(runs)}
    by_key = {(r.meta.dataset, r.meta.title): r for r in runs}
    summary: dict[str, Any] = {}
    for dataset in sorted({r.meta.dataset for r in runs}):
        entry: dict[str, Any] = {}
        for base, (key_a, key_b) in PAIRS.items():
            a, b = by_key.get((dataset, base)), by_key.get((dataset, f"{base}-free"))
            if a is None or b is None:
                continue
            common = sorted(set(a.records) & set(b.records))
            pairs = [(a.records[i].correct, b.records[i].correct) for i in common]
            n = len(common)
            entry.update(
                {
                    ("n" if base == "cot" else "sc_n"): n,
                    key_a: round(sum(x for x, _ in pairs) / n, 4) if n else None,
                    key_b: round(sum(y for _, y in pairs) / n, 4) if n else None,
                    ("p" if base == "cot" else "sc_p"): float(
                        f"{mcnemar_exact(sum(x and not y for x, y in pairs), sum(y and not x for x, y in pairs)):.3g}"
                    ),
                    f"{key_a}_tokens": _mean(a, common, "tokens"),
                    f"{key_b}_tokens": _mean(b, common, "tokens"),
                    # generated tokens alone: the free form's answer request re-sends the prompt and reasoning,
                    # which a prefix cache serves, so its prompt tokens overstate its cost
                    f"{key_a}_completion_tokens": _mean(a, common, "completion_tokens"),
                    f"{key_b}_completion_tokens": _mean(b, common, "completion_tokens"),
                    f"{key_a}_seconds": _mean(a, common, "seconds"),
                    f"{key_b}_seconds": _mean(b, common, "seconds"),
                    f"{key_a}_failed": sum(a.records[i].status == "failed" for i in common),
                    f"{key_b}_failed": sum(b.records[i].status == "failed" for i in common),
                }
            )
        for (ds, strategy), row in rows.items():
            if ds == dataset:
                entry.setdefault("ci95", {})[strategy] = [round(row.low, 4), round(row.high, 4)]
        summary[dataset] = entry
    summary["load_average_1m"] = round(os.getloadavg()[0], 2)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _mean(run: Run, ids: list[str], field: str) -> float | None:
    values = [float(getattr(run.records[i], field)) for i in ids]
    return round(sum(values) / len(values), 2) if values else None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", nargs="+", default=["gsm8k:100:cot,cot-free"], help="DATASET:ITEMS:STRATEGY,...")
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).parents[1] / ".." / "shared" / "benchmarks")
    parser.add_argument("--report", type=Path, default=Path("docs/results/reasoning/think-then-answer"))
    parser.add_argument("--report-only", action="store_true", help="rewrite report and summary.json from records")
    parser.add_argument("--no-progress", action="store_true")
    arguments = parser.parse_args()
    if not arguments.report_only:
        asyncio.run(measure(arguments))
    print(json.dumps(report(arguments.report)))
