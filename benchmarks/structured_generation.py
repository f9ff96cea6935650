"""Constrained vs unconstrained generation on the embedded model, for each constraint engine.

For a plan-like schema and a tool-call schema it measures, per engine:
- time per output token (decode only: from the first token to the last, so prompt time does not blur it), as a
  speed ratio to unconstrained decoding measured in the same run (target: >= 0.90);
- time to first token, as a ratio to the unconstrained one (prompt evaluation included: every call starts with a
  fresh prompt, so no KV cache is reused);
- schema compile time, and the one-off engine setup (tokenizer/vocabulary tables built once per loaded model).
Calls are interleaved round by round (baseline, then each engine) and medians taken, so other load on the machine
hits all of them alike. The last line printed is one JSON object holding every figure.

    python benchmarks/structured_generation.py            # ~5 min on 2 cores
    python benchmarks/structured_generation.py --quick    # ~2 min
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from pydantic import BaseModel, Field

from ponder.config import ConstraintEngine, Settings
from ponder.llm import ChatRequest, ChatResponse, JsonSchemaConstraint, RegexConstraint, system, user
from ponder.llm.embedded import EmbeddedModel
from ponder.tools._spec import ToolSpec, tool_call_schema


class Step(BaseModel):
    name: str = Field(description="a short name, a few words")
    goal: str = Field(description="what this step must achieve")
    tool: str | None = Field(default=None, description="the tool this step uses, if any")


class PlanDraft(BaseModel):
    reasoning: str = Field(description="how the goal breaks down, briefly")
    steps: list[Step] = Field(min_length=1, max_length=6)


class PythonArgs(BaseModel):
    code: str = Field(description="Python source to run")


class SearchArgs(BaseModel):
    query: str
    top_k: int = Field(default=5, ge=1, le=20)


TOOLS = [
    ToolSpec(name="python", description="run Python code", args_model=PythonArgs),
    ToolSpec(name="search", description="search the web", args_model=SearchArgs),
]

CASES: dict[str, tuple[dict[str, Any], str]] = {
    "plan": (
        PlanDraft.model_json_schema(),
        "Plan how to find the 3 largest files in a directory tree and report their sizes. Reply in JSON.",
    ),
    "tool_call": (
        tool_call_schema(TOOLS),
        "Call a tool to compute the 20th Fibonacci number. Reply with a JSON tool call {tool, args}.",
    ),
}


def per_token_s(r: ChatResponse) -> float:
    """Seconds per output token after the first (decode only)."""
    c = r.choices[0]
    steps = r.usage.completion_tokens - (1 if c.finish_reason == "length" else 0)
    first = r.timings.first_token_s or 0.0
    return (r.timings.total_s - first) / max(1, steps)


async def run(quick: bool, engines: list[ConstraintEngine], rounds: int, max_tokens: int) -> dict[str, Any]:
    base = EmbeddedModel.from_settings(Settings().llm)
    views = {e: base.with_engine(e) for e in engines}
    await base.complete(ChatRequest(messages=[user("hi")], max_tokens=2))  # load the model
    figures: dict[str, Any] = {"engines": {}, "unconstrained": {}, "quick": quick, "max_tokens": max_tokens}

    for engine, view in views.items():  # one-off engine setup, then a cold compile of each schema
        t = time.perf_counter()
        await view.prepare(RegexConstraint(pattern="[ab]"))
        entry: dict[str, Any] = {"setup_s": round(time.perf_counter() - t, 3), "cases": {}}
        for case, (schema, _) in CASES.items():
            t = time.perf_counter()
            await view.prepare(JsonSchemaConstraint(json_schema=schema))
            entry["cases"][case] = {"compile_s": round(time.perf_counter() - t, 4)}
        figures["engines"][engine.value] = entry

    samples: dict[tuple[str, str], list[ChatResponse]] = {}
    nonce = 0
    for _ in range(rounds):
        for case, (schema, prompt) in CASES.items():
            for engine in [None, *engines]:
                nonce += 1  # a different first message each call: no KV-cache reuse, fair time to first token
                messages = [system(f"Session {nonce}. You are a helpful assistant."), user(prompt)]
                constraint = None if engine is None else JsonSchemaConstraint(json_schema=schema)
                model = base if engine is None else views[engine]
                r = await model.complete(ChatRequest(messages=messages, constraint=constraint, max_tokens=max_tokens))
                if constraint is not None and r.choices[0].finish_reason == "stop":
                    json.loads(r.text)  # a constrained reply that does not parse would be a broken engine
                samples.setdefault((case, "unconstrained" if engine is None else engine.value), []).append(r)

    for case in CASES:
        free = samples[(case, "unconstrained")]
        tok0 = statistics.median(per_token_s(r) for r in free)
        ttft0 = statistics.median(r.timings.first_token_s or 0.0 for r in free)
        figures["unconstrained"][case] = {"ms_per_token": round(tok0 * 1000, 2), "ttft_s": round(ttft0, 3)}
        for engine in engines:
            got = samples[(case, engine.value)]
            tok = statistics.median(per_token_s(r) for r in got)
            ttft = statistics.median(r.timings.first_token_s or 0.0 for r in got)
            figures["engines"][engine.value]["cases"][case].update(
                ms_per_token=round(tok * 1000, 2),
                speed_ratio=round(tok0 / tok, 3),
                ttft_s=round(ttft, 3),
                ttft_ratio=round(ttft / ttft0, 3),
                tokens=[r.usage.completion_tokens for r in got],
                truncated=sum(r.choices[0].finish_reason == "length" for r in got),
            )
    await base.aclose()
    return figures


def report(figures: dict[str, Any]) -> None:
    print(f"{'engine':<22}{'case':<11}{'ms/tok':>8}{'speed':>8}{'ttft s':>8}{'ttft x':>8}{'compile s':>11}")
    for case, free in figures["unconstrained"].items():
        print(f"{'unconstrained':<22}{case:<11}{free['ms_per_token']:>8}{1.0:>8}{free['ttft_s']:>8}{1.0:>8}{'':>11}")
        for engine, entry in figures["engines"].items():
            c = entry["cases"][case]
            print(
                f"{engine:<22}{case:<11}{c['ms_per_token']:>8}{c['speed_ratio']:>8}"
                f"{c['ttft_s']:>8}{c['ttft_ratio']:>8}{c['compile_s']:>11}"
            )
    for engine, entry in figures["engines"].items():
        print(f"setup {engine}: {entry['setup_s']} s (once per loaded model)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 48 tokens instead of 3 of 96")
    parser.add_argument("--engines", nargs="*", default=[e.value for e in ConstraintEngine])
    args = parser.parse_args()
    engines = [ConstraintEngine(e) for e in args.engines]
    rounds, max_tokens = (2, 48) if args.quick else (3, 96)
    figures = asyncio.run(run(args.quick, engines, rounds, max_tokens))
    report(figures)
    print(json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
