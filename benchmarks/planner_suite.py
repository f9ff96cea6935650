"""The planner (plan → ReACT tool calls per subtask → refine), the adaptive planner (ReACT first, a plan only when
that fails) and the plain ReACT inner loop alone, on the 32-task suite of ``planner_tasks.py``, with the configured
model (the embedded one by default), the real Docker
ToolServer and a local index holding the suite's invented facts.

Each task runs under each strategy in turn (so whenever the run stops both have seen the same tasks); results are
appended to a JSONL file and skipped when the command is run again (resumable). A checker inspects the final
workspace (or the typed answer) of each run. Prints a table, then ONE line of JSON: success rate, LLM calls, tool
calls and seconds per task for each strategy, and the planner's ratios to ReACT.

    python benchmarks/planner_suite.py --out runs/planner_suite.jsonl            # all 32 tasks, every strategy
    python benchmarks/planner_suite.py --tasks c1,d1,f1,s1 --deadline 2026-11-25T11:30
    python benchmarks/planner_suite.py --out runs/planner/suite.jsonl --report docs/results/planner/table.md \
        --summary docs/results/planner/summary.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from planner_tasks import FACTS, Outcome, SuiteTask, by_id

from ponder.agents import Context, FinalAnswer, LLMCall, PlanUpdated, ToolCalled, ToolReturned
from ponder.agents.planner import Planner
from ponder.config import Settings
from ponder.llm._factory import build_model
from ponder.search import open_index
from ponder.wiring import build_toolserver

STRATEGIES: dict[str, dict[str, bool]] = {  # name -> the planner's options
    "planner": {"outer": True, "adaptive": False},
    "adaptive": {"outer": True, "adaptive": True},
    "react": {"outer": False},
}


def trace(event: Any) -> str:
    if isinstance(event, LLMCall):
        return f"{event.purpose} {event.prompt_tokens}+{event.completion_tokens} tok {event.seconds:.0f}s"
    if isinstance(event, ToolCalled):
        return f"{event.tool} {json.dumps(event.args)[:120]}"
    if isinstance(event, ToolReturned):
        return f"{'ok' if event.ok else 'FAILED'} {str(event.output or event.error)[:120]}"
    if isinstance(event, PlanUpdated):
        return event.change[:120]
    return ""


def sandbox_runner(server: Any, files: dict[str, str | None]) -> Any:
    async def run(code: str) -> str:
        async with server.session() as session:
            for path, text in files.items():
                if text is not None:
                    b64 = base64.b64encode(text.encode()).decode()
                    await session.call("upload", {"path": path, "content_base64": b64})
            result = await session.call("python", {"code": code})
            return str(result.output.get("stdout", "")) if result.ok else f"ERROR {result.error}"

    return run


async def run_one(item: SuiteTask, name: str, args: argparse.Namespace, model: Any, server: Any, index: Any) -> dict:
    planner = Planner(
        **STRATEGIES[name],
        ask_human=False,
        max_steps=args.max_steps,
        max_llm_calls=args.max_llm_calls,
        max_output_chars=800,
        max_tokens=args.call_max_tokens,
        file_preview_chars=args.file_preview_chars,
        **(json.loads(args.options) if args.options else {}),
    )
    run_id = f"{item.id}-{name}-{int(time.time())}"
    ctx = Context(model, toolserver=server, search=index, run_id=run_id)
    start = time.perf_counter()
    final: FinalAnswer | None = None
    error = None
    missing: set[str] = set()  # modules a tool call could not import (the sandbox image lacks them)
    try:
        async for event in planner.run(item.task(), ctx):
            if isinstance(event, ToolReturned) and not event.ok:
                missing.update(re.findall(r"No module named '([\w.]+)'", f"{event.error} {event.output}"))
            if isinstance(event, FinalAnswer):
                final = event
            elif args.verbose:
                print(f"    {time.perf_counter() - start:6.0f}s {event.type}: {trace(event)}", flush=True)
    except Exception as exc:  # noqa: BLE001 - a crashed run is recorded as a failure with its reason
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    record: dict[str, Any] = {"id": item.id, "kind": item.kind, "strategy": name, "seconds": round(seconds, 1)}
    record["missing_modules"] = sorted(missing)
    if final is None:
        return record | {"success": False, "error": error or "no final answer", "llm_calls": None, "tool_calls": None}
    result = final.result
    files = result["details"].get("workspace", {})
    outcome = Outcome(answer=final.answer, text=final.text, files=files, run=sandbox_runner(server, files))
    try:
        success = await item.check(outcome)
    except Exception as exc:  # noqa: BLE001 - a checker that cannot run counts as a failure
        success, error = False, f"checker: {type(exc).__name__}: {exc}"
    costs = result["costs"]
    return record | {
        "success": success,
        "status": result["details"]["status"],
        "llm_calls": costs["llm_calls"],
        "tokens": costs["prompt_tokens"] + costs["completion_tokens"],
        "tool_calls": result["tool_calls"],
        "subtasks": len(result["details"]["results"]),
        "answer": final.text[:200],
        "files": sorted(files),
        "error": error,
    }


def group(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """{task id: {strategy: record}}."""
    by_task: dict[str, dict[str, dict[str, Any]]] = {}
    for r in records:
        by_task.setdefault(r["id"], {})[r["strategy"]] = r
    return by_task


def summarize(
    records: list[dict[str, Any]], planner: str = "adaptive", only: list[str] | None = None
) -> dict[str, Any]:
    """Per strategy (those in ``only``, default all) over the tasks every one of them ran; ``planner`` is the
    variant compared with ReACT in the issue's summary keys (exact McNemar on the paired tasks)."""
    from ponder.evals._report import mcnemar_exact

    by_task = group(records)
    ran = {r["strategy"] for r in records}
    names = [s for s in STRATEGIES if s in ran and (only is None or s in only)]
    paired = [t for t, rs in by_task.items() if all(s in rs for s in names)]
    figures: dict[str, Any] = {"tasks": len(paired), "task_ids": sorted(paired), "strategies": names}
    for name in names:
        rows = [by_task[t][name] for t in paired]
        n = max(len(rows), 1)
        figures[name] = {
            "success_rate": round(sum(bool(r["success"]) for r in rows) / n, 3),
            "llm_calls_per_task": round(sum(r.get("llm_calls") or 0 for r in rows) / n, 2),
            "tool_calls_per_task": round(sum(r.get("tool_calls") or 0 for r in rows) / n, 2),
            "seconds_per_task": round(sum(r["seconds"] for r in rows) / n, 1),
            "missing_modules": {r["id"]: r["missing_modules"] for r in rows if r.get("missing_modules")},
        }
    if planner in names and "react" in names:
        p, b = figures[planner], figures["react"]
        figures["planner_vs_react"] = {
            key: round(p[key] / b[key], 2) if b[key] else None
            for key in ("success_rate", "llm_calls_per_task", "tool_calls_per_task", "seconds_per_task")
        }
        wins = sum(bool(by_task[t][planner]["success"]) and not by_task[t]["react"]["success"] for t in paired)
        losses = sum(bool(by_task[t]["react"]["success"]) and not by_task[t][planner]["success"] for t in paired)
        figures["summary"] = {
            "tasks": len(paired),
            "planner": planner,
            "planner_success": sum(bool(by_task[t][planner]["success"]) for t in paired),
            "react_success": sum(bool(by_task[t]["react"]["success"]) for t in paired),
            "planner_calls_per_task": p["llm_calls_per_task"],
            "react_calls_per_task": b["llm_calls_per_task"],
            "p_mcnemar": round(mcnemar_exact(wins, losses), 4),
        }
    if "adaptive" in names and "react" in names:  # escalated: more than its first attempt's one subtask
        rows3 = [(by_task[t]["adaptive"], by_task[t]["react"]) for t in paired]
        figures["adaptive_split"] = escalation_split(
            ((a.get("subtasks") or 0) > 1, bool(a["success"]), bool(r["success"])) for a, r in rows3
        )
    return figures


