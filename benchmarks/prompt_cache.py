"""The embedded model's prompt cache on the dual-loop planner's own request sequence.

The planner alternates between prompts: plan, then per subtask a few act calls (long instructions with every tool's
schema, then the task, the plan and the steps so far), then refine, then act again for the next subtask, then the
final answer. With only the context's own KV cache, every switch re-evaluates the shared instructions; the prompt
cache keeps the KV state of recent prompts and restores the best one.

This replays that sequence, built with the planner's real prompt builders and tool specs (two subtasks, three act
steps each, the fixed observations a run would see), against the same model loaded twice in this process: with
``prompt_cache_mb=0`` (the baseline: only the last prompt's cache) and with the default budget, alternating rounds.
Replies are capped at a few tokens, so prompt evaluation is what differs. Prints prompt seconds and end-to-end
seconds for both, the ratios, and the share of prompt tokens served from a cache; then ONE line of JSON.

    python benchmarks/prompt_cache.py            # 2 rounds
    python benchmarks/prompt_cache.py --rounds 1 --max-tokens 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from ponder.agents import Task
from ponder.agents.planner._plan import new_plan
from ponder.agents.planner._prompts import act_messages, answer_messages, plan_messages, refine_messages
from ponder.agents.planner._schemas import PlanDraft
from ponder.agents.planner._tools import HIDDEN_SANDBOX_TOOLS, SUBMIT, AgentTool, describe, search_tools
from ponder.config import LLMSettings
from ponder.llm import ChatRequest, ChoiceConstraint, Message
from ponder.llm.embedded import EmbeddedModel
from ponder.tools import BUILTIN_TOOLS

TASK = Task(
    question="Search the index for the lengths of the rivers Quillan and Morrow and write how many kilometres "
    "longer the Quillan is to rivers.txt."
)
DRAFT = {
    "reasoning": "find both lengths, then compute and write the difference",
    "subtasks": [
        {"name": "Find lengths", "goal": "search the index for the lengths of the Quillan and the Morrow"},
        {"name": "Write difference", "goal": "compute Quillan minus Morrow and write it to rivers.txt"},
    ],
}
STEPS = [
    [
        ("search", {"query": "river Quillan length"}, {"hits": [{"doc_id": "quillan", "text": "812 kilometres"}]}),
        ("search", {"query": "river Morrow length"}, {"hits": [{"doc_id": "morrow", "text": "455 kilometres"}]}),
        ("python", {"code": "print(812 - 455)"}, {"stdout": "357\n"}),
    ],
    [
        ("python", {"code": "v = 812 - 455\nopen('rivers.txt', 'w').write(str(v))\nprint(v)"}, {"stdout": "357\n"}),
        ("python", {"code": "print(open('rivers.txt').read())"}, {"stdout": "357\n"}),
        ("shell", {"command": "ls"}, {"stdout": "rivers.txt\n"}),
    ],
]


def planner_requests() -> list[tuple[str, list[Message]]]:
    """The (purpose, messages) a two-subtask planner run sends, in order."""
    tools = [AgentTool(s, "sandbox") for s in BUILTIN_TOOLS if s.name not in HIDDEN_SANDBOX_TOOLS]
    tools += [*search_tools(None), AgentTool(SUBMIT, "control")]
    plan, _ = new_plan(TASK.question, PlanDraft.model_validate(DRAFT).subtasks, 4)
    out: list[tuple[str, list[Message]]] = [("plan", plan_messages(TASK, 4))]
    results: dict[str, dict[str, Any]] = {}
    for number, subtask_steps in enumerate(STEPS, 1):
        sid = str(number)
        steps: list[dict[str, Any]] = []
        for i in range(len(subtask_steps) + 1):  # each step's call, then the submit
            messages = act_messages(
                task=TASK, plan=plan, current=sid, results=results, steps=steps, suggestions=[],
                tools_text=describe(tools), history_steps=4, max_chars=800, force_submit=i == len(subtask_steps),
            )  # fmt: skip
            out.append(("act", messages))
            if i < len(subtask_steps):
                tool, args, output = subtask_steps[i]
                steps.append({"call": {"tool": tool, "args": args}, "result": {"ok": True, "output": output}})
        results[sid] = {"success": True, "conclusion": f"subtask {sid} done: 357"}
        submission = {"success": True, "conclusion": results[sid]["conclusion"]}
        out.append(("refine", refine_messages(TASK, plan, submission, sid, [])))
    out.append(("answer", answer_messages(TASK, results)))
    return out


async def replay(model: EmbeddedModel, requests: list[tuple[str, list[Message]]], max_tokens: int) -> dict[str, float]:
    prompt_s = cached = tokens = 0.0
    start = time.perf_counter()
    for _, messages in requests:
        reply = await model.complete(ChatRequest(messages=messages, max_tokens=max_tokens))
        prompt_s += reply.timings.prompt_s or 0.0
        cached += reply.usage.cached_tokens
        tokens += reply.usage.prompt_tokens
    return {"prompt_s": prompt_s, "total_s": time.perf_counter() - start, "cached": cached, "tokens": tokens}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = LLMSettings()
    requests = planner_requests()
    budgets = {"baseline": 0, "cache": settings.prompt_cache_mb}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in budgets}
    for r in range(args.rounds):
        for name in list(budgets) if r % 2 == 0 else list(reversed(budgets)):
            # a fresh model each round, so every round starts with empty caches; loading it is not timed
            model = EmbeddedModel.from_settings(settings.model_copy(update={"prompt_cache_mb": budgets[name]}))
            try:
                await model.prepare(ChoiceConstraint(choices=["yes", "no"]))
                runs[name].append(await replay(model, requests, args.max_tokens))
            finally:
                await model.aclose()
            print(f"round {r + 1} {name:8} " + " ".join(f"{k}={v:.1f}" for k, v in runs[name][-1].items()))
    sums = {name: {k: sum(run[k] for run in rs) for k in rs[0]} for name, rs in runs.items()}
    base, cache = sums["baseline"], sums["cache"]
    figures = {
        "requests_per_round": len(requests),
        "prompt_tokens_per_round": int(base["tokens"] / args.rounds),
        "baseline_prompt_s": round(base["prompt_s"] / args.rounds, 2),
        "cache_prompt_s": round(cache["prompt_s"] / args.rounds, 2),
        "prompt_speedup": round(base["prompt_s"] / cache["prompt_s"], 2),
        "baseline_total_s": round(base["total_s"] / args.rounds, 2),
        "cache_total_s": round(cache["total_s"] / args.rounds, 2),
        "total_speedup": round(base["total_s"] / cache["total_s"], 2),
        "baseline_cached_share": round(base["cached"] / base["tokens"], 3),
        "cache_cached_share": round(cache["cached"] / cache["tokens"], 3),
    }
    print(f"\n{len(requests)} planner requests, {figures['prompt_tokens_per_round']} prompt tokens a round")
    print(f"{'':10} {'prompt s':>9} {'total s':>8} {'cached':>7}")
    for name in budgets:
        print(f"{name:10} {figures[name + '_prompt_s']:9.2f} {figures[name + '_total_s']:8.2f} "
              f"{figures[name + '_cached_share']:7.1%}")  # fmt: skip
    print(f"prompt evaluation {figures['prompt_speedup']}x faster, end to end {figures['total_speedup']}x")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=8)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
