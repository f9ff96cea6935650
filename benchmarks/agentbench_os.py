"""AgentBench-OS dev (26 tasks, from the installed inspect-evals package) for ReACT, the planner and the adaptive
planner, with the configured model (the embedded one by default) and the real Docker sandbox: each task in its own
environment (``ponder.evals._agentbench``), checked there by the task's own check.

Each task runs under every strategy in turn before the next task starts, so whenever the run stops all strategies
have seen the same tasks; records go to one run folder per strategy (``ponder eval`` records, resumable: a task
already recorded is not run again). The report: success per strategy over the runnable tasks all of them ran,
exact McNemar between the planners and ReACT, calls, tokens and seconds per task, success per label, and the
unrunnable tasks with why. Ends with ONE line of JSON.

    python benchmarks/agentbench_os.py                                   # all tasks, react, planner, adaptive
    python benchmarks/agentbench_os.py --tasks 0,6,13 --strategies react
    python benchmarks/agentbench_os.py --report-only --summary docs/results/agents/summary.json

The dev split only: the package's test split is kept for checking results and is never read here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ponder.agents import Context
from ponder.evals import _agentbench as ab
from ponder.evals._report import mcnemar_exact
from ponder.evals._runner import EvalRunner
from ponder.evals._store import ItemRecord, RunStore
from ponder.llm._factory import build_model
from ponder.wiring import load_settings

sys.path.insert(0, str(Path(__file__).parent))
from planner_suite import escalation_split  # a sibling script, importable once its folder is on the path

STRATEGIES: dict[str, tuple[str, dict[str, Any]]] = {  # label -> (strategy, options)
    "react": ("react", {}),
    "planner": ("planner", {"adaptive": False}),
    "adaptive": ("planner", {"adaptive": True}),
}
# Published AgentBench-OS figures of other models, for the report (not measured here)
PUBLISHED = {
    "gpt-4, dev split (inspect-evals README, N = 26)": "69.2 % +- 9.2",
    "gpt-4, test split (AgentBench paper, Liu et al. 2023)": "42.4 %",
}
ENVIRONMENT_ERRORS = ("Unrunnable", "EnvironmentFailed")


def folder_of(out: Path, label: str) -> Path:
    return out / f"agentbench-os-{label}"


def options_of(label: str, args: argparse.Namespace) -> dict[str, Any]:
    strategy, options = STRATEGIES[label]
    limits = {"max_steps": args.max_steps, "max_llm_calls": args.max_llm_calls, "max_tokens": args.call_max_tokens}
    extra = json.loads(args.options) if args.options else {}
    return ab.default_options(strategy, {**limits, **options, **extra})


async def run(args: argparse.Namespace) -> None:
    settings = load_settings()
    data = ab.load_agentbench()
    wanted = set(args.tasks.split(",")) if args.tasks else None
    items = [i for i in data.items if wanted is None or i.id in wanted]
    labels = args.strategies.split(",")
    deadline = datetime.fromisoformat(args.deadline).replace(tzinfo=UTC) if args.deadline else None
    model = build_model(settings.llm)
    ctx = Context(model)
    solver = ab.make_agentbench_solver(ctx, settings.toolserver, data, task_timeout_s=args.task_timeout)
    runner = EvalRunner(ctx, progress=False)
    gate = asyncio.Semaphore(args.concurrency)

    async def one(item: Any, label: str) -> None:
        async with gate:
            if deadline and datetime.now(UTC) >= deadline:
                return
            strategy, _ = STRATEGIES[label]
            single = data.model_copy(update={"items": [item]})
            summary = await runner.run(
                single, strategy, folder_of(args.out, label), options=options_of(label, args), label=label,
                solver=solver, scorer=ab.score_agentbench,
            )  # fmt: skip
            if summary.ran:
                record = RunStore(folder_of(args.out, label)).records()[item.id]
                mark = "ok " if record.correct else ("ENV" if _environment(record) else "no ")
                print(
                    f"{item.id:>3} {label:9} {mark} {record.calls:3d} calls {record.seconds:6.0f}s "
                    f"answer={str((record.details.get('agentbench') or {}).get('answer'))[:40]!r}",
                    flush=True,
                )

    try:
        # task by task, every strategy on a task before the next task starts (``--concurrency`` pairs in flight,
        # in that order), so a stopped run leaves the strategies on the same tasks
        await asyncio.gather(*(one(item, label) for item in items for label in labels))
        if deadline and datetime.now(UTC) >= deadline:
            print("deadline reached; rerun the command to go on", flush=True)
    finally:
        close = getattr(model, "aclose", None)
        if close is not None:
            await close()


def _environment(record: ItemRecord) -> bool:
    return record.status == "failed" and (record.error or {}).get("type") in ENVIRONMENT_ERRORS


def _escalated(record: ItemRecord) -> bool:
    """The adaptive planner went on to plan: subtasks after its first attempt ("solve the task")."""
    plan = record.details.get("plan") or {}
    return len(plan.get("subtasks") or []) > 1


def _misformed(record: ItemRecord) -> bool:
    """Wrong only in form: the expected value stands in the answer as a word of its own ('the interval is 1 s')."""
    verdict = record.details.get("agentbench") or {}
    expected, answer = verdict.get("expected"), str(verdict.get("answer") or "")
    if record.correct or not expected:
        return False
    return re.search(rf"(?<![\w.]){re.escape(str(expected))}(?!\w|\.\w)", answer) is not None


def summarize(out: Path, labels: list[str]) -> dict[str, Any]:
    data = ab.load_agentbench()
    tasks = {i.id: ab.task_of(i) for i in data.items}
    records = {label: RunStore(folder_of(out, label)).records() for label in labels if folder_of(out, label).exists()}
    names = [label for label in labels if label in records]
    unrunnable = {t.id: t.unrunnable for t in tasks.values() if t.unrunnable}
    env_failed = {
        i: str((r.error or {}).get("message", ""))[:200]
        for label in names
        for i, r in records[label].items()
        if _environment(r) and i not in unrunnable
    }
    paired = [i for i in tasks if i not in unrunnable and i not in env_failed and all(i in records[n] for n in names)]
    figures: dict[str, Any] = {"n": len(paired), "task_ids": paired, "strategies": names}
    for name in names:
        rows = [records[name][i] for i in paired]
        n = max(len(rows), 1)
        labels_seen: dict[str, list[int]] = {}
        for i, r in zip(paired, rows, strict=True):
            for lab in tasks[i].labels:
                labels_seen.setdefault(lab, [0, 0])
                labels_seen[lab][0] += r.correct
                labels_seen[lab][1] += 1
        figures[name] = {
            "success": sum(r.correct for r in rows),
            "success_rate": round(sum(r.correct for r in rows) / n, 3),
            "llm_calls_per_task": round(sum(r.calls for r in rows) / n, 2),
            "tokens_per_task": round(sum(r.tokens for r in rows) / n),
            "seconds_per_task": round(sum(r.seconds for r in rows) / n, 1),
            "failed_runs": sum(r.status == "failed" for r in rows),
            "right_value_wrong_form": sorted(i for i, r in zip(paired, rows, strict=True) if _misformed(r)),
            "by_label": {k: f"{v[0]}/{v[1]}" for k, v in sorted(labels_seen.items())},
        }
    for name in ("planner", "adaptive"):
        if name in names and "react" in names:
            wins = sum(records[name][i].correct and not records["react"][i].correct for i in paired)
            losses = sum(records["react"][i].correct and not records[name][i].correct for i in paired)
            react_calls = figures["react"]["llm_calls_per_task"]
            figures[f"{name}_vs_react"] = {
                "wins": wins,
                "losses": losses,
                "p_mcnemar": round(mcnemar_exact(wins, losses), 4),
                "calls_ratio": round(figures[name]["llm_calls_per_task"] / react_calls, 2) if react_calls else None,
            }
    if "adaptive" in names and "react" in names:
        pairs = [(records["adaptive"][i], records["react"][i]) for i in paired]
        figures["adaptive_vs_react"]["split"] = escalation_split(
            (_escalated(a), a.correct, r.correct) for a, r in pairs
        )
    figures["unrunnable"] = unrunnable
    figures["environment_failed"] = env_failed
    figures["published"] = PUBLISHED
    return figures


def issue_summary(figures: dict[str, Any], path: Path) -> dict[str, Any]:
    """``docs/results/agents/summary.json``'s ``agentbench_os_dev`` part (its ``suite32`` part is kept)."""
    old = json.loads(path.read_text()) if path.exists() else {}

    def rate(name: str) -> float | None:
        return figures[name]["success_rate"] if name in figures else None

    versus = figures.get("planner_vs_react", {})
    old["agentbench_os_dev"] = {
        "n": figures["n"],
        "react": rate("react"),
        "planner": rate("planner"),
        "adaptive": rate("adaptive"),
        "p_planner_vs_react": versus.get("p_mcnemar"),
        "calls_ratio_planner_vs_react": versus.get("calls_ratio"),
        "unrunnable": len(figures["unrunnable"]) + len(figures["environment_failed"]),
        "p_adaptive_vs_react": figures.get("adaptive_vs_react", {}).get("p_mcnemar"),
        "calls_ratio_adaptive_vs_react": figures.get("adaptive_vs_react", {}).get("calls_ratio"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(old, indent=2) + "\n")
    return old


def table(figures: dict[str, Any]) -> str:
    lines = [
        f"AgentBench-OS dev: {figures['n']} runnable tasks every strategy ran",
        "| strategy | success | calls/task | tokens/task | s/task | by label |",
        "|---|---|---|---|---|---|",
    ]
    for name in figures["strategies"]:
        f = figures[name]
        by = ", ".join(f"{k} {v}" for k, v in f["by_label"].items())
        lines.append(
            f"| {name} | {f['success']}/{figures['n']} ({f['success_rate']:.0%}) | {f['llm_calls_per_task']} | "
            f"{f['tokens_per_task']} | {f['seconds_per_task']} | {by} |"
        )
    for name in figures["strategies"]:
        if figures[name]["right_value_wrong_form"]:
            lines.append(f"{name}: right value in the wrong form on tasks {figures[name]['right_value_wrong_form']}")
    for key in ("planner_vs_react", "adaptive_vs_react"):
        if key in figures:
            v = figures[key]
            lines.append(
                f"{key}: {v['wins']} wins, {v['losses']} losses, exact McNemar p = {v['p_mcnemar']}, "
                f"calls x{v['calls_ratio']}"
            )
            for part, w in v.get("split", {}).items():
                lines.append(f"  {part.replace('_', ' ')}: {w['tasks']} tasks, {w['wins']} wins, {w['losses']} losses")
    for i, why in {**figures["unrunnable"], **figures["environment_failed"]}.items():
        lines.append(f"not run: task {i}: {why}")
    for who, value in figures["published"].items():
        lines.append(f"published: {who}: {value}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/results/agents/runs"), help="run folders go here")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="which of: " + ", ".join(STRATEGIES))
    parser.add_argument("--tasks", help="comma-separated task ids (default: all 26)")
    parser.add_argument("--deadline", help="UTC time (ISO) after which no new task starts")
    parser.add_argument("--max-steps", type=int, default=6, help="steps (tool calls and submit) per subtask")
    parser.add_argument("--max-llm-calls", type=int, default=24)
    parser.add_argument("--call-max-tokens", type=int, default=384)
    parser.add_argument("--task-timeout", type=float, default=1200.0, help="seconds per task and strategy")
    parser.add_argument("--options", help="more strategy options as JSON, for every strategy (e.g. verify)")
    parser.add_argument(
        "--concurrency", type=int, default=1,
        help="task-strategy pairs in flight (the embedded engine batches their calls; seconds per task then include "
        "the others' load)",
    )  # fmt: skip
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--summary", type=Path, help="also write the issue's summary.json here")
    args = parser.parse_args()
    if not args.report_only:
        asyncio.run(run(args))
    figures = summarize(args.out, args.strategies.split(","))
    print(table(figures))
    if args.summary:
        issue_summary(figures, args.summary)
    json.dump({k: v for k, v in figures.items() if k not in ("task_ids", "published")}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