def escalation_split(tasks: Iterable[tuple[bool, bool, bool]]) -> dict[str, dict[str, int]]:
    """The adaptive planner's wins and losses against ReACT, split by whether it planned; ``tasks``: (escalated,
    adaptive right, ReACT right) per task. Its first attempt is ReACT's prompt, so only an escalated task is the
    plan's doing; the rest is ReACT against itself (greedy decoding in a batch of other calls is not
    bit-reproducible, so the same prompt can end differently). Also used by ``agentbench_os.py``."""
    split: dict[str, dict[str, int]] = {}
    for escalated, adaptive, react in tasks:
        part = split.setdefault(
            "after_a_plan" if escalated else "first_attempt_only", {"tasks": 0, "wins": 0, "losses": 0}
        )
        part["tasks"] += 1
        part["wins"] += adaptive and not react
        part["losses"] += react and not adaptive
    return split


async def main(args: argparse.Namespace) -> dict[str, Any]:
    unknown = set(args.strategies.split(",")) - set(STRATEGIES)
    if unknown:
        raise SystemExit(f"unknown strategies {sorted(unknown)}; known: {', '.join(STRATEGIES)}")
    if args.report_only:
        records = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
        return report(records, args.report, args.summary, args.strategies.split(","), args.agents_summary)
    settings = Settings()
    model = build_model(settings.llm)
    done: list[dict[str, Any]] = []
    if args.out.exists():
        done = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    seen = {(r["id"], r["strategy"]) for r in done}
    deadline = datetime.fromisoformat(args.deadline).replace(tzinfo=UTC).timestamp() if args.deadline else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        index = open_index(Path(tmp), "sqlite")
        await index.add(FACTS)
        async with build_toolserver(settings.toolserver) as server:
            gate = asyncio.Semaphore(args.concurrency)

            async def one(item: SuiteTask, name: str) -> None:
                async with gate:
                    if deadline is not None and time.time() > deadline:
                        return
                    record = await run_one(item, name, args, model, server, index)
                    done.append(record)
                    with args.out.open("a") as f:
                        f.write(json.dumps(record) + "\n")
                    print(f"{item.id:4} {name:8} {'PASS' if record['success'] else 'fail'} "
                          f"llm={record.get('llm_calls')} tools={record.get('tool_calls')} {record['seconds']}s "
                          f"{record.get('error') or record.get('answer', '')[:60]!r}", flush=True)  # fmt: skip

            # task by task, every strategy on a task before the next starts (``--concurrency`` pairs in flight, in
            # that order), so a stopped run leaves the strategies on the same tasks
            pending = [(i, n) for i in by_id(args.tasks) for n in args.strategies.split(",") if (i.id, n) not in seen]
            await asyncio.gather(*(one(item, name) for item, name in pending))
            if deadline is not None and time.time() > deadline:
                print("deadline reached; rerun the command to continue", flush=True)
        await index.close()
    return report(done, args.report, args.summary, args.strategies.split(","), args.agents_summary)


