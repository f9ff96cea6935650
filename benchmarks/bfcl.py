"""Tool calling on the Berkeley Function Calling Leaderboard (issue 34): the single-turn non-live categories, read from
the installed ``bfcl-eval`` package, answered through ponder-direct's tool path (``ponder.llm.tool_calling``: the
code ``/v1`` runs for an OpenAI client's ``tools``), greedy, scored by bfcl_eval's own AST checker.

Items are taken in chunks (every category per chunk), runs are resumable (rerun the command), and every chunk
rewrites ``summary.json`` and ``report.md`` in ``--report`` from the run records kept there, so they can be
committed as they accumulate. ``--label`` names a configuration; ``--compare A B`` adds per-category McNemar tests
of two labels on the items both answered (before/after a change). ``--report-only`` rewrites from records.

    python benchmarks/bfcl.py                                       # every category at full size
    python benchmarks/bfcl.py --limit 40 --label union --tool-choice union   # the same items, decided in the union
    python benchmarks/bfcl.py --report-only --label direct --compare union direct

The ``live_*`` categories are kept for checking the result: this script does not offer them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ponder.config import Settings
from ponder.evals import EvalRunner, Run, load_run, mcnemar_exact, wilson
from ponder.evals import _bfcl as bfcl
from ponder.wiring import build_context

FULL = {"simple_python": 400, "multiple": 200, "parallel": 200, "parallel_multiple": 200, "irrelevance": 240}
# Published figures for Qwen2.5 models of 1.5B-3B on the same categories (percent): multiple, parallel,
# parallel_multiple and irrelevance from the BFCL paper (Patil et al., "The Berkeley Function Calling Leaderboard
# (BFCL): From Tool Use to Agentic Evaluation of Large Language Models", ICML 2025, Table 1); simple_python from the
# leaderboard breakdown reproduced in the Bielik v3 technical report (Table 18), the paper giving only the mean of
# the Python, Java and JavaScript simple categories. Full-precision models served by vLLM; ponder's default is
# Qwen2.5-Coder-1.5B-Instruct in Q4_K_M, in process.
PUBLISHED = {
    "Qwen2.5-1.5B-Instruct (FC)": (92.25, 87.0, 81.5, 75.5, 62.7),
    "Qwen2.5-1.5B-Instruct (Prompt)": (89.0, 86.0, 70.0, 66.5, 63.0),
    "Qwen2.5-3B-Instruct (FC)": (96.0, 92.0, 73.5, 76.5, 64.3),
    "Qwen2.5-3B-Instruct (Prompt)": (91.5, 90.5, 79.5, 79.0, 54.2),
}


async def measure(args: argparse.Namespace) -> None:
    ctx = build_context(Settings())
    print(f"model: {ctx.model.name}; concurrency {args.concurrency}; label {args.label}", flush=True)
    runner = EvalRunner(ctx, concurrency=args.concurrency, progress=not args.no_progress, keep_events=False)
    solve = bfcl.make_tool_call_solver(ctx, args.tool_choice)
    sizes = {c: min(args.limit or FULL[c], FULL[c]) for c in args.categories}
    for upto in range(args.chunk, max(sizes.values()) + args.chunk, args.chunk):
        for category, size in sizes.items():
            if upto - args.chunk >= size:
                continue
            data = bfcl.load_bfcl(bfcl.PREFIX + category, limit=min(upto, size))
            t = time.perf_counter()
            await runner.run(
                data,
                bfcl.DIRECT,
                args.report / "runs" / f"{category}-{args.label}",
                label=args.label,
                solver=solve,
                scorer=lambda item, result, c=category: bfcl.score_bfcl(c, item, result.answer),
            )
            print(f"{category} {args.label}: {min(upto, size)} items ({time.perf_counter() - t:.0f} s)", flush=True)
        report(args.report, args.label, args.compare)


def _runs(folder: Path) -> dict[tuple[str, str], Run]:
    runs = [load_run(p) for p in sorted((folder / "runs").iterdir()) if (p / "run.json").is_file()]
    return {(r.meta.dataset.removeprefix(bfcl.PREFIX), r.meta.title): r for r in runs}


def _malformed(run: Run) -> int:
    """Replies that are not a usable call or message: cut at the token limit or unreadable (must be 0)."""
    return sum(r.status == "failed" for r in run.records.values())


def _errors(run: Run) -> dict[str, int]:
    kinds = Counter(r.reason.split(":")[0] or "?" for r in run.records.values() if not r.correct)
    return dict(kinds.most_common())


def report(folder: Path, label: str, compare: list[str] | None, *, measuring: bool = True) -> dict[str, Any]:
    """Rewrite ``summary.json`` and ``report-<label>.md`` from the records. The load average is the one seen while
    measuring (``measuring=False``, a rewrite from records, keeps the one stored before)."""
    runs = _runs(folder)
    summary: dict[str, Any] = {"label": label}
    lines = [f"# BFCL non-live, ponder-direct tool path, embedded model, greedy (label {label!r})", ""]
    lines += [
        "| category | n | accuracy | 95% CI | malformed | latency s (items in flight together) | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    accuracies: dict[str, float] = {}
    n_total = malformed = 0
    for category in FULL:
        run = runs.get((category, label))
        if run is None or not run.records:
            continue
        records = list(run.records.values())
        n, right = len(records), sum(r.correct for r in records)
        low, high = wilson(right, n)
        seconds = sum(r.seconds for r in records) / n
        accuracies[category] = right / n
        n_total += n
        malformed += _malformed(run)
        summary[category] = round(right / n, 4)
        summary.setdefault("per_category", {})[category] = {
            "n": n,
            "correct": right,
            "ci95": [round(low, 4), round(high, 4)],
            "malformed": _malformed(run),
            "latency_s": round(seconds, 2),  # each item's own wall time, while --concurrency items ran together
            "completion_tokens_per_item": round(sum(r.completion_tokens for r in records) / n, 1),
            "errors": _errors(run),
        }
        errors = ", ".join(f"{k} {v}" for k, v in _errors(run).items())
        lines.append(
            f"| {category} | {n} | {right / n:.1%} | {low:.1%}-{high:.1%} | {_malformed(run)} | {seconds:.1f} | "
            f"{errors} |"
        )
    ast = [accuracies[c] for c in bfcl.AST_CATEGORIES if c in accuracies]
    summary["non_live_ast"] = round(sum(ast) / len(ast), 4) if len(ast) == len(bfcl.AST_CATEGORIES) else None
    summary["malformed"] = malformed
    summary["n"] = n_total
    if compare:
        a_label, b_label = compare
        for category in FULL:
            a, b = runs.get((category, a_label)), runs.get((category, b_label))
            if a is None or b is None:
                continue
            common = sorted(set(a.records) & set(b.records))
            pairs = [(a.records[i].correct, b.records[i].correct) for i in common]
            wins, losses = sum(y and not x for x, y in pairs), sum(x and not y for x, y in pairs)
            summary.setdefault("compare", {})[category] = {
                "n": len(common),
                a_label: round(sum(x for x, _ in pairs) / len(common), 4) if common else None,
                b_label: round(sum(y for _, y in pairs) / len(common), 4) if common else None,
                "wins": wins,
                "losses": losses,
                "p": float(f"{mcnemar_exact(losses, wins):.3g}"),
            }
    before = folder / "summary.json"
    stored = json.loads(before.read_text()).get("load_average_1m") if before.is_file() else None
    summary["load_average_1m"] = round(os.getloadavg()[0], 2) if measuring else stored
    lines += ["", f"non_live_ast (mean of the four AST categories): {summary['non_live_ast']}", ""]
    lines += ["Published (percent; sources in benchmarks/bfcl.py):", ""]
    lines += ["| model | " + " | ".join(FULL) + " | non_live_ast |", "|---" * (len(FULL) + 2) + "|"]
    for model, figures in PUBLISHED.items():
        mean = sum(figures[:4]) / 4
        lines.append(f"| {model} | " + " | ".join(f"{f:.1f}" for f in figures) + f" | {mean:.1f} |")
    ours = [f"{100 * accuracies[c]:.1f}" if c in accuracies else "-" for c in FULL]
    mean_ours = f"{100 * summary['non_live_ast']:.1f}" if summary["non_live_ast"] is not None else "-"
    lines.append("| ponder-direct, embedded (this run) | " + " | ".join(ours) + f" | {mean_ours} |")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (folder / f"report-{label}.md").write_text("\n".join(lines) + "\n")
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--categories", nargs="+", default=list(FULL), choices=list(FULL))
    parser.add_argument("--limit", type=int, default=None, help="first N items of each category (default: all)")
    parser.add_argument("--label", default="direct", help="the configuration's name in records and reports")
    parser.add_argument(
        "--tool-choice", choices=["probe", "union"], default="probe", help="how tool_choice auto is decided"
    )
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), help="McNemar of label B against label A")
    parser.add_argument("--chunk", type=int, default=48)
    # 16 rows per step cost 1.2x 8 rows on the AMX host (its calibration); the long multiple prompts overflow the
    # 16k KV cache at 16 and wait their turn, which the scheduler does by itself
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--report", type=Path, default=Path("docs/results/bfcl"))
    parser.add_argument("--report-only", action="store_true", help="rewrite report and summary.json from records")
    parser.add_argument("--no-progress", action="store_true")
    arguments = parser.parse_args()
    if not arguments.report_only:
        asyncio.run(measure(arguments))
    measuring = not arguments.report_only
    print(json.dumps(report(arguments.report, arguments.label, arguments.compare, measuring=measuring)))
