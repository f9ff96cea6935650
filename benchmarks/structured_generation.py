"""Constrained vs unconstrained generation on the embedded model, for each constraint engine.

For a plan-like schema and a tool-call schema it measures, per engine, each against unconstrained decoding of the
same prompt in the same run:
- time per output token, decode only (first token to last, so prompt time does not blur it), as a speed ratio
  (target: >= 0.90). Both wall time and the decoding thread's CPU time are reported: with one llama.cpp thread the
  CPU time holds all the work and does not grow when other processes share the cores, so on a busy machine the CPU
  ratio is the one to trust;
- time to first token with the prompt already in the KV cache (one warm-up call per prompt), i.e. what the
  constraint adds before the first token, as a ratio;
- schema compile time (cold), and the one-off engine setup (tables built once per loaded model).
Every constrained reply that completes is validated against its schema. Calls are interleaved round by round
(baseline, then each engine). The last line printed is one JSON object holding every figure.

    python benchmarks/structured_generation.py            # 3 rounds of <= 192 tokens: ~5 min on an idle 2-core box
    python benchmarks/structured_generation.py --quick    # 1 round of <= 96 tokens: ~1-2 min
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from pydantic import BaseModel, Field

from ponder.config import ConstraintEngine, Settings
from ponder.llm import JsonSchemaConstraint, system, user
from ponder.llm.embedded import EmbeddedModel
from ponder.llm.embedded._constraints import Compiled, build_engine
from ponder.llm.embedded._runtime import Generation, SampleParams
from ponder.tools._spec import ToolSpec, tool_call_schema


class Step(BaseModel):
    name: str = Field(max_length=30, description="a short name, a few words")
    goal: str = Field(max_length=60, description="what this step must achieve")
    tool: str | None = Field(default=None, description="the tool this step uses, if any")


class PlanDraft(BaseModel):
    reasoning: str = Field(max_length=120, description="how the goal breaks down, briefly")
    steps: list[Step] = Field(min_length=1, max_length=3)


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
        "Plan, in at most 3 short steps, how to find the largest file in a directory tree. Reply in JSON.",
    ),
    "tool_call": (
        tool_call_schema(TOOLS),
        "Call the python tool with one short line of code that prints 2**20. Reply with a JSON tool call.",
    ),
}


@dataclass
class Tally:
    steps: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    ttft: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    truncated: int = 0
    valid: int = 0

    def add(self, g: Generation) -> None:
        self.steps += g.decode_steps
        self.wall_s += g.decode_s
        self.cpu_s += g.decode_cpu_s
        self.ttft.append(g.first_token_s or 0.0)
        self.tokens.append(g.completion_tokens)
        self.truncated += g.finish_reason == "length"

    def ms_per_token(self) -> tuple[float, float]:
        return 1000 * self.wall_s / max(1, self.steps), 1000 * self.cpu_s / max(1, self.steps)


def run(quick: bool, engines: list[ConstraintEngine], rounds: int, max_tokens: int) -> dict[str, Any]:
    model = EmbeddedModel.from_settings(Settings().llm)
    shared = model._shared  # every call a job that runs alone on the one decode path
    runtime = shared.load()
    figures: dict[str, Any] = {"engines": {}, "unconstrained": {}, "quick": quick, "max_tokens": max_tokens}
    compiled: dict[tuple[str, ConstraintEngine], Compiled] = {}
    for engine in engines:  # one-off engine setup, then a cold compile of each schema
        t = time.perf_counter()
        built = build_engine(runtime.llama, engine)
        entry: dict[str, Any] = {"setup_s": round(time.perf_counter() - t, 3), "cases": {}}
        for case, (schema, _) in CASES.items():
            t = time.perf_counter()
            compiled[(case, engine)] = built.compile(JsonSchemaConstraint(json_schema=schema))
            entry["cases"][case] = {"compile_s": round(time.perf_counter() - t, 4)}
        figures["engines"][engine.value] = entry

    params = SampleParams(max_tokens=max_tokens)
    tallies: dict[tuple[str, str], Tally] = {}
    for case, (schema, prompt) in CASES.items():
        tokens = runtime.prompt_tokens([system("You are a helpful assistant."), user(prompt)])
        (warm,) = shared.run_alone(tokens, [SampleParams(max_tokens=1)], None)  # evaluates the prompt once
        figures["unconstrained"][case] = {"prompt_tokens": len(tokens), "prompt_s": round(warm.prompt_s, 3)}
        for _ in range(rounds):
            for engine in [None, *engines]:
                name = "unconstrained" if engine is None else engine.value
                (g,) = shared.run_alone(tokens, [params], None if engine is None else compiled[(case, engine)])
                tally = tallies.setdefault((case, name), Tally())
                tally.add(g)
                if engine is not None and g.finish_reason == "stop":
                    jsonschema.validate(json.loads(g.text), schema)  # a broken engine fails the benchmark
                    tally.valid += 1

    for case in CASES:
        free = tallies[(case, "unconstrained")]
        wall0, cpu0 = free.ms_per_token()
        ttft0 = statistics.median(free.ttft)
        figures["unconstrained"][case].update(
            ms_per_token=round(wall0, 2), cpu_ms_per_token=round(cpu0, 2), ttft_s=round(ttft0, 4)
        )
        for engine in engines:
            got = tallies[(case, engine.value)]
            wall, cpu = got.ms_per_token()
            ttft = statistics.median(got.ttft)
            figures["engines"][engine.value]["cases"][case].update(
                ms_per_token=round(wall, 2),
                cpu_ms_per_token=round(cpu, 2),
                speed_ratio=round(wall0 / wall, 3),
                cpu_speed_ratio=round(cpu0 / cpu, 3),
                ttft_s=round(ttft, 4),
                ttft_ratio=round(ttft / ttft0, 3),
                tokens=got.tokens,
                truncated=got.truncated,
                valid_json=got.valid,
            )
    model._close_sync()
    return figures


def report(figures: dict[str, Any]) -> None:
    head = ("engine", "case", "ms/tok", "speed", "cpu ms", "cpu spd", "ttft s", "ttft x", "compile s", "valid")
    print("{:<20}{:<10}{:>8}{:>7}{:>8}{:>8}{:>8}{:>7}{:>10}{:>6}".format(*head))
    for case, free in figures["unconstrained"].items():
        row = ("unconstrained", case, free["ms_per_token"], 1.0, free["cpu_ms_per_token"], 1.0, free["ttft_s"], 1.0)
        print("{:<20}{:<10}{:>8}{:>7}{:>8}{:>8}{:>8}{:>7}".format(*row))
        for engine, entry in figures["engines"].items():
            c = entry["cases"][case]
            row = (engine, case, c["ms_per_token"], c["speed_ratio"], c["cpu_ms_per_token"], c["cpu_speed_ratio"])
            row += (c["ttft_s"], c["ttft_ratio"], c["compile_s"], f"{c['valid_json']}/{len(c['tokens'])}")
            print("{:<20}{:<10}{:>8}{:>7}{:>8}{:>8}{:>8}{:>7}{:>10}{:>6}".format(*row))
    for engine, entry in figures["engines"].items():
        print(f"setup {engine}: {entry['setup_s']} s (once per loaded model)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 round of 96 tokens instead of 3 of 192")
    parser.add_argument("--engines", nargs="*", default=[e.value for e in ConstraintEngine])
    args = parser.parse_args()
    engines = [ConstraintEngine(e) for e in args.engines]
    rounds, max_tokens = (1, 96) if args.quick else (3, 192)
    figures = run(args.quick, engines, rounds, max_tokens)
    report(figures)
    print(json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