def markdown(records: list[dict[str, Any]], figures: dict[str, Any]) -> str:
    """A per-task table (both strategies side by side), success by kind, and the summary."""
    by_task = group(records)
    names = figures["strategies"]
    lines = ["| task | kind | " + " | ".join(f"{s}: ok, LLM calls, tool calls, s" for s in names) + " |",
             "|---|---|" + "---|" * len(names)]  # fmt: skip
    kinds: dict[str, dict[str, list[bool]]] = {}
    for task in sorted(figures["task_ids"], key=lambda t: (t[0], int(t[1:]) if t[1:].isdigit() else 0)):
        rows = by_task[task]
        cells = []
        for name in names:
            r = rows[name]
            kinds.setdefault(r["kind"], {}).setdefault(name, []).append(bool(r["success"]))
            mark = "pass" if r["success"] else "fail"
            cells.append(f"{mark}, {r.get('llm_calls') or 0}, {r.get('tool_calls') or 0}, {r['seconds']:.0f}")
        lines.append(f"| {task} | {rows[names[0]]['kind']} | " + " | ".join(cells) + " |")
    lines += ["", "| kind | tasks | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for kind, results in kinds.items():
        n = len(results[names[0]])
        lines.append(f"| {kind} | {n} | " + " | ".join(f"{sum(results[s])}/{n}" for s in names) + " |")
    lines += ["", "| strategy | success | LLM calls / task | tool calls / task | s / task |", "|---|---|---|---|---|"]
    for name in names:
        f = figures[name]
        lines.append(f"| {name} | {f['success_rate']:.0%} | {f['llm_calls_per_task']} | {f['tool_calls_per_task']} | "
                     f"{f['seconds_per_task']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def report(
    records: list[dict[str, Any]],
    path: Path | None = None,
    summary: Path | None = None,
    only: list[str] | None = None,
    agents: Path | None = None,
) -> dict[str, Any]:
    """The per-task table (``path``) and the issue's summary.json (``summary``), from the records alone (of the
    strategies in ``only``, default all)."""
    figures = summarize(records, only=only)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(markdown(records, figures))
    if summary is not None and "summary" in figures:
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text(json.dumps(figures["summary"], indent=2) + "\n")
    if agents is not None:  # issue 35's docs/results/agents/summary.json: its suite32 part (AgentBench's is kept)
        merged = json.loads(agents.read_text()) if agents.exists() else {}
        merged["suite32"] = {"n": figures["tasks"]} | {
            name: figures[name]["success_rate"] for name in ("react", "planner", "adaptive") if name in figures
        }
        agents.parent.mkdir(parents=True, exist_ok=True)
        agents.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"\n{figures['tasks']} tasks run under every strategy: {', '.join(figures['task_ids'])}")
    print(f"{'strategy':10} {'success':>8} {'llm/task':>9} {'tools/task':>11} {'s/task':>8}")
    for name in figures["strategies"]:
        f = figures[name]
        print(f"{name:10} {f['success_rate']:8.2f} {f['llm_calls_per_task']:9.2f} {f['tool_calls_per_task']:11.2f} "
              f"{f['seconds_per_task']:8.1f}")  # fmt: skip
    for part, w in figures.get("adaptive_split", {}).items():
        print(
            f"adaptive vs react, {part.replace('_', ' ')}: {w['tasks']} tasks, {w['wins']} wins, {w['losses']} losses"
        )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", help="comma-separated task ids (default: all 32)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="which of: " + ", ".join(STRATEGIES))
    parser.add_argument("--summary", type=Path, help="also write the issue's summary.json here")
    parser.add_argument("--report-only", action="store_true", help="only write the report from --out's records")
    parser.add_argument("--out", type=Path, default=Path("runs/planner_suite.jsonl"))
    parser.add_argument("--deadline", help="UTC time (ISO) after which no new run starts")
    parser.add_argument("--concurrency", type=int, default=1, help="task-strategy runs in flight at once")
    parser.add_argument("--max-steps", type=int, default=5)
    parser.add_argument("--max-llm-calls", type=int, default=24)
    parser.add_argument("--call-max-tokens", type=int, default=384)
    parser.add_argument("--file-preview-chars", type=int, default=0, help="show small workspace files in the prompt")
    parser.add_argument("--verbose", action="store_true", help="print every event")
    parser.add_argument("--report", type=Path, help="also write the per-task table as markdown here")
    parser.add_argument("--agents-summary", type=Path, help="also write the suite32 part of issue 35's summary.json")
    parser.add_argument("--options", help="more planner options as JSON for every strategy (e.g. verify, think)")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
