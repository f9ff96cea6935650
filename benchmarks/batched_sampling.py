"""k samples of one prompt on the embedded model: decoded together in one llama.cpp batch vs one after another.

Self-consistency (k answers to vote on) and MCTS expansion (k children per node) ask for ``n = k`` samples of one
prompt. The embedded backend decodes them together (one scheduler job of k samples: the prompt evaluated once, one
batched decode step per token of every unfinished sample); the baseline is k jobs of one sample each, one after
another, with the prompt in the KV cache (both run alone on the one decode path). Same prompts, seeds and limits, rounds
interleaved (batched, then sequential); plain and JSON-constrained sampling. Figures: generated tokens per second of
each, and the speed-up (batched / sequential). The last line printed is one JSON object of the figures.

    python benchmarks/batched_sampling.py            # k = 5, 3 rounds of <= 128 tokens: ~4 min on an idle 2-core box
    python benchmarks/batched_sampling.py --quick    # 1 round of <= 64 tokens
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from pydantic import BaseModel

from ponder.config import ConstraintEngine, Settings
from ponder.llm import schema_constraint, user
from ponder.llm.embedded import EmbeddedModel
from ponder.llm.embedded._runtime import SampleParams

PROMPT = "A farmer has 17 sheep; all but 9 run away. Think step by step, then say how many are left."


class Answer(BaseModel):
    reasoning: str
    answer: int


def run(k: int, rounds: int, max_tokens: int) -> dict[str, Any]:
    model = EmbeddedModel.from_settings(Settings().llm)
    shared = model._shared
    runtime = shared.load()
    prompt = runtime.prompt_tokens([user(PROMPT)])
    compiled = {"plain": None, "json": shared.compile(ConstraintEngine.llguidance, schema_constraint(Answer))}
    figures: dict[str, Any] = {"k": k, "max_tokens": max_tokens, "rounds": rounds, "cases": {}}
    for case, constraint in compiled.items():
        totals = {"batched": [0, 0.0], "sequential": [0, 0.0]}
        shared.run_alone(prompt, [SampleParams(max_tokens=1)], None)  # the prompt into the KV cache
        for r in range(rounds):
            params = [SampleParams(temperature=0.8, max_tokens=max_tokens, seed=100 * r + i) for i in range(k)]
            t = time.perf_counter()
            out = shared.run_alone(prompt, params, constraint)
            totals["batched"][0] += sum(g.completion_tokens for g in out)
            totals["batched"][1] += time.perf_counter() - t
            t = time.perf_counter()
            out = [shared.run_alone(prompt, [p], constraint)[0] for p in params]
            totals["sequential"][0] += sum(g.completion_tokens for g in out)
            totals["sequential"][1] += time.perf_counter() - t
        rates = {name: round(tokens / seconds, 2) for name, (tokens, seconds) in totals.items()}
        figures["cases"][case] = {
            "tokens_per_s": rates,
            "tokens": {name: tokens for name, (tokens, _) in totals.items()},
            "speedup": round(rates["batched"] / rates["sequential"], 2),
        }
    model._close_sync()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 round of 64 tokens instead of 3 of 128")
    parser.add_argument("-k", type=int, default=5, help="samples per prompt (default 5, as self-consistency uses)")
    args = parser.parse_args()
    rounds, max_tokens = (1, 64) if args.quick else (3, 128)
    figures = run(args.k, rounds, max_tokens)
    print(f"{'case':<8}{'batched tok/s':>15}{'sequential tok/s':>18}{'speed-up':>10}")
    for case, c in figures["cases"].items():
        print(f"{case:<8}{c['tokens_per_s']['batched']:>15}{c['tokens_per_s']['sequential']:>18}{c['speedup']:>10}")
    print(json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
